#pragma once
/// A RocksDB column family a service module keeps its state in (declared through
/// `service_module::column_families`, opened by the node with its own families, reached
/// through the state store by name).

#include <string>

#include <caf/meta/type_name.hpp>

namespace wharf::runtime {

struct column_family_spec {
  std::string name;          ///< unique in the node; start it with the module's name
  bool large_values = false; ///< values of many KiB each: kept in blob files
};

} // namespace wharf::runtime

namespace wharf::runtime {

/// Names a module's family in a state-store message (see state_store.hpp).
struct column_ref {
  std::string family;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, column_ref& x) {
  return f(caf::meta::type_name("column_ref"), x.family);
}

} // namespace wharf::runtime
