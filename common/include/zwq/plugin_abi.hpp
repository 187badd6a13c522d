// The binary interface between zwq-worker and a kernel plugin (a shared library built with
// zwq_add_kernel_plugin; docs/PLUGINS.md).
//
// A plugin exports two C functions:
//
//   std::uint32_t zwq_plugin_abi_version(void);
//       The kZwqPluginAbiVersion the plugin was compiled against. The worker refuses a plugin
//       whose version differs from its own, before calling anything else in it.
//   const zwq_plugin_kernel* zwq_plugin_kernels(std::size_t* count);
//       The plugin's kernels: a table of *count entries that lives as long as the library.
//
// The table's function pointers take zwq's C++ types (SliceContext, Partial, Params), so a plugin
// must be built with a C++ compiler and standard library compatible with the worker's (the same
// Debian toolchain). kZwqPluginAbiVersion changes whenever one of those types, the table layout
// or the meaning of a field changes; zwq_add_kernel_plugin() builds against the installed headers,
// so rebuilding a plugin against a new zwq is all a version bump asks.
//
// zwq/kernel_sdk.hpp defines both functions for a plugin; nothing here needs to be written by hand.
#pragma once

#include <cstddef>
#include <cstdint>

#include "zwq/kernel.hpp"

// 1: zwq 0.1 (SliceContext with `sets`, KernelShape 1-6, the table below).
// 2: Partial gains `terms`, and Combiner 8 (exact sum).
inline constexpr std::uint32_t kZwqPluginAbiVersion = 2;

// The exported symbol names, for dlsym().
inline constexpr const char* kZwqPluginAbiSymbol = "zwq_plugin_abi_version";
inline constexpr const char* kZwqPluginKernelsSymbol = "zwq_plugin_kernels";

extern "C" {

// One kernel of a plugin. Plain data with C layout; strings are NUL-terminated and owned by the
// plugin. The enum fields carry the wire numbers of zwq::Combiner, zwq::KernelShape and
// zwq::DType (docs/PROTOCOL.md).
struct zwq_plugin_kernel {
  const char* name;           // the kernel's name in jobs (unique within a worker)
  const char* help;           // one line for `zwq kernels`; may be null
  zwq::KernelFn fn;           // computes one slice; never null
  zwq::ValidateFn validate;   // checks a job's parameters on the worker; may be null
  std::uint8_t combiner;      // how partial results merge
  std::uint8_t shape;         // which datasets a slice reads and writes
  std::uint8_t input_dtype;   // the dtype input (and input2) must have; 0: any
  std::uint8_t output_dtype;  // the dtype output must have; 0: any
};

using zwq_plugin_abi_version_fn = std::uint32_t (*)();
using zwq_plugin_kernels_fn = const zwq_plugin_kernel* (*)(std::size_t* count);

}  // extern "C"

namespace zwq {

// The KernelInfo of one table entry (name and fn are checked by the caller).
inline KernelInfo kernel_info_of(const zwq_plugin_kernel& k) {
  KernelInfo info;
  info.name = k.name;
  info.help = k.help ? k.help : "";
  info.fn = k.fn;
  info.validate = k.validate;
  info.combiner = static_cast<Combiner>(k.combiner);
  info.shape = static_cast<KernelShape>(k.shape);
  info.input_dtype = static_cast<DType>(k.input_dtype);
  info.output_dtype = static_cast<DType>(k.output_dtype);
  return info;
}

}  // namespace zwq
