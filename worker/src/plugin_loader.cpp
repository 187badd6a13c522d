#include "plugin_loader.hpp"

#include <dlfcn.h>

#include <cstdint>
#include <utility>

#include "zwq/plugin_abi.hpp"

namespace zwq::worker {

namespace {

Error failed(const std::string& path, const std::string& why) {
  return make_error(ErrorCode::kInvalidArgument, "plugin " + path + ": " + why);
}

std::string dl_error() {
  const char* e = ::dlerror();
  return e ? e : "unknown dlopen error";
}

}  // namespace

// One dlopen()ed library, closed on destruction.
struct PluginSet::Library {
  void* handle = nullptr;
  explicit Library(void* h) : handle(h) {}
  ~Library() {
    if (handle) ::dlclose(handle);
  }
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
};

PluginSet::PluginSet() : registry_(KernelRegistry::builtin()) {
  for (const auto& name : registry_.names()) origins_.emplace(name, "the built-in kernels");
}
PluginSet::~PluginSet() = default;
PluginSet::PluginSet(PluginSet&&) noexcept = default;
PluginSet& PluginSet::operator=(PluginSet&&) noexcept = default;

Status PluginSet::load(const std::string& path) {
  // A name without a slash is a file here, as on any command line: dlopen() would search the
  // library path for it instead.
  const std::string file = path.find('/') == std::string::npos ? "./" + path : path;
  // RTLD_LOCAL: two plugins' symbols never resolve against each other. RTLD_NOW: an undefined
  // symbol is reported here, not as a crash in the middle of a slice.
  void* handle = ::dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return failed(path, "cannot load it: " + dl_error());
  auto library = std::make_unique<Library>(handle);

  auto* abi = reinterpret_cast<zwq_plugin_abi_version_fn>(::dlsym(handle, kZwqPluginAbiSymbol));
  if (abi == nullptr) {
    return failed(path, std::string("missing symbol ") + kZwqPluginAbiSymbol +
                            " (is it a zwq kernel plugin? build it with zwq_add_kernel_plugin "
                            "and register kernels with ZWQ_KERNEL)");
  }
  const std::uint32_t version = abi();
  if (version != kZwqPluginAbiVersion) {
    return failed(path, "it was built for zwq plugin ABI version " + std::to_string(version) +
                            ", this worker speaks version " + std::to_string(kZwqPluginAbiVersion) +
                            "; rebuild it against this zwq");
  }
  auto* list = reinterpret_cast<zwq_plugin_kernels_fn>(::dlsym(handle, kZwqPluginKernelsSymbol));
  if (list == nullptr) {
    return failed(path, std::string("missing symbol ") + kZwqPluginKernelsSymbol);
  }
  std::size_t count = 0;
  const zwq_plugin_kernel* table = list(&count);
  if (count > 0 && table == nullptr) return failed(path, "its kernel table is null");

  KernelRegistry next = registry_;
  auto origins = origins_;
  for (std::size_t i = 0; i < count; ++i) {
    const zwq_plugin_kernel& k = table[i];
    if (k.name == nullptr || k.fn == nullptr) {
      return failed(path, "kernel entry " + std::to_string(i) + " has no name or no function");
    }
    KernelInfo info = kernel_info_of(k);
    if (auto clash = origins.find(info.name); clash != origins.end()) {
      return failed(path, "kernel '" + info.name + "' is already defined by " + clash->second);
    }
    std::string name = info.name;
    if (Status s = next.add(std::move(info)); !s.ok()) return failed(path, s.error().message);
    origins.emplace(std::move(name), "plugin " + path);
  }
  registry_ = std::move(next);
  origins_ = std::move(origins);
  libraries_.push_back(std::move(library));
  paths_.push_back(path);
  return Status::Ok();
}

Result<std::shared_ptr<const PluginSet>> load_plugins(const std::vector<std::string>& paths) {
  auto set = std::make_shared<PluginSet>();
  for (const auto& path : paths) {
    if (Status s = set->load(path); !s.ok()) return s.error();
  }
  return std::shared_ptr<const PluginSet>(std::move(set));
}

}  // namespace zwq::worker
