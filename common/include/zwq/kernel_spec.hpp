// What the outside world knows about a kernel without running it: its name, the shape of data it
// reads and writes, how its partial results merge, and the element types it insists on.
//
// Workers announce a KernelSpec for every kernel they offer (Hello.kernel_specs) and the broker
// lists them (InfoRep.kernel_specs), so that the broker can validate, route and merge a plugin's
// kernel without loading the plugin, and a client can probe the datasets such a job needs
// (docs/PROTOCOL.md, "KernelSpec").
#pragma once

#include <cstdint>
#include <msgpack.hpp>

#include "zwq/msgpack_map.hpp"
#include <string>
#include <string_view>

#include "zwq/dataset.hpp"
#include "zwq/dtype.hpp"
#include "zwq/partial.hpp"

namespace zwq {

// What a kernel reads and writes. Wire-stable numbers.
enum class KernelShape : std::uint8_t {
  kReduce = 1,    // one input array -> a Partial
  kReduce2 = 2,   // two input arrays of equal length (input, input2) -> a Partial
  kMap = 3,       // one input array -> an output array of the same length (plus a Partial)
  kRange = 4,     // no array: the slice is a run of integer points [first, first + count)
  kParams = 5,    // no array: the slice is a run of the job's parameter sets (JobSpec.param_sets)
  kGenerate = 6,  // no input: writes elements [first, first + count) of an output array
};

}  // namespace zwq
// Declared before any struct that packs a KernelShape: MSGPACK_DEFINE's unpack is not a template.
MSGPACK_ADD_ENUM(zwq::KernelShape);

namespace zwq {

// "reduce", "reduce2", "map", "range", "params", "generate"; "" for a number that is no shape.
std::string_view kernel_shape_name(KernelShape s);
bool valid_kernel_shape(KernelShape s);

// Which datasets a job of a shape uses.
struct ShapeNeeds {
  bool input = false;
  bool input2 = false;
  bool output = false;
  bool param_sets = false;  // kParams: the slices are runs of JobSpec.param_sets
};
constexpr ShapeNeeds shape_needs(KernelShape s) {
  switch (s) {
    case KernelShape::kReduce:
      return {true, false, false, false};
    case KernelShape::kReduce2:
      return {true, true, false, false};
    case KernelShape::kMap:
      return {true, false, true, false};
    case KernelShape::kRange:
      return {false, false, false, false};
    case KernelShape::kParams:
      return {false, false, false, true};
    case KernelShape::kGenerate:
      return {false, false, true, false};
  }
  return {};
}

// A kernel as announced on the wire (docs/PROTOCOL.md, "KernelSpec").
struct KernelSpec {
  std::string name;
  Combiner combiner = Combiner::kSum;
  KernelShape shape = KernelShape::kReduce;
  DType input_dtype = DType::kNone;   // the element type input (and input2) must have; none: any
  DType output_dtype = DType::kNone;  // the element type output must have; none: any
  std::string help;                   // one line for `zwq kernels`; not part of the definition
  bool operator==(const KernelSpec&) const = default;
  ZWQ_DEFINE_MAP(name, combiner, shape, input_dtype, output_dtype, help)
};

// Whether two specs define the same kernel: everything but the help text agrees.
inline bool same_definition(const KernelSpec& a, const KernelSpec& b) {
  return a.name == b.name && a.combiner == b.combiner && a.shape == b.shape &&
         a.input_dtype == b.input_dtype && a.output_dtype == b.output_dtype;
}

// Empty when `spec` is usable: a name, a known combiner, shape and dtypes. Otherwise what is
// wrong, for an error message.
std::string kernel_spec_problem(const KernelSpec& spec);

}  // namespace zwq
