#pragma once
/// The one boundary through which a service plugs into a node. `runtime/` is the node
/// (membership, supervision, storage, listeners, the CAF<->KJ bridge, config, metrics) and
/// knows no service by name; each service (`actors/<service>/`) implements `service_module`
/// and `wharf-node` is the list of modules it links:
///
/// ```cpp
/// int main(int argc, char** argv) {
///   my_service::module mine;
///   other_service::module other;
///   return runtime::node_main(argc, argv, {&mine, &other});
/// }
/// ```
///
/// Through this interface alone a module brings: its config sections (parsed, validated,
/// dumped and documented through `config_root`), its CAF message types, its children under
/// the node's `services` supervisor and the roles that run them, its RocksDB column families,
/// its front end on the node's KJ loop (a Cap'n Proto capability handed out by the `Node`
/// bootstrap, HTTP routes, TCP listeners of its own; see `runtime/rpc/front_end.hpp`), its
/// console commands and its metrics (`node_metrics::family`). Every hook has a default that
/// does nothing, so a module overrides only what it brings. `tests/module/` holds a complete
/// small example.
///
/// Threads: `configure`, `validate`, `prepare_process`, `column_families`, `add_types` and
/// `children` run on the main thread while the node starts, in that order; `make_front` on
/// the KJ loop thread; `console_commands` in the `wharf` CLI. One instance per process,
/// owned by `main`, outliving the node.

#include <memory>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/fwd.hpp>

#include "runtime/storage/column_family.hpp"
#include "runtime/supervision/supervisor.hpp"

namespace wharf::runtime {

class config_root;
class module_front;
class node_metrics;
struct console_command;
struct front_context;
struct node_config;

/// One child a module runs under the node's `services` supervisor (path `services/<name>`).
struct module_child {
  child_spec spec;
  /// Nodes with any of these roles run it; empty = every node.
  std::vector<std::string> roles;
};

/// What a module sees of the node when it makes its children.
struct module_context {
  const node_config& node;
  std::shared_ptr<node_metrics> metrics; ///< never null in a node
};

class service_module {
public:
  virtual ~service_module();

  /// Short unique name: the `Node` accessor its capability is served under, the label of its
  /// metrics and listeners, the registry name services find its actor by (at most 10
  /// characters, [a-z0-9_]).
  virtual const char* name() const = 0;

  /// One line for `--help`.
  virtual const char* summary() const = 0;

  /// Declares the module's config sections (`[name]`, `[[name]]`); runs in read, dump and
  /// describe mode (see config_section.hpp). The module keeps what it read.
  virtual void configure(config_root& root);

  /// Checks the whole configuration once it is read; the error (category
  /// `runtime_errc::bad_config`, naming the key) stops the node with exit code 2.
  [[nodiscard]] virtual caf::error validate(const node_config& node) const;

  /// Process-wide settings before the node creates any thread (e.g. allocator tuning).
  virtual void prepare_process();

  /// Registers the module's message types and error categories.
  virtual void add_types(caf::actor_system_config& cfg);

  /// The column families the module keeps state in.
  virtual std::vector<column_family_spec> column_families() const;

  /// The children the module runs, each with the roles that run it.
  virtual std::vector<module_child> children(const module_context& ctx);

  /// The module's front end, made on the node's KJ loop thread when it starts serving, and
  /// destroyed there (before the actor system stops). Null = none.
  virtual std::unique_ptr<module_front> make_front(front_context& ctx);

  /// The module's console commands (see console.hpp).
  virtual std::vector<console_command> console_commands() const;
};

/// The modules a process links, in the order `main` lists them.
using module_list = std::vector<service_module*>;

} // namespace wharf::runtime
