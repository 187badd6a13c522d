// A library with the ABI version but no kernel table.
#include <cstdint>
#include <zwq/plugin_abi.hpp>

extern "C" __attribute__((visibility("default"))) std::uint32_t zwq_plugin_abi_version() {
  return kZwqPluginAbiVersion;
}
