#include "actors/analytics/result_writer.hpp"

#include <sstream>

#include <boost/test/unit_test.hpp>
#include <capnp/message.h>

using namespace wharf;
using actors::result_writer;
namespace rp = wharf::reports;

namespace {

// A response with columns (id int, name text, score float, ok bool) and three rows, one with
// NULLs and text that needs quoting.
struct sample {
  capnp::MallocMessageBuilder mb;
  rp::ReportResponse::Builder r = mb.initRoot<rp::ReportResponse>();
  sample() {
    auto cols = r.initColumns(4);
    const char* names[] = {"id", "name", "score", "ok"};
    const char* types[] = {"int", "text", "float", "bool"};
    for (unsigned i = 0; i < 4; ++i) {
      cols[i].setName(names[i]);
      cols[i].setType(types[i]);
    }
    auto rows = r.initRows(3);
    auto a = rows[0].initValues(4);
    a[0].setInt(1);
    a[1].setText("plain");
    a[2].setFloat(0.1);
    a[3].setBool(true);
    auto b = rows[1].initValues(4);
    b[0].setInt(-2);
    b[1].setText("has, comma \"and quotes\"");
    b[2].setFloat(1e300);
    b[3].setBool(false);
    auto c = rows[2].initValues(4);
    c[0].setInt(3);
    c[1].setText("");
    c[2].setNull();
    c[3].setNull();
  }
  std::string write(result_writer::format f) {
    std::ostringstream os;
    result_writer w{os, f};
    w.begin(r.asReader().getColumns(), nlohmann::json{{"report_id", "n1-x"}});
    w.rows(r.asReader().getRows());
    w.end();
    BOOST_TEST(w.count() == 3u);
    return os.str();
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(result_writer_suite)

BOOST_AUTO_TEST_CASE(csv_quotes_text_only_when_needed_and_keeps_floats_exact) {
  sample s;
  BOOST_TEST(s.write(result_writer::format::csv)
             == "id,name,score,ok\n"
                "1,plain,0.1,true\n"
                "-2,\"has, comma \"\"and quotes\"\"\",1e+300,false\n"
                "3,\"\",,\n");
}

BOOST_AUTO_TEST_CASE(json_carries_the_response_fields_then_typed_rows) {
  sample s;
  auto out = s.write(result_writer::format::json);
  auto j = nlohmann::json::parse(out);
  BOOST_TEST(j["report_id"] == "n1-x");
  BOOST_REQUIRE(j["rows"].size() == 3u);
  BOOST_TEST(j["rows"][1][1] == "has, comma \"and quotes\"");
  BOOST_TEST(j["rows"][0][2].get<double>() == 0.1);
  BOOST_TEST(j["rows"][2][2].is_null());
  BOOST_TEST(j["rows"][0][3] == true);
}

BOOST_AUTO_TEST_CASE(a_table_pads_every_column_to_its_widest_value) {
  sample s;
  BOOST_TEST(s.write(result_writer::format::table)
             == "id  name                     score   ok   \n"
                "--  -----------------------  ------  -----\n"
                "1   plain                    0.1     true \n"
                "-2  has, comma \"and quotes\"  1e+300  false\n"
                "3                            NULL    NULL \n");
}

BOOST_AUTO_TEST_CASE(a_page_writes_the_same_csv_as_its_rows) {
  sample s;
  std::vector<std::string> types{"int", "text", "float", "bool"};
  protocols::page_writer pw{types};
  for (auto row : s.r.asReader().getRows()) {
    unsigned c = 0;
    for (auto v : row.getValues()) {
      switch (v.which()) {
        case rp::Value::NULL_: pw.put_null(c); break;
        case rp::Value::INT: pw.put_int(c, v.getInt()); break;
        case rp::Value::FLOAT: pw.put_float(c, v.getFloat()); break;
        case rp::Value::TEXT: pw.put_text(c, v.getText().cStr()); break;
        case rp::Value::BOOL: pw.put_bool(c, v.getBool()); break;
      }
      ++c;
    }
  }
  capnp::MallocMessageBuilder mb;
  auto page = mb.initRoot<rp::ResultPage>();
  page.setColumns(s.r.asReader().getColumns());
  pw.write(page);
  protocols::page_view view{page.asReader()};
  BOOST_REQUIRE_MESSAGE(view.ok(), view.error());
  auto csv = s.write(result_writer::format::csv);
  BOOST_TEST(result_writer::csv_text(view) == csv.substr(csv.find('\n') + 1));
}

BOOST_AUTO_TEST_CASE(formats_parse_by_name) {
  BOOST_TEST((result_writer::parse_format("csv") == result_writer::format::csv));
  BOOST_TEST(!result_writer::parse_format("xml").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
