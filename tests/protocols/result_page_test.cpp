#include "protocols/result_page.hpp"

#include <capnp/message.h>

#include <boost/test/unit_test.hpp>

#include "protocols/capnp_io.hpp"

using namespace wharf;
using namespace wharf::protocols;

namespace {

const std::vector<std::string> types{"int", "text", "float", "bool"};

// A page of `n` rows: (i, "t<i>" or NULL every third row, i / 2, i odd).
std::string sample_page(size_t n) {
  page_writer w{types};
  for (size_t i = 0; i < n; ++i) {
    w.put_int(0, static_cast<int64_t>(i) - 5);
    if (i % 3 == 2)
      w.put_null(1);
    else
      w.put_text(1, "t" + std::to_string(i));
    w.put_float(2, static_cast<double>(i) / 2);
    w.put_bool(3, i % 2 == 1);
  }
  capnp::MallocMessageBuilder mb;
  auto p = mb.initRoot<reports::ResultPage>();
  auto cols = p.initColumns(static_cast<unsigned>(types.size()));
  for (unsigned c = 0; c < types.size(); ++c)
    cols[c].setType(types[c]);
  w.write(p);
  return message_bytes(mb);
}

// Rebuilds a page through a builder so a test can damage one part of it.
template <class Damage>
std::string damaged(const std::string& bytes, Damage damage) {
  flat_reader rd{bytes};
  capnp::MallocMessageBuilder mb;
  mb.setRoot(rd.get<reports::ResultPage>());
  damage(mb.getRoot<reports::ResultPage>());
  return message_bytes(mb);
}

std::string error_of(const std::string& bytes) {
  flat_reader rd{bytes};
  BOOST_REQUIRE(rd.ok());
  page_view v{rd.get<reports::ResultPage>()};
  if (!v.ok()) {
    BOOST_CHECK_EQUAL(v.rows(), 0u); // refused whole: no row is readable
    BOOST_CHECK_EQUAL(v.columns(), 0u);
  }
  return v.error();
}

} // namespace

BOOST_AUTO_TEST_SUITE(result_page)

BOOST_AUTO_TEST_CASE(values_round_trip_column_wise) {
  auto bytes = sample_page(10);
  flat_reader rd{bytes};
  page_view v{rd.get<reports::ResultPage>()};
  BOOST_REQUIRE_MESSAGE(v.ok(), v.error());
  BOOST_REQUIRE_EQUAL(v.rows(), 10u);
  BOOST_REQUIRE_EQUAL(v.columns(), 4u);
  for (size_t i = 0; i < 10; ++i) {
    BOOST_CHECK_EQUAL(v.int_at(0, i), static_cast<int64_t>(i) - 5);
    if (i % 3 == 2) {
      BOOST_CHECK(v.kind(1, i) == value_kind::null);
    } else {
      BOOST_CHECK(v.kind(1, i) == value_kind::text);
      BOOST_CHECK_EQUAL(v.text_at(1, i), "t" + std::to_string(i));
    }
    BOOST_CHECK_EQUAL(v.float_at(2, i), static_cast<double>(i) / 2);
    BOOST_CHECK_EQUAL(v.bool_at(3, i), i % 2 == 1);
    BOOST_CHECK(v.kind(0, i) == value_kind::integer);
  }
}

BOOST_AUTO_TEST_CASE(append_copies_a_row_range) {
  auto bytes = sample_page(10);
  flat_reader rd{bytes};
  page_view v{rd.get<reports::ResultPage>()};
  page_writer w{types};
  BOOST_REQUIRE(w.append(v, 4, 9));
  BOOST_CHECK(!w.append(v, 9, 11)); // past the page
  page_writer other{{"int"}};
  BOOST_CHECK(!other.append(v, 0, 1)); // other columns
  capnp::MallocMessageBuilder mb;
  auto p = mb.initRoot<reports::ResultPage>();
  p.initColumns(4);
  w.write(p);
  page_view s{p.asReader()};
  BOOST_REQUIRE_MESSAGE(s.ok(), s.error());
  BOOST_REQUIRE_EQUAL(s.rows(), 5u);
  BOOST_CHECK_EQUAL(s.int_at(0, 0), -1);
  BOOST_CHECK(s.kind(1, 1) == value_kind::null); // row 5
  BOOST_CHECK_EQUAL(s.text_at(1, 2), "t6");
}

BOOST_AUTO_TEST_CASE(wrong_kinds_are_caller_bugs) {
  page_writer w{types};
  BOOST_CHECK_THROW(w.put_text(0, "x"), std::logic_error);
  BOOST_CHECK_THROW(w.put_int(1, 1), std::logic_error);
  BOOST_CHECK_THROW(w.put_int(9, 1), std::out_of_range);
}

BOOST_AUTO_TEST_CASE(malformed_pages_are_refused_whole) {
  auto good = sample_page(6);
  BOOST_CHECK_EQUAL(error_of(good), "");
  // More rows claimed than any column holds.
  BOOST_CHECK_NE(error_of(damaged(good, [](auto p) { p.setRowCount(7); })), "");
  // Fewer rows claimed.
  BOOST_CHECK_NE(error_of(damaged(good, [](auto p) { p.setRowCount(5); })), "");
  // A column short of values.
  BOOST_CHECK_NE(error_of(damaged(good, [](auto p) { p.getData()[0].initInts(3); })), "");
  // NULL flags for another row count.
  BOOST_CHECK_NE(error_of(damaged(good, [](auto p) { p.getData()[1].initNulls(2); })), "");
  // Text ends past the bytes, and out of order.
  BOOST_CHECK_NE(error_of(damaged(good, [](auto p) {
                   p.getData()[1].getTexts().getEnds().set(5, 1000);
                 })),
                 "");
  BOOST_CHECK_NE(error_of(damaged(good, [](auto p) {
                   p.getData()[1].getTexts().getEnds().set(1, 0);
                 })),
                 "");
  // Fewer value columns than columns.
  BOOST_CHECK_NE(error_of(damaged(good, [](auto p) { p.initData(3); })), "");
  // Rows claimed with no value column at all (a JSON or CSV writer would loop on nothing).
  BOOST_CHECK_NE(error_of(damaged(good, [](auto p) { p.initData(0); })), "");
  // A page of the older List(Row) form: refused with a message, not read as empty.
  BOOST_CHECK_NE(error_of(damaged(good, [](auto p) {
                   p.initData(0);
                   p.setRowCount(0);
                   p.initRows(2);
                 })),
                 "");
  // An empty page (no rows, no columns) is fine.
  BOOST_CHECK_EQUAL(error_of(damaged(good, [](auto p) {
                      p.initData(0);
                      p.setRowCount(0);
                    })),
                    "");
}

BOOST_AUTO_TEST_SUITE_END()
