#pragma once
/// `wharf report NAME ...`: runs a report through a node's Analytics RPC interface (the
/// Cap'n Proto schema is all it uses) and prints the rows (json, csv or an aligned table, see
/// result_writer.hpp), paging through large results with a few page requests in flight. A
/// progress bar shows on a terminal.

#include <cstdint>
#include <string>
#include <vector>

namespace wharf::actors {

struct report_options {
  std::string name;
  std::string connect = "127.0.0.1:7101";
  std::string start;
  std::string end;
  std::vector<int64_t> users;
  std::vector<std::string> filters; ///< KEY=VALUE
  std::string mode = "auto";
  std::string format = "table";
  std::string out;                  ///< "" = stdout
  uint32_t deadline_ms = 0;
  uint32_t partitions = 0;
  bool progress = true;             ///< only drawn when stderr is a terminal
  bool quiet = false;               ///< no summary line on stderr
};

/// Exit codes: 0 done; 1 the report failed (status, code and message on stderr);
/// 2 usage error; 3 the node is unreachable.
int run_report(const report_options& o);

} // namespace wharf::actors
