#!/usr/bin/env python3
# compare_csv.py: checks that two report CSVs give the same answer (bench/report).
#
# Usage: compare_csv.py [--float-col NAME]... [--rel-tol X] EXPECTED ACTUAL
#
# Both files must have a header line; the headers must be equal. Rows are matched after sorting
# both files on every column that is not a float column (integers compared as integers, the
# rest as text), so row order does not matter. Float columns (default: avg_value) are equal when
# both are empty (NULL) or when |a - b| <= X * max(|a|, |b|) (default X = 1e-9: partial sums
# added in a different order); every other cell must be equal. Prints `same: N rows` and exits 0,
# or prints the first difference (row, column, both values) and exits 1; 2 on usage or I/O errors.
import argparse
import csv
import math
import sys


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path}: empty file (no header)")
    return rows[0], rows[1:]


def norm(cell):
    try:
        return (0, int(cell), "")
    except ValueError:
        return (1, 0, cell)


def floats_equal(a, b, rel_tol):
    if a == b:
        return True
    if a == "" or b == "":
        return False
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    if math.isnan(x) and math.isnan(y):
        return True
    return math.isclose(x, y, rel_tol=rel_tol, abs_tol=0.0)


def main(argv):
    p = argparse.ArgumentParser(prog="compare_csv.py",
                                description="compare two report CSVs (sorted, float tolerance)")
    p.add_argument("--float-col", action="append", default=None,
                   help="column compared with a relative tolerance (repeatable; default avg_value)")
    p.add_argument("--rel-tol", type=float, default=1e-9, help="relative tolerance (default 1e-9)")
    p.add_argument("expected")
    p.add_argument("actual")
    args = p.parse_args(argv)
    float_cols = set(args.float_col or ["avg_value"])

    try:
        head_e, rows_e = read(args.expected)
        head_a, rows_a = read(args.actual)
    except (OSError, ValueError, csv.Error) as e:
        print(f"compare_csv.py: {e}", file=sys.stderr)
        return 2
    if head_e != head_a:
        print(f"header differs:\n  {args.expected}: {','.join(head_e)}\n"
              f"  {args.actual}: {','.join(head_a)}")
        return 1
    width = len(head_e)
    for path, rows in ((args.expected, rows_e), (args.actual, rows_a)):
        for i, r in enumerate(rows):
            if len(r) != width:
                print(f"{path}: data row {i + 1} has {len(r)} fields, the header {width}: "
                      f"{','.join(r)}")
                return 1
    keys = [i for i, name in enumerate(head_e) if name not in float_cols]
    floats = [i for i, name in enumerate(head_e) if name in float_cols]

    def sort_key(r):
        return tuple(norm(r[i]) for i in keys)

    rows_e.sort(key=sort_key)
    rows_a.sort(key=sort_key)
    for n, (e, a) in enumerate(zip(rows_e, rows_a), start=1):
        bad = [head_e[i] for i in keys if norm(e[i]) != norm(a[i])]
        bad += [head_e[i] for i in floats if not floats_equal(e[i], a[i], args.rel_tol)]
        if bad:
            print(f"first difference at sorted data row {n} (column {', '.join(bad)}):\n"
                  f"  {args.expected}: {','.join(e)}\n  {args.actual}: {','.join(a)}")
            return 1
    if len(rows_e) != len(rows_a):
        longer, path = (rows_e, args.expected) if len(rows_e) > len(rows_a) else (rows_a, args.actual)
        extra = longer[min(len(rows_e), len(rows_a))]
        print(f"row count differs: {args.expected} has {len(rows_e)}, {args.actual} has "
              f"{len(rows_a)}; first extra row in {path}: {','.join(extra)}")
        return 1
    print(f"same: {len(rows_e)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
