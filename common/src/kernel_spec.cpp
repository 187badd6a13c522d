#include "zwq/kernel_spec.hpp"

namespace zwq {

std::string_view kernel_shape_name(KernelShape s) {
  switch (s) {
    case KernelShape::kReduce:
      return "reduce";
    case KernelShape::kReduce2:
      return "reduce2";
    case KernelShape::kMap:
      return "map";
    case KernelShape::kRange:
      return "range";
    case KernelShape::kParams:
      return "params";
    case KernelShape::kGenerate:
      return "generate";
  }
  return "";
}

bool valid_kernel_shape(KernelShape s) {
  return !kernel_shape_name(s).empty();
}

std::string kernel_spec_problem(const KernelSpec& spec) {
  const auto number = [](auto e) { return std::to_string(static_cast<unsigned>(e)); };
  if (spec.name.empty()) return "a kernel has no name";
  if (spec.name.size() > 255) return "kernel name '" + spec.name.substr(0, 32) + "...' is too long";
  if (spec.combiner < Combiner::kSum || spec.combiner > kLastCombiner) {
    return "kernel '" + spec.name + "' has an unknown combiner " + number(spec.combiner);
  }
  if (!valid_kernel_shape(spec.shape)) {
    return "kernel '" + spec.name + "' has an unknown shape " + number(spec.shape);
  }
  for (DType t : {spec.input_dtype, spec.output_dtype}) {
    if (static_cast<unsigned>(t) > static_cast<unsigned>(DType::kU8)) {
      return "kernel '" + spec.name + "' names an unknown dtype " + number(t);
    }
  }
  return {};
}

}  // namespace zwq
