// The report engine on real PostgreSQL: plans, partition reads in both modes, sorted partials
// through the wire encoding, merged — against one SQL statement (the ground truth).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <cstdlib>
#include <unistd.h>

#include <deque>

#include <boost/test/unit_test.hpp>
#include <caf/all.hpp>

#include "actors/analytics/agg_table.hpp"
#include "actors/analytics/chunk_codec.hpp"
#include "actors/analytics/key_codec.hpp"
#include "actors/analytics/sorted_partial.hpp"
#include "actors/analytics/plan_codec.hpp"
#include "actors/analytics/service.hpp"
#include "protocols/analytics.capnp.h"
#include "protocols/capnp_io.hpp"
#include "actors/analytics/datagen.hpp"
#include "actors/analytics/report_def.hpp"
#include "actors/analytics/partition_reader.hpp"
#include "actors/analytics/plan.hpp"
#include "actors/analytics/single_sql.hpp"
#include "actors/analytics/config.hpp"
#include "runtime/config/node_config.hpp"
#include "runtime/core/types.hpp"
#include "runtime/pg/pg_connection.hpp"
#include "tests/support/expect.hpp"
#include "tests/support/pg_test.hpp"

using namespace wharf;
using namespace wharf::actors;

namespace {

using rows_t = std::vector<std::vector<cell>>;

const char* name(protocols::error_code x) {
  return protocols::to_string(x);
}

const char* name(read_mode x) {
  return to_string(x);
}

struct engine_fixture {
  std::unique_ptr<runtime::pg_connection> pg;
  std::string table = "wharf_test_" + std::to_string(::getpid()) + "_engine";

  engine_fixture() : pg(test::connect_test_pg()) {
    if (!pg)
      return;
    datagen_options o;
    o.table = table;
    o.rows = 20000;
    o.users = 150;
    o.seed = 42;
    o.replace = true;
    auto r = generate_user_events(*pg, o);
    BOOST_REQUIRE_MESSAGE(r, test::why(r));
  }

  ~engine_fixture() {
    if (pg) {
      auto r = pg->query("DROP TABLE IF EXISTS " + pg->quote_identifier(table));
      (void) r;
    }
  }

  void exec(const std::string& sql) {
    auto r = pg->query(sql);
    BOOST_REQUIRE_MESSAGE(r, sql << ": " << test::why(r));
  }

  report_def def(const std::string& partition_column = "id") {
    auto d = user_behavior_report();
    d.table = table;
    d.partition_column = partition_column;
    return d;
  }

  static report_params params(std::string start, std::string end) {
    report_params p;
    p.start = std::move(start);
    p.end = std::move(end);
    return p;
  }

  report_plan plan(report_def d, report_params p, read_mode mode) {
    auto r = make_plan(*pg, std::move(d), std::move(p), mode);
    BOOST_REQUIRE_MESSAGE(r, test::why(r));
    return std::move(*r);
  }

  // The distributed answer: `n` partitions read round-robin into `readers` tables, each table
  // sorted, shipped through the chunk encoding in small chunks, and the runs merged.
  rows_t distributed(const report_plan& p, size_t n, size_t readers) {
    auto parts = plan_partitions(*pg, p, n);
    BOOST_REQUIRE_MESSAGE(parts, test::why(parts));
    std::vector<agg_table> tables;
    for (size_t r = 0; r < readers; ++r)
      tables.emplace_back(p.spec());
    for (size_t i = 0; i < parts->size(); ++i) {
      auto rows = read_partition(*pg, p, (*parts)[i], tables[i % readers]);
      BOOST_REQUIRE_MESSAGE(rows, test::why(rows));
    }
    std::vector<std::string> wire;
    std::vector<sorted_partial> runs;
    for (auto& t : tables) {
      auto local = to_sorted(t);
      // Small chunks, so paging through a partial is exercised too.
      for (uint64_t off = 0; off == 0 || off < local.size(); off += 97)
        wire.push_back(encode_chunk(local, off, 97));
    }
    size_t w = 0;
    std::vector<uint32_t> seen;
    for (auto& t : tables) {
      runs.emplace_back(p.spec());
      for (uint64_t off = 0; off == 0 || off < t.groups(); off += 97) {
        auto info = append_chunk(runs.back(), wire[w++]);
        BOOST_REQUIRE_MESSAGE(info, test::why(info));
        BOOST_TEST(info->total_groups == t.groups());
        if (off == 0)
          seen.insert(seen.end(), info->partitions.begin(), info->partitions.end());
      }
    }
    BOOST_TEST(seen.size() == parts->size()); // every partition is in exactly one partial
    std::vector<const sorted_partial*> ptrs;
    for (auto& r : runs)
      ptrs.push_back(&r);
    return final_rows(merge_sorted(ptrs, p.spec()));
  }

  rows_t truth(const report_plan& p) {
    auto r = single_sql(*pg, p);
    BOOST_REQUIRE_MESSAGE(r, test::why(r));
    return std::move(*r);
  }

  static void check_equal(const rows_t& got, const rows_t& want) {
    BOOST_REQUIRE_EQUAL(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      BOOST_REQUIRE_EQUAL(got[i].size(), want[i].size());
      for (size_t c = 0; c < got[i].size(); ++c) {
        auto* gd = std::get_if<double>(&got[i][c]);
        auto* wd = std::get_if<double>(&want[i][c]);
        if (gd && wd)
          BOOST_TEST(*gd == *wd, boost::test_tools::tolerance(1e-9));
        else
          BOOST_TEST((got[i][c] == want[i][c]), "row " << i << " column " << c);
      }
    }
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(report_engine)

BOOST_FIXTURE_TEST_CASE(both_modes_equal_the_single_sql_answer, engine_fixture) {
  if (!pg)
    return;
  for (auto mode : {read_mode::pushdown, read_mode::pull}) {
    auto p = plan(def(), params("2025-03-01", "2025-06-30"), mode);
    auto want = truth(p);
    BOOST_TEST(want.size() > 1000u); // 150 users x 8 types, nearly all present
    for (size_t n : {1u, 4u, 7u, 64u})
      for (size_t readers : {1u, 3u})
        check_equal(distributed(p, n, readers), want);
  }
}

BOOST_FIXTURE_TEST_CASE(page_ranges_give_the_same_answer, engine_fixture) {
  if (!pg)
    return;
  for (auto mode : {read_mode::pushdown, read_mode::pull}) {
    auto p = plan(def("ctid"), params("2025-01-01", "2025-12-31 23:59:59"), mode);
    check_equal(distributed(p, 9, 2), truth(p));
  }
}

BOOST_FIXTURE_TEST_CASE(user_filters_nulls_and_skewed_ids_agree_too, engine_fixture) {
  if (!pg)
    return;
  exec("UPDATE " + pg->quote_identifier(table) + " SET value = NULL WHERE id % 10 = 0 OR user_id = 5");
  exec("UPDATE " + pg->quote_identifier(table) + " SET id = id + 1000000000000 WHERE id > 19990");
  auto ps = params("2025-01-01", "2025-12-31 23:59:59");
  ps.user_ids = {5, 6, 7, 999999};
  ps.filters = {{"event_type", "click"}};
  for (auto mode : {read_mode::pushdown, read_mode::pull}) {
    auto p = plan(def(), ps, mode);
    auto want = truth(p);
    BOOST_TEST(!want.empty());
    bool all_null_group = false;
    for (auto& row : want) {
      auto user = std::get<int64_t>(row[0]);
      BOOST_TEST((user == 5 || user == 6 || user == 7));
      BOOST_TEST(std::get<std::string>(row[1]) == "click");
      all_null_group |= user == 5 && std::holds_alternative<std::monostate>(row[2]);
    }
    BOOST_TEST(all_null_group); // avg over only NULLs is NULL, and stays so after merging
    check_equal(distributed(p, 5, 2), want);
    auto all = plan(def(), params("2025-01-01", "2025-12-31 23:59:59"), mode);
    check_equal(distributed(all, 8, 3), truth(all)); // skewed ids: partitions mostly empty
  }
}

BOOST_FIXTURE_TEST_CASE(empty_ranges_and_one_row, engine_fixture) {
  if (!pg)
    return;
  for (auto mode : {read_mode::pushdown, read_mode::pull}) {
    auto p = plan(def(), params("2030-01-01", "2030-12-31"), mode);
    BOOST_TEST(distributed(p, 4, 2).empty());
    BOOST_TEST(truth(p).empty());
  }
  exec("INSERT INTO " + pg->quote_identifier(table)
       + " VALUES (99000001, 777, 'click', '2027-03-01 12:00', 1.5)");
  for (auto mode : {read_mode::pushdown, read_mode::pull}) {
    // A bare end date means its midnight: the noon row is outside, then inside.
    BOOST_TEST(distributed(plan(def(), params("2027-01-01", "2027-03-01"), mode), 3, 2).empty());
    auto rows = distributed(plan(def(), params("2027-01-01", "2027-03-01 12:00:00"), mode), 3, 2);
    BOOST_REQUIRE_EQUAL(rows.size(), 1u);
    BOOST_TEST(std::get<int64_t>(rows[0][0]) == 777);
    BOOST_TEST(std::get<double>(rows[0][2]) == 1.5);
    BOOST_TEST(std::get<int64_t>(rows[0][3]) == 1);
  }
  exec("DELETE FROM " + pg->quote_identifier(table));
  for (auto mode : {read_mode::pushdown, read_mode::pull}) {
    auto p = plan(def(), params("2025-01-01", "2025-12-31"), mode);
    auto parts = plan_partitions(*pg, p, 4);
    BOOST_REQUIRE(parts);
    BOOST_TEST(parts->empty()); // an empty table has nothing to read
  }
}

BOOST_FIXTURE_TEST_CASE(injection_in_values_is_just_a_bad_value, engine_fixture) {
  if (!pg)
    return;
  auto bad_date = params("2025-01-01'; DROP TABLE " + table + "; --", "2025-02-01");
  for (auto mode : {read_mode::pushdown, read_mode::pull}) {
    auto p = plan(def(), bad_date, mode);
    agg_table t{p.spec()};
    auto r = read_partition(*pg, p, partition{0, 0, 1000}, t);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.error().category() == runtime::error_code_category);
    BOOST_TEST(name(static_cast<protocols::error_code>(r.error().code())) == std::string("INVALID_ARGUMENT"));
    BOOST_TEST(test::why(r).find("22007") != std::string::npos, test::why(r));
    auto ps = params("2025-01-01", "2025-12-31");
    ps.filters = {{"event_type", "click' OR '1'='1"}};
    auto q = plan(def(), ps, mode);
    BOOST_TEST(distributed(q, 3, 1).empty()); // no such event type: just no rows
  }
  auto count = pg->query("SELECT count(*) FROM " + pg->quote_identifier(table));
  BOOST_REQUIRE(count);
  BOOST_TEST(*count->rows[0][0] == "20000");
  // Filters on columns the report does not allow never reach SQL.
  auto ps = params("2025-01-01", "2025-12-31");
  ps.filters = {{"value; DROP TABLE x", "1"}};
  auto err = validate(def(), ps);
  BOOST_REQUIRE(err);
  BOOST_TEST(name(static_cast<protocols::error_code>(err.code())) == std::string("INVALID_ARGUMENT"));
}

BOOST_FIXTURE_TEST_CASE(declarative_reports_compute_every_aggregate, engine_fixture) {
  if (!pg)
    return;
  report_config cfg;
  cfg.name = "types";
  cfg.table = table;
  cfg.time_column = "event_timestamp";
  cfg.group_by = {"event_type", "event_timestamp"};
  cfg.aggregates = {"count(*) AS n",          "sum(value) AS total", "min(value)",
                    "max(value) AS biggest", "avg(user_id) AS mean_user",
                    "count_distinct(user_id) AS users"};
  auto d = parse_report(cfg);
  BOOST_REQUIRE_MESSAGE(d, test::why(d));
  BOOST_TEST(d->aggregates[2].name == "min_value");
  // count_distinct cannot be merged from PostgreSQL's partial states.
  BOOST_TEST(!make_plan(*pg, *d, params("2025-01-01", "2025-01-07"), read_mode::pushdown));
  auto p = plan(*d, params("2025-01-01", "2025-01-07"), read_mode::automatic);
  BOOST_TEST(name(p.mode) == std::string("pull"));
  BOOST_TEST(p.key_as_text[1]); // a timestamp key travels as its text
  check_equal(distributed(p, 6, 2), truth(p));
  cfg.group_by = {"event_type"};
  cfg.aggregates = {"count(*) AS n", "sum(value) AS total", "min(value)", "max(value) AS biggest"};
  auto few = parse_report(cfg);
  BOOST_REQUIRE(few);
  for (auto mode : {read_mode::pushdown, read_mode::pull}) {
    auto q = plan(*few, params("2025-01-01", "2025-12-31"), mode);
    check_equal(distributed(q, 5, 2), truth(q));
  }
  // auto reads PostgreSQL's statistics: 8 groups over 20000 rows is pushdown territory.
  BOOST_TEST(name(plan(*few, params("2025-01-01", "2025-12-31"), read_mode::automatic).mode)
             == std::string("pushdown"));
  // 1200 (user, type) groups: 17 rows per group
  BOOST_TEST(name(plan(def(), params("2025-01-01", "2025-12-31"), read_mode::automatic).mode)
             == std::string("pull"));
}

BOOST_FIXTURE_TEST_CASE(bad_definitions_and_columns_are_invalid_arguments, engine_fixture) {
  if (!pg)
    return;
  report_config cfg;
  cfg.name = "bad";
  cfg.table = table;
  cfg.group_by = {"event_type"};
  for (auto agg : {"median(value)", "sum(value", "count(id) AS", "sum(*)", "avg(a-b)"}) {
    cfg.aggregates = {agg};
    BOOST_TEST(!parse_report(cfg), agg);
  }
  cfg.aggregates = {"sum(event_type)"};
  auto d = parse_report(cfg);
  BOOST_REQUIRE(d);
  auto p = make_plan(*pg, *d, {}, read_mode::pull);
  BOOST_REQUIRE(!p);
  BOOST_TEST(name(static_cast<protocols::error_code>(p.error().code())) == std::string("INVALID_ARGUMENT"));
  cfg.aggregates = {"count(nope)"};
  p = make_plan(*pg, *parse_report(cfg), {}, read_mode::pull);
  BOOST_REQUIRE(!p);
  BOOST_TEST(message_of(p.error()).find("nope") != std::string::npos, message_of(p.error()));
  cfg.table = "no_such_table_here";
  cfg.aggregates = {"count(*)"};
  p = make_plan(*pg, *parse_report(cfg), {}, read_mode::pull);
  BOOST_REQUIRE(!p);
  BOOST_TEST(name(static_cast<protocols::error_code>(p.error().code())) == std::string("PG_ERROR"));
  BOOST_TEST(message_of(p.error()).rfind("42P01", 0) == 0, message_of(p.error()));
}

// A long text first (its prefix does not pin it down) and a float second: the float order
// is settled by compare_keys alone, which must be a strict order even for NaN and -0.0, or a
// node's sorted run would be refused as out of order.
BOOST_AUTO_TEST_CASE(long_text_then_float_keys_sort_and_ship) {
  table_spec spec{{key_kind::text, key_kind::floating}, {agg_fn::count}};
  agg_table t{spec};
  const std::string text = "a text longer than eight bytes";
  for (double d : {1.0, std::nan(""), -0.0, 0.0, -HUGE_VAL, HUGE_VAL, -2.5}) {
    std::string k;
    append_be32(k, static_cast<uint32_t>(text.size()));
    k += text;
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    append_be32(k, 8);
    for (int j = 0; j < 8; ++j)
      k.push_back(static_cast<char>(bits >> (56 - 8 * j)));
    t.add_rows(t.state(k), 0, 1);
  }
  auto sorted = to_sorted(t);
  BOOST_REQUIRE_EQUAL(sorted.size(), 7u);
  for (size_t i = 1; i < sorted.size(); ++i)
    BOOST_TEST(compare_keys(sorted.keys[i - 1], sorted.keys[i], spec.keys) < 0, "at " << i);
  auto first = std::get<double>(decode_key(sorted.keys[0], spec.keys)[1]);
  auto last = std::get<double>(decode_key(sorted.keys[6], spec.keys)[1]);
  BOOST_TEST(first == -HUGE_VAL);
  BOOST_TEST(std::isnan(last)); // NaN last, as PostgreSQL sorts it
  auto chunk = encode_chunk(sorted, 0, 100);
  sorted_partial into{spec};
  auto info = append_chunk(into, chunk);
  BOOST_REQUIRE_MESSAGE(info, test::why(info));
  BOOST_TEST(into.size() == 7u);
}

BOOST_AUTO_TEST_CASE(malformed_chunks_are_rejected_whole) {
  table_spec spec{{key_kind::integer}, {agg_fn::count, agg_fn::avg}};
  agg_table t{spec};
  for (int64_t k : {3, 1, 2}) {
    char key[12] = {0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, static_cast<char>(k)};
    auto* st = t.state(std::string_view(key, 12));
    t.add_rows(st, 0, k);
    t.add_value(st, 1, 1.5 * static_cast<double>(k));
  }
  auto sorted = to_sorted(t);
  BOOST_TEST(std::get<int64_t>(decode_key(sorted.keys[0], spec.keys)[0]) == 1);
  auto good = encode_chunk(sorted, 0, 10);
  sorted_partial into{spec};
  BOOST_REQUIRE(append_chunk(into, good));
  BOOST_TEST(into.size() == 3u);
  // Any truncation, and garbage, is an error that appends nothing.
  for (size_t cut = 8; cut < good.size(); cut += 8) {
    std::string copy = good.substr(0, cut);
    sorted_partial p{spec};
    BOOST_TEST(!append_chunk(p, copy), "a chunk cut at " << cut << " bytes was accepted");
    BOOST_TEST(p.size() == 0u);
  }
  std::string garbage(256, '\x5a');
  sorted_partial g{spec};
  BOOST_TEST(!append_chunk(g, garbage));
  BOOST_TEST(g.size() == 0u);
  // Appending the same run again breaks the key order: rejected.
  BOOST_TEST(!append_chunk(into, good));
  BOOST_TEST(into.size() == 3u);
}

namespace {

// Groups keyed (int, text, float) with ints from `ints`: to_sorted must give exactly the
// order compare_keys defines.
template <class Ints>
void check_sort_order(Ints ints, const char* what) {
  BOOST_TEST_CONTEXT(what) {
    table_spec spec{{key_kind::integer, key_kind::text, key_kind::floating}, {agg_fn::count}};
    agg_table t{spec};
    std::mt19937_64 rng{7};
    const std::vector<std::string> texts{"",         "a",  "page_view", "page_view_long",
                                         "page_view_longer", "page_vie", "zz", "\xff\xfe"};
    auto put = [](std::string& k, const char* p, int32_t len) {
      append_be32(k, static_cast<uint32_t>(len));
      if (len > 0)
        k.append(p, static_cast<size_t>(len));
    };
    auto put64 = [&](std::string& k, uint64_t v) {
      char b[8];
      for (int j = 0; j < 8; ++j)
        b[j] = static_cast<char>(v >> (56 - 8 * j));
      put(k, b, 8);
    };
    std::set<std::string> keys;
    for (int i = 0; i < 5000; ++i) {
      std::string k;
      if (rng() % 13 == 0)
        put(k, nullptr, -1);
      else
        put64(k, static_cast<uint64_t>(ints(rng)));
      if (rng() % 11 == 0) {
        put(k, nullptr, -1);
      } else {
        auto& x = texts[rng() % texts.size()];
        put(k, x.data(), static_cast<int32_t>(x.size()));
      }
      double d = (static_cast<double>(rng() % 2001) - 1000) / 7;
      uint64_t bits;
      std::memcpy(&bits, &d, 8);
      put64(k, bits);
      keys.insert(k);
      t.add_rows(t.state(k), 0, 1);
    }
    auto sorted = to_sorted(t);
    BOOST_REQUIRE_EQUAL(sorted.size(), keys.size());
    std::vector<std::string> want(keys.begin(), keys.end());
    std::sort(want.begin(), want.end(), [&](const std::string& a, const std::string& b) {
      return compare_keys(a, b, spec.keys) < 0;
    });
    for (size_t i = 0; i < want.size(); ++i) {
      BOOST_REQUIRE_MESSAGE(sorted.keys[i] == want[i], "group " << i << " out of order");
      BOOST_TEST((sorted.prefixes[i] == key_prefixes(sorted.keys[i], spec.keys)));
    }
  }
}

} // namespace

// The sort packs the prefixes into few bits when it can: each packing must keep the order
// compare_keys defines (negative and wide ints, NULLs last, texts sharing their first 8
// bytes, NULL against INT64_MAX, floats of both signs).
BOOST_AUTO_TEST_CASE(sorted_partials_follow_compare_keys) {
  // Up to 20 bits of id plus the text's rank: one word.
  check_sort_order([](std::mt19937_64& r) { return static_cast<int64_t>(r() % 1000000); },
                   "small ids");
  // 40 bits of id plus the rank: two words.
  check_sort_order([](std::mt19937_64& r) { return static_cast<int64_t>(r() % (1ull << 40)); },
                   "40-bit ids");
  // Anything, including both ends: the full 128-bit prefixes.
  const std::vector<int64_t> edges{INT64_MIN, -70000, -1, 0, 1, 255, 256, 65536, 99999,
                                   int64_t{1} << 40, INT64_MAX};
  check_sort_order(
    [&](std::mt19937_64& r) {
      return r() % 3 ? edges[r() % edges.size()] : static_cast<int64_t>(r() % 200000) - 100000;
    },
    "wide ids");
  // Few distinct ids far apart: coded by rank.
  check_sort_order([&](std::mt19937_64& r) { return edges[r() % (edges.size() - 1)]; },
                   "ranked ids");
}

namespace {

// Feeds the same rows to a dense and a hashed table.
struct twin_tables {
  explicit twin_tables(const table_spec& s) : spec(s), dense{s}, hashed{s, false} {}
  void add(const std::string& k, double v) {
    for (auto* t : {&dense, &hashed}) {
      auto* st = t->state(k);
      t->add_rows(st, 0, 1);
      for (size_t a = 1; a < spec.aggs.size(); ++a)
        t->add_value(st, a, v);
    }
  }
  // Same groups, same order, same states; and the sorted run survives its table.
  void check(const char* what) {
    BOOST_TEST_CONTEXT(what) {
      BOOST_TEST(dense.groups() == hashed.groups());
      auto a = to_sorted(dense);
      auto b = to_sorted(hashed);
      BOOST_REQUIRE_EQUAL(a.size(), b.size());
      BOOST_TEST(a.size() == dense.groups());
      for (size_t i = 0; i < a.size(); ++i) {
        BOOST_REQUIRE_MESSAGE(a.keys[i] == b.keys[i], "group " << i << " differs");
        BOOST_TEST((a.prefixes[i] == b.prefixes[i]));
        if (i > 0)
          BOOST_TEST(compare_keys(a.keys[i - 1], a.keys[i], spec.keys) < 0, "at " << i);
      }
      BOOST_TEST(a.counts == b.counts);
      BOOST_TEST(a.sums == b.sums);
      BOOST_TEST(a.mins == b.mins);
      BOOST_TEST(a.maxs == b.maxs);
      // Chunks cut straight from the dense cells read back as the sorted run's: in pieces of
      // 7 groups, then once more from an offset the cursor is not at (it walks again).
      dense_cursor cursor;
      sorted_partial cut{spec};
      std::vector<std::string> replies;
      auto fetch = [&](uint64_t offset, uint32_t limit) {
        replies.push_back(encode_chunk(dense, cursor, offset, limit));
        return append_chunk(cut, replies.back());
      };
      for (uint64_t off = 0; off == 0 || off < b.size(); off += 7) {
        auto info = fetch(off, 7);
        BOOST_REQUIRE_MESSAGE(info, test::why(info));
        BOOST_TEST(info->total_groups == b.size());
        BOOST_TEST(info->groups == std::min<uint64_t>(7, b.size() - off));
      }
      BOOST_REQUIRE_EQUAL(cut.size(), b.size());
      for (size_t i = 0; i < b.size(); ++i)
        BOOST_REQUIRE_MESSAGE(cut.keys[i] == b.keys[i], "chunked group " << i << " differs");
      BOOST_TEST(cut.counts == b.counts);
      // (Chunks ship a float state only for the aggregates that use it: compare answers.)
      for (size_t g = 0; g < b.size(); ++g)
        for (size_t a = 0; a < spec.aggs.size(); ++a)
          BOOST_REQUIRE_MESSAGE(cut.final_value(g, a) == b.final_value(g, a),
                                "group " << g << " aggregate " << a);
      if (b.size() > 5) {
        sorted_partial again{spec};
        auto bytes = encode_chunk(dense, cursor, 3, 2);
        BOOST_REQUIRE(append_chunk(again, bytes));
        BOOST_REQUIRE_EQUAL(again.size(), 2u);
        BOOST_TEST(again.keys[0] == b.keys[3]);
        BOOST_TEST(again.keys[1] == b.keys[4]);
      }
      // Merged with itself: every count doubles; the keys still read after `a` is gone.
      auto copy = to_sorted(dense);
      auto merged = merge_sorted({&a, &copy}, spec);
      a = sorted_partial{spec};
      copy = sorted_partial{spec};
      BOOST_REQUIRE_EQUAL(merged.size(), b.size());
      for (size_t i = 0; i < b.size(); ++i) {
        BOOST_REQUIRE(merged.keys[i] == b.keys[i]);
        BOOST_TEST(merged.counts[i * spec.aggs.size()] == 2 * b.counts[i * spec.aggs.size()]);
      }
    }
  }
  table_spec spec;
  agg_table dense, hashed;
};

void put_field(std::string& k, const void* p, int32_t len) {
  append_be32(k, static_cast<uint32_t>(len));
  if (len > 0)
    k.append(static_cast<const char*>(p), static_cast<size_t>(len));
}

void put_int(std::string& k, int64_t v, int width) {
  char b[8];
  for (int j = 0; j < width; ++j)
    b[j] = static_cast<char>(static_cast<uint64_t>(v) >> (8 * (width - 1 - j)));
  put_field(k, b, width);
}

} // namespace

// The dense form (codes per column, one flat array) must give exactly the groups, order and
// states of the hashed form: int4 keys widening both ways, NULLs in every column, texts,
// floats (NaN, -0.0) and bools by dictionary; then a key past its caps turns it hashed
// mid-stream, and the groups carry over.
BOOST_AUTO_TEST_CASE(dense_tables_match_hashed_tables) {
  table_spec spec{{key_kind::integer, key_kind::text, key_kind::floating, key_kind::boolean},
                  {agg_fn::count, agg_fn::avg, agg_fn::min, agg_fn::max}};
  twin_tables t{spec};
  std::mt19937_64 rng{11};
  // Short texts are looked up by their packed length and first and last bytes: the same
  // ends with another middle, at every packing width (4 to 7, 8 to 16 bytes with the length
  // prefix) and just past it (17 bytes, hashed), must stay apart.
  const std::vector<std::string> texts{"",         "a",          "page_view",    "page_view_long",
                                       "zz",       "\xff",       "abc",          "aXc",
                                       "abcdefgh", "abcdXfgh",    "abcdefghijkl", "abcdefXhijkl",
                                       "abcdefghi", "abcdefghijklm", "abcdefgXijklm"};
  const std::vector<double> floats{std::nan(""), -0.0, 0.0, 1.5, -HUGE_VAL};
  auto row = [&](int64_t id, bool nullable = true) {
    std::string k;
    if (nullable && rng() % 17 == 0)
      put_field(k, nullptr, -1);
    else
      put_int(k, id, 4);
    if (rng() % 13 == 0) {
      put_field(k, nullptr, -1);
    } else {
      auto& x = texts[rng() % texts.size()];
      put_field(k, x.data(), static_cast<int32_t>(x.size()));
    }
    if (rng() % 11 == 0) {
      put_field(k, nullptr, -1);
    } else {
      uint64_t bits;
      double d = floats[rng() % floats.size()];
      std::memcpy(&bits, &d, 8);
      put_int(k, static_cast<int64_t>(bits), 8);
    }
    if (rng() % 7 == 0) {
      put_field(k, nullptr, -1);
    } else {
      char b = static_cast<char>(rng() % 2);
      put_field(k, &b, 1);
    }
    t.add(k, static_cast<double>(rng() % 1000) / 8);
  };
  // Ids arrive from the middle outwards: the range widens down and up many times.
  for (int i = 0; i < 20000; ++i)
    row(static_cast<int64_t>(rng() % (1 + static_cast<uint64_t>(i) / 20)) - i / 40);
  BOOST_TEST(t.dense.dense());
  t.check("dense");
  // An id far away: more cells than the cap, so the table turns hashed and keeps going.
  row(int64_t{1} << 30, false);
  BOOST_TEST(!t.dense.dense());
  for (int i = 0; i < 2000; ++i)
    row(static_cast<int64_t>(rng() % 500));
  t.check("turned hashed");
}

BOOST_AUTO_TEST_CASE(dense_tables_cover_integer_ends_and_many_texts) {
  // Ids at both ends of int8: the range is clamped inside int8, never wraps.
  for (int64_t end : {INT64_MAX, INT64_MIN}) {
    table_spec spec{{key_kind::integer}, {agg_fn::count, agg_fn::sum}};
    twin_tables t{spec};
    for (int64_t i = 0; i < 300; ++i) {
      std::string k;
      put_int(k, end == INT64_MAX ? end - i % 100 : end + i % 100, 8);
      t.add(k, static_cast<double>(i));
    }
    BOOST_TEST(t.dense.dense());
    t.check(end == INT64_MAX ? "near INT64_MAX" : "near INT64_MIN");
  }
  // More distinct texts than a dictionary keeps: hashed, same groups.
  table_spec spec{{key_kind::text}, {agg_fn::count, agg_fn::max}};
  twin_tables t{spec};
  for (int i = 0; i < 5000; ++i) {
    auto x = "user-" + std::to_string(i % 2500);
    std::string k;
    put_field(k, x.data(), static_cast<int32_t>(x.size()));
    t.add(k, i);
  }
  BOOST_TEST(!t.dense.dense());
  t.check("many texts");
  // count_distinct keeps the hashed form from the start.
  agg_table d{table_spec{{key_kind::integer}, {agg_fn::count_distinct}}};
  BOOST_TEST(!d.dense());
}

// Front-coded keys are untrusted like the rest: a shared run longer than the previous key,
// or one reaching past the bytes, is refused; the plain form still reads.
BOOST_AUTO_TEST_CASE(packed_chunk_keys_are_checked) {
  table_spec spec{{key_kind::integer, key_kind::text}, {agg_fn::count}};
  agg_table t{spec};
  for (int64_t id : {7, 7, 8, 9}) {
    std::string k;
    put_int(k, id, 8);
    put_field(k, "click", 5);
    t.add_rows(t.state(k), 0, 1);
  }
  auto sorted = to_sorted(t);
  auto good = encode_chunk(sorted, 0, 10);
  auto rewrite = [&](auto edit) {
    capnp::MallocMessageBuilder mb;
    wharf::protocols::flat_reader rd{good};
    mb.setRoot(rd.get<wharf::reports::WorkerReply>());
    edit(mb.getRoot<wharf::reports::WorkerReply>().getChunk());
    return wharf::protocols::message_bytes(mb);
  };
  {
    sorted_partial p{spec};
    auto info = append_chunk(p, good);
    BOOST_REQUIRE_MESSAGE(info, test::why(info));
    BOOST_TEST(p.size() == 3u);
    BOOST_TEST(p.key_stores.size() == 1u);
    // Front coding pays: 3 keys of 21 bytes, the 2nd and 3rd share 11 bytes.
    wharf::protocols::flat_reader rd{good};
    BOOST_TEST(rd.get<wharf::reports::WorkerReply>().getChunk().getPackedKeys().size() < 3u * 21u);
  }
  // The first key claims to share bytes with a key before it.
  auto bad_shared = rewrite([](wharf::reports::PartialChunk::Builder c) {
    c.getPackedKeys()[0] = 5;
  });
  sorted_partial p1{spec};
  BOOST_TEST(!append_chunk(p1, bad_shared));
  BOOST_TEST(p1.size() == 0u);
  // A suffix length past the end of the bytes.
  auto bad_rest = rewrite([](wharf::reports::PartialChunk::Builder c) {
    c.getPackedKeys()[1] = 0x7f;
  });
  sorted_partial p2{spec};
  BOOST_TEST(!append_chunk(p2, bad_rest));
  // Front coding that would rebuild far more than a writer ever sends (a 1 MiB key, then
  // groups sharing all but its last byte): refused before anything that size is allocated.
  auto bomb = rewrite([](wharf::reports::PartialChunk::Builder c) {
    constexpr uint32_t groups = 40;
    std::string keys, counts;
    auto varint = [](std::string& out, uint64_t v) {
      while (v >= 0x80) {
        out.push_back(static_cast<char>(v | 0x80));
        v >>= 7;
      }
      out.push_back(static_cast<char>(v));
    };
    std::string first;
    put_field(first, std::string(1000000, 'a').data(), 1000000);
    varint(keys, 0);
    varint(keys, first.size());
    keys += first;
    for (uint32_t g = 1; g < groups; ++g) {
      varint(keys, first.size() - 1);
      varint(keys, 1);
      keys.push_back(static_cast<char>('a' + g));
    }
    for (uint32_t g = 0; g < groups; ++g)
      varint(counts, 1);
    c.setGroups(groups);
    c.setPackedKeys(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(keys.data()), keys.size()));
    c.setPackedCounts(
      capnp::Data::Reader(reinterpret_cast<const kj::byte*>(counts.data()), counts.size()));
  });
  table_spec text_spec{{key_kind::text}, {agg_fn::count}};
  sorted_partial p4{text_spec};
  auto refused = append_chunk(p4, bomb);
  BOOST_TEST(!refused);
  if (!refused)
    BOOST_TEST(message_of(refused.error()).find("packed keys") != std::string::npos,
               message_of(refused.error()));
  BOOST_TEST(p4.size() == 0u);
  // The plain form (keys and counts as they are) decodes to the same groups.
  auto plain = rewrite([&](wharf::reports::PartialChunk::Builder c) {
    std::string keys;
    for (auto k : sorted.keys)
      keys.append(k);
    c.setKeys(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(keys.data()), keys.size()));
    c.disownPackedKeys();
    c.disownPackedCounts();
    auto counts = c.initCounts(static_cast<unsigned>(sorted.counts.size()));
    for (unsigned i = 0; i < counts.size(); ++i)
      counts.set(i, sorted.counts[i]);
  });
  sorted_partial p3{spec};
  auto info = append_chunk(p3, plain);
  BOOST_REQUIRE_MESSAGE(info, test::why(info));
  BOOST_REQUIRE_EQUAL(p3.size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    BOOST_TEST(p3.keys[i] == sorted.keys[i]);
  BOOST_TEST(p3.counts == sorted.counts);
}

// A node's analytics service as the coordinator sees it: read requests (runs of adjacent
// partitions) that overlap — a request inside another's run, one overlapping its end, one
// for partitions read already — are all answered Done, every partition is read exactly once
// (the collected partial equals the single statement), and a run that is not adjacent is
// refused.
BOOST_FIXTURE_TEST_CASE(a_node_reads_each_partition_once_whatever_requests_overlap,
                        engine_fixture) {
  if (!pg)
    return;
  namespace rp = wharf::reports;
  auto p = plan(def(), params("2025-01-01", "2025-12-31 23:59:59"), read_mode::pushdown);
  p.report_id = "overlap-" + std::to_string(::getpid());
  auto parts = plan_partitions(*pg, p, 8);
  BOOST_REQUIRE_MESSAGE(parts, test::why(parts));
  BOOST_REQUIRE_EQUAL(parts->size(), 8u);
  p.partitions = 8;

  caf::actor_system_config cfg;
  runtime::add_types(cfg);
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  runtime::node_config node;
  analytics_settings settings;
  settings.analytics.dsn = std::getenv("WHARF_PG_DSN");
  settings.analytics.readers = 2;
  auto spec = analytics_child(node, settings);
  runtime::child_context ctx{"services/analytics", caf::actor{}, nullptr};
  auto parent = sys.spawn([spec, ctx](caf::event_based_actor* me) -> caf::behavior {
    auto child = spec.start(*me, ctx);
    return {[child](caf::get_atom) { return child; }};
  });
  caf::scoped_actor self{sys};
  caf::actor service;
  self->request(parent, caf::infinite, caf::get_atom::value)
    .receive([&](caf::actor& a) { service = a; },
             [&](caf::error& e) { BOOST_FAIL("no service: " << sys.render(e)); });

  auto run = [&](size_t from, size_t to) {
    return std::vector<partition>(parts->begin() + static_cast<std::ptrdiff_t>(from),
                                  parts->begin() + static_cast<std::ptrdiff_t>(to));
  };
  auto ask = [&](const std::vector<partition>& r) {
    return self->request(service, caf::infinite, runtime::call_atom::value,
                         encode_read_call(p, r, 60000));
  };
  // The reply's kind ("done" or the error code).
  auto answer = [&](auto& h) {
    std::string out = "no answer";
    h.receive(
      [&](std::string& bytes) {
        protocols::flat_reader rd{bytes};
        BOOST_REQUIRE(rd.ok());
        auto r = rd.get<rp::WorkerReply>();
        out = r.isDone()    ? std::string("done")
              : r.isError() ? std::string(r.getError().getCode().cStr()) + ": "
                                + r.getError().getMessage().cStr()
                            : std::string("unexpected reply");
      },
      [&](caf::error& e) { out = sys.render(e); });
    return out;
  };
  {
    // Sent together: the service takes them in order, so 1 and 2..3 are pending when the
    // later requests arrive.
    auto a = ask(run(0, 3));
    auto b = ask(run(1, 2));
    auto c = ask(run(2, 4));
    BOOST_TEST(answer(a) == "done");
    BOOST_TEST(answer(b) == "done");
    BOOST_TEST(answer(c) == "done");
  }
  auto d = ask(run(4, 8));
  BOOST_TEST(answer(d) == "done");
  auto again = ask(run(0, 2));
  BOOST_TEST(answer(again) == "done");
  auto gap = ask({(*parts)[5], (*parts)[7]});
  BOOST_TEST(answer(gap).rfind("INVALID_ARGUMENT: partitions of one read must be adjacent", 0)
             == 0u);

  // Collect the node's partial, as the coordinator pages through it.
  sorted_partial got{p.spec()};
  std::deque<std::string> chunks;
  uint64_t total = 0;
  std::vector<uint32_t> seen;
  do {
    capnp::MallocMessageBuilder mb;
    auto call = mb.initRoot<rp::WorkerCall>().initCollect();
    call.setReportId(p.report_id);
    call.setOffset(got.size());
    call.setLimit(500);
    self->request(service, caf::infinite, runtime::call_atom::value, protocols::message_bytes(mb))
      .receive([&](std::string& bytes) { chunks.push_back(std::move(bytes)); },
               [&](caf::error& e) { BOOST_FAIL("collect: " << sys.render(e)); });
    auto info = append_chunk(got, chunks.back());
    BOOST_REQUIRE_MESSAGE(info, test::why(info));
    BOOST_REQUIRE(info->groups > 0u);
    total = info->total_groups;
    seen = info->partitions;
  } while (got.size() < total);
  std::sort(seen.begin(), seen.end());
  BOOST_TEST(seen == (std::vector<uint32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  check_equal(final_rows(got), truth(p));
  self->send_exit(parent, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_SUITE_END()
