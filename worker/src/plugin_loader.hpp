// PluginSet: kernel plugins loaded into a worker, and the registry of every kernel it offers.
//
// load() dlopen()s a shared library built with zwq_add_kernel_plugin (zwq/kernel_sdk.hpp),
// checks its ABI version before calling anything else in it, and adds its kernels to the
// registry, which starts as a copy of the built-in kernels. The libraries stay loaded for the
// PluginSet's lifetime, so the registry's function pointers stay valid as long as it lives.
//
// Thread safety: load() is for set-up, on one thread; registry() may then be read from any.
// Move-only (the library handles are owned).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "zwq/kernel.hpp"
#include "zwq/status.hpp"

namespace zwq::worker {

class PluginSet {
 public:
  // The built-in kernels, no plugin.
  PluginSet();
  ~PluginSet();
  PluginSet(PluginSet&&) noexcept;
  PluginSet& operator=(PluginSet&&) noexcept;
  PluginSet(const PluginSet&) = delete;
  PluginSet& operator=(const PluginSet&) = delete;

  // Loads the plugin at `path` (a file path; a bare name is taken relative to the current
  // directory, not searched for like a library) and registers its kernels. Fails, with a message
  // naming the path, and leaves the registry as it was:
  //  kInvalidArgument  the library cannot be loaded (dlerror's reason), lacks a required symbol
  //                    (the message names it), was built for another plugin ABI version (the
  //                    message names both), or has a malformed kernel entry;
  //  kInvalidArgument  one of its kernels has the name of a built-in kernel or of a kernel an
  //                    earlier plugin registered (the message names both sources).
  Status load(const std::string& path);

  // Built-in kernels plus those of every loaded plugin.
  const KernelRegistry& registry() const { return registry_; }
  // The paths loaded so far, in order.
  const std::vector<std::string>& paths() const { return paths_; }

 private:
  struct Library;
  std::vector<std::unique_ptr<Library>> libraries_;  // declared first: destroyed last
  KernelRegistry registry_;
  std::vector<std::string> paths_;
  std::map<std::string, std::string> origins_;  // kernel name -> where it came from
};

// Loads every path in order into a new PluginSet; the first failure is returned.
Result<std::shared_ptr<const PluginSet>> load_plugins(const std::vector<std::string>& paths);

}  // namespace zwq::worker
