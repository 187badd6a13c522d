// A library that claims another plugin ABI version: the worker must refuse it before calling
// anything else in it.
#include <cstddef>
#include <cstdint>
#include <zwq/plugin_abi.hpp>

extern "C" __attribute__((visibility("default"))) std::uint32_t zwq_plugin_abi_version() {
  return 999;
}
extern "C" __attribute__((visibility("default"))) const zwq_plugin_kernel* zwq_plugin_kernels(
    std::size_t* count) {
  (void)count;
  __builtin_trap();  // must never be called
}
