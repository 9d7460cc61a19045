#!/usr/bin/env python3
# dask_report.py: the Dask contender of bench/report — the "user behavior report" computed the
# way the Dask offload article does it, written for this benchmark: a dask.distributed
# LocalCluster (2 worker processes, 1 thread each) reads the rows of user_events whose
# event_timestamp is BETWEEN START AND END (inclusive) from PostgreSQL in id-range partitions
# (dask.dataframe.read_sql_query, id as the index), groups them by (user_id, event_type) —
# or by event_type alone with --group-by event_type — and computes avg(value) and count(id).
#
# Usage: dask_report.py --dsn DSN --start TS --end TS --out FILE
#                       [--group-by user_id,event_type|event_type] [--table T]
#                       [--npartitions K] [--rows-per-partition R]
#   DSN  a SQLAlchemy URL (postgresql://user@host:port/db) or a libpq keyword string
#        ("host=127.0.0.1 port=5432 user=postgres dbname=postgres"), converted to a URL here.
#   TS   a timestamp PostgreSQL and Python both read: "2025-01-01" or "2025-12-31 23:59:59".
#
# Output: FILE is CSV with a header (`user_id,event_type,avg_value,event_count`, or
# `event_type,avg_value,event_count`), rows sorted by the group columns, floats at full
# (round-trip) precision. On stdout: `startup_s <seconds>` (LocalCluster + Client start) and
# `elapsed_s <seconds>` (wall clock from a ready client to the CSV written and closed: id-range
# query, partitioned read, group-by, gather to this process, sort and CSV write; it excludes
# cluster start-up and shutdown). Exit codes: 0 done, 1 failure, 2 usage error.
#
# Needs Debian's python3-dask python3-distributed python3-pandas python3-sqlalchemy
# python3-psycopg2 (run it with /usr/bin/python3, which sees them).
import argparse
import datetime
import logging
import math
import os
import sys
import tempfile
import time

GROUPINGS = {
    "user_id,event_type": ["user_id", "event_type"],
    "event_type": ["event_type"],
}


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="dask_report.py",
        description="Dask contender of bench/report: avg(value), count(id) of user_events "
        "between two timestamps, grouped by (user_id, event_type) or event_type.")
    p.add_argument("--dsn", required=True, help="SQLAlchemy URL or libpq keyword string")
    p.add_argument("--start", required=True, help="first timestamp, inclusive")
    p.add_argument("--end", required=True, help="last timestamp, inclusive")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--group-by", default="user_id,event_type", choices=sorted(GROUPINGS),
                   metavar="user_id,event_type|event_type",
                   help="group columns (default user_id,event_type)")
    p.add_argument("--table", default="user_events", help="table name (default user_events)")
    p.add_argument("--npartitions", type=int, default=0,
                   help="id-range partitions to read (default: from --rows-per-partition)")
    p.add_argument("--rows-per-partition", type=int, default=500_000,
                   help="target ids per partition when --npartitions is not given; "
                   "at least 2 partitions per worker thread (default 500000)")
    args = p.parse_args(argv)
    for name in ("start", "end"):
        try:
            setattr(args, name, datetime.datetime.fromisoformat(getattr(args, name)))
        except ValueError:
            p.error(f"--{name} must be a timestamp like 2025-01-01 or '2025-12-31 23:59:59'")
    if args.npartitions < 0 or args.rows_per_partition < 1:
        p.error("--npartitions must be >= 0 and --rows-per-partition >= 1")
    return args


def sqlalchemy_url(dsn):
    """Returns `dsn` as a SQLAlchemy URL string; libpq keyword strings are converted."""
    from sqlalchemy.engine import URL
    if "://" in dsn:
        return dsn
    # libpq conninfo: key = value pairs, values optionally single-quoted with \' and \\.
    pairs, i, n = {}, 0, len(dsn)
    while i < n:
        while i < n and dsn[i].isspace():
            i += 1
        if i >= n:
            break
        eq = dsn.find("=", i)
        if eq < 0:
            raise ValueError(f"bad libpq connection string near '{dsn[i:]}'")
        key = dsn[i:eq].strip()
        i = eq + 1
        while i < n and dsn[i].isspace():
            i += 1
        value = []
        if i < n and dsn[i] == "'":
            i += 1
            while i < n and dsn[i] != "'":
                if dsn[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(dsn[i])
                i += 1
            if i >= n:
                raise ValueError("unterminated quote in libpq connection string")
            i += 1
        else:
            while i < n and not dsn[i].isspace():
                if dsn[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(dsn[i])
                i += 1
        pairs[key] = "".join(value)
    port = pairs.pop("port", None)
    return URL.create(
        "postgresql+psycopg2",
        username=pairs.pop("user", None),
        password=pairs.pop("password", None),
        host=pairs.pop("host", None) or pairs.pop("hostaddr", None),
        port=int(port) if port else None,
        database=pairs.pop("dbname", None),
        query=pairs,  # anything else (sslmode, application_name, ...) goes to libpq as is
    ).render_as_string(hide_password=False)


def write_csv(df, path, keys):
    """Writes the (already sorted) result; an empty result still gets its header."""
    df = df.reset_index()[keys + ["avg_value", "event_count"]]
    df.to_csv(path, index=False, float_format=None, lineterminator="\n")


def run_report(args, url, client):
    import pandas as pd
    import sqlalchemy as sa
    import dask.dataframe as dd

    keys = GROUPINGS[args.group_by]
    table = sa.table(args.table, sa.column("id"), sa.column("user_id"),
                     sa.column("event_type"), sa.column("event_timestamp"),
                     sa.column("value"))
    in_range = table.c.event_timestamp.between(args.start, args.end)

    # The id range of the selected rows bounds the partitions; ids are the primary key, so each
    # partition's query is an index range scan plus the time filter, all pushed to PostgreSQL.
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            lo, hi = conn.execute(
                sa.select(sa.func.min(table.c.id), sa.func.max(table.c.id)).where(in_range)
            ).one()
    finally:
        engine.dispose()
    if lo is None:
        empty = pd.DataFrame({k: pd.Series(dtype="int64" if k == "user_id" else "object")
                              for k in keys})
        empty["avg_value"] = pd.Series(dtype="float64")
        empty["event_count"] = pd.Series(dtype="int64")
        write_csv(empty.set_index(keys), args.out, keys)
        return 0

    threads = sum(client.nthreads().values())
    nparts = args.npartitions or max(2 * threads,
                                     math.ceil((hi - lo + 1) / args.rows_per_partition))
    nparts = max(1, min(nparts, hi - lo + 1))

    # Only the columns the report needs; `id` is the index that defines the partitions.
    query = sa.select(table.c.id, table.c.user_id, table.c.event_type,
                      table.c.value).where(in_range)
    meta = pd.DataFrame({
        "user_id": pd.Series(dtype="int64"),
        "event_type": pd.Series(dtype="object"),
        "value": pd.Series(dtype="float64"),
    }, index=pd.Index([], dtype="int64", name="id"))
    ddf = dd.read_sql_query(query, url, index_col="id", npartitions=nparts,
                            limits=(int(lo), int(hi)), meta=meta, head_rows=0)

    # count(id) is the number of rows of the group (id is a NOT NULL primary key, and the index
    # here, so it is counted with `size`); mean skips NULL values as avg() does.
    grouped = ddf.groupby(keys)["value"].agg(["mean", "size"])
    result = grouped.compute()
    result.columns = ["avg_value", "event_count"]
    result = result.sort_index()
    write_csv(result, args.out, keys)
    return len(result)


def main(argv):
    args = parse_args(argv)
    try:
        import dask  # noqa: F401
        import dask.dataframe  # noqa: F401
        import pandas  # noqa: F401
        import psycopg2  # noqa: F401
        import sqlalchemy  # noqa: F401
        from dask.distributed import Client, LocalCluster
    except ImportError as e:
        print(f"dask_report.py: {e}; install python3-dask python3-distributed python3-pandas "
              "python3-sqlalchemy python3-psycopg2 and run with /usr/bin/python3",
              file=sys.stderr)
        return 2
    try:
        url = sqlalchemy_url(args.dsn)
    except ValueError as e:
        print(f"dask_report.py: --dsn: {e}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="wharf-dask.") as scratch:
        t0 = time.perf_counter()
        # No dashboard (needs bokeh and a port); worker spill files go to a private temp dir.
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None, local_directory=scratch,
                          silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            client.wait_for_workers(2)
            t1 = time.perf_counter()
            rows = run_report(args, url, client)
            t2 = time.perf_counter()
    print(f"startup_s {t1 - t0:.6f}")
    print(f"elapsed_s {t2 - t1:.6f}")
    print(f"groups {rows}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # a failed query or worker: one line, not a page of traceback
        if os.environ.get("WHARF_DASK_TRACEBACK"):
            raise
        print(f"dask_report.py: error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
