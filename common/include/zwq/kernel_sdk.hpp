// The kernel SDK: write a zwq kernel as a plain C++ function and register it with one macro.
//
//   #include <zwq/kernel_sdk.hpp>
//
//   // The sum of squares of an f64 array: one slice in, one number out.
//   double sumsq(std::span<const double> x) {
//     double s = 0;
//     for (double v : x) s += v * v;
//     return s;
//   }
//   ZWQ_KERNEL("sumsq", sumsq, sum, reduce, .help = "sum of x*x");
//
// Build it with zwq_add_kernel_plugin() (find_package(zwq)) and load it with
// `zwq-worker --plugin libNAME.so`; docs/PLUGINS.md walks through it.
//
// ZWQ_KERNEL(NAME, FUNCTION, COMBINER, SHAPE [, .help = "...", .validate = fn])
//   NAME      the kernel's name in jobs (a string literal)
//   FUNCTION  a plain function (not a lambda or a template); its parameters, in any order, are
//             filled by type:
//               std::span<const T>   an input slice (the first is `input`, the second `input2`)
//               std::span<T>         the output slice (map and generate kernels)
//               const zwq::Params&   the job's parameters; for `params` kernels, one parameter set
//                                    over the job's shared parameters (the set's values win)
//               zwq::sdk::Range      where the slice lies (first, count, job_first, job_count)
//               zwq::sdk::Reducer&   the slice's accumulator, to fold in many values
//               const zwq::SliceContext&   everything, untyped (any dtype)
//             T is float, double, std::int32_t, std::int64_t or std::uint8_t: the kernel then
//             accepts only arrays of that dtype, which the broker checks when a job is submitted.
//             It returns void, zwq::Status (an error fails the slice, with its message), a number
//             (folded into the slice's result as Reducer::add does) or, for `gather` kernels, any
//             value msgpack can pack (appended to the slice's bytes).
//   COMBINER  how slice results merge, in the broker, without running user code:
//             sum, exact_sum (the exact sum, rounded once: the same bits for any slicing),
//             min, max, moments (mean and variance), count, histogram (params lo, hi,
//             bins=10), gather (each slice's bytes returned to the client in slice order)
//   SHAPE     reduce (one input), reduce2 (input, input2), map (input -> output), range (integer
//             points, no array), params (one call per parameter set of JobSpec.param_sets, like
//             Pool.starmap), generate (no input -> output)
//
// A kernel runs on many workers at once and must be deterministic and free of shared state: the
// same slice gives the same bits wherever it runs. Exceptions it throws fail the slice
// (kKernelFailed) and never reach the worker.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <msgpack.hpp>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "zwq/kernel.hpp"
#include "zwq/plugin_abi.hpp"

namespace zwq::sdk {

// Where a slice lies: elements or points [first, first + count) of the job's
// [job_first, job_first + job_count). For `params` kernels: one parameter set, number `first`.
struct Range {
  std::uint64_t first = 0;
  std::uint64_t count = 0;
  std::uint64_t job_first = 0;
  std::uint64_t job_count = 0;
  std::uint64_t slice = 0;  // the slice's index in the job
};

// A slice's accumulator: folds values into the slice's Partial the way its combiner merges.
// One per slice call; not thread-safe.
class Reducer {
 public:
  // `out` is the combiner's identity (run_kernel made it); `params` shapes a histogram.
  Reducer(Partial& out, const Params* params) : p_(out) {
    if (p_.combiner == Combiner::kHistogram) configure_histogram(params);
  }

  Combiner combiner() const { return p_.combiner; }
  // kInvalidArgument when the histogram's parameters are unusable (then nothing is folded).
  const Status& status() const { return status_; }

  // sum: adds v (double-double, no bits lost); exact_sum: adds v exactly; min, max: keeps the
  // extreme (NaN wins); moments: one more observation; count: adds v (a non-negative whole
  // number); histogram: counts v in its bin (below lo: underflow; at or above hi, or NaN:
  // overflow); gather: packs v.
  void add(double v) {
    switch (p_.combiner) {
      case Combiner::kSum:
        dd_add(p_.hi, p_.lo, v);
        break;
      case Combiner::kMin:
      case Combiner::kMax:
        extreme(v, p_.combiner == Combiner::kMin);
        break;
      case Combiner::kMoments:
        observe(v);
        break;
      case Combiner::kCount:
        p_.count += v > 0 ? static_cast<std::uint64_t>(v) : 0;
        break;
      case Combiner::kHistogram:
        bin(v);
        break;
      case Combiner::kGather:
        gather(v);
        break;
      case Combiner::kExactSum:
        exact_add(v);
        break;
    }
  }
  // count: adds n.
  void add_count(std::uint64_t n) { p_.count += n; }
  // gather: appends msgpack(value) to the slice's bytes (the client unpacks them in order).
  template <typename T>
  void gather(const T& value) {
    msgpack::sbuffer buf;
    msgpack::pack(buf, value);
    p_.bytes.append(buf.data(), buf.size());
  }
  // gather: appends raw bytes.
  void gather_bytes(std::string_view bytes) { p_.bytes.append(bytes); }

  // The Partial itself, for kernels that fill it directly (see zwq/partial.hpp).
  Partial& partial() { return p_; }

  // Sets the elements covered once the slice is done: the slice's count, except for min, max
  // and moments, which count the values added. An exact sum's expansion then goes where
  // kExactSum puts it: its two largest components in hi and lo, the rest in terms (the broker
  // streams a slice's hi and lo).
  void finish(std::uint64_t slice_count) {
    if (p_.combiner == Combiner::kMin || p_.combiner == Combiner::kMax ||
        p_.combiner == Combiner::kMoments) {
      p_.n = added_;
    } else {
      p_.n = slice_count;
    }
    if (p_.combiner == Combiner::kExactSum && std::isfinite(p_.hi)) {
      std::vector<double> expansion;
      expansion.swap(p_.terms);
      set_exact_terms(p_, expansion);
    }
  }

 private:
  // The whole expansion lives in terms (hi and lo stay 0) until finish(), or until a special
  // or an overflow: then hi holds it, as kExactSum says (zwq/partial.hpp).
  void exact_add(double v) {
    if (!std::isfinite(p_.hi)) {
      if (!std::isfinite(v)) p_.hi += v;
      return;
    }
    double special = v;
    if (std::isfinite(v) && (v == 0 || expansion_add(p_.terms, v, &special))) return;
    p_.hi = special;
    p_.lo = 0;
    p_.terms.clear();
  }
  void extreme(double v, bool want_min) {
    if (added_++ == 0 || std::isnan(v)) {
      p_.hi = v;
    } else if (!std::isnan(p_.hi)) {
      p_.hi = want_min ? std::min(p_.hi, v) : std::max(p_.hi, v);
    }
  }
  // Welford's update; the collector merges (n, mean, M2) by Chan et al.
  void observe(double v) {
    ++added_;
    const double delta = v - p_.hi;
    p_.hi += delta / static_cast<double>(added_);
    p_.lo += delta * (v - p_.hi);
  }
  void configure_histogram(const Params* params) {
    const Params none;
    const Params& ps = params ? *params : none;
    const double bins = ps.get_double("bins", 10);
    lo_ = ps.get_double("lo", std::numeric_limits<double>::quiet_NaN());
    hi_ = ps.get_double("hi", std::numeric_limits<double>::quiet_NaN());
    if (bins != std::floor(bins) || bins < 1 || bins > 1e6 || !(lo_ < hi_) ||
        !std::isfinite(hi_ - lo_) || p_.bins.size() != static_cast<std::size_t>(bins) + 2) {
      status_ = make_error(ErrorCode::kInvalidArgument,
                           "a histogram kernel needs parameters lo < hi and bins in 1..1000000");
      return;
    }
    nbins_ = static_cast<std::uint64_t>(bins);
  }
  void bin(double v) {
    if (nbins_ == 0) return;
    if (v < lo_) {
      ++p_.bins[nbins_];
    } else if (!(v < hi_)) {
      ++p_.bins[nbins_ + 1];
    } else {
      const auto k =
          static_cast<std::uint64_t>((v - lo_) / (hi_ - lo_) * static_cast<double>(nbins_));
      ++p_.bins[std::min(k, nbins_ - 1)];
    }
  }

  Partial& p_;
  Status status_;
  std::uint64_t added_ = 0;
  std::uint64_t nbins_ = 0;
  double lo_ = 0, hi_ = 0;
};

// The optional last arguments of ZWQ_KERNEL, as designated initializers.
struct Options {
  const char* help = nullptr;     // one line for `zwq kernels`
  ValidateFn validate = nullptr;  // checks a job's parameters on the worker, before any slice runs
};

// The COMBINER and SHAPE words of ZWQ_KERNEL.
namespace combiners {
inline constexpr Combiner sum = Combiner::kSum;
inline constexpr Combiner min = Combiner::kMin;
inline constexpr Combiner max = Combiner::kMax;
inline constexpr Combiner moments = Combiner::kMoments;
inline constexpr Combiner count = Combiner::kCount;
inline constexpr Combiner histogram = Combiner::kHistogram;
inline constexpr Combiner gather = Combiner::kGather;
inline constexpr Combiner exact_sum = Combiner::kExactSum;
}  // namespace combiners
namespace shapes {
inline constexpr KernelShape reduce = KernelShape::kReduce;
inline constexpr KernelShape reduce2 = KernelShape::kReduce2;
inline constexpr KernelShape map = KernelShape::kMap;
inline constexpr KernelShape range = KernelShape::kRange;
inline constexpr KernelShape params = KernelShape::kParams;
inline constexpr KernelShape generate = KernelShape::kGenerate;
}  // namespace shapes

// Hidden: each plugin keeps its own table even when several are loaded into one worker.
namespace detail __attribute__((visibility("hidden"))) {

  template <typename>
  inline constexpr bool kAlwaysFalse = false;

  template <typename T>
  struct SpanTraits {
    static constexpr bool kConst = false;
    static constexpr bool kMutable = false;
  };
  template <typename T>
  struct SpanTraits<std::span<const T>> {
    static constexpr bool kConst = true;
    static constexpr bool kMutable = false;
    using Element = T;
  };
  template <typename T>
  requires(!std::is_const_v<T>) struct SpanTraits<std::span<T>> {
    static constexpr bool kConst = false;
    static constexpr bool kMutable = true;
    using Element = T;
  };

  template <typename P>
  using Bare = std::remove_cvref_t<P>;
  template <typename P>
  inline constexpr bool kIsInput = SpanTraits<Bare<P>>::kConst;
  template <typename P>
  inline constexpr bool kIsOutput = SpanTraits<Bare<P>>::kMutable;
  template <typename P>
  inline constexpr bool kIsContext = std::is_same_v<Bare<P>, SliceContext>;

  template <typename F>
  struct FnTraits {
    static_assert(kAlwaysFalse<F>, "ZWQ_KERNEL needs a plain function (not a lambda or functor)");
  };
  template <typename R, typename... A>
  struct FnTraits<R (*)(A...)> {
    using Return = R;
    using Args = std::tuple<A...>;
  };
  template <typename R, typename... A>
  struct FnTraits<R (*)(A...) noexcept> : FnTraits<R (*)(A...)> {};

  // How many parameters among the first I of Args satisfy Pred.
  template <typename Args, template <typename> class Pred, std::size_t I>
  constexpr std::size_t count_before() {
    return []<std::size_t... J>(std::index_sequence<J...>) {
      return (std::size_t{0} + ... + (Pred<std::tuple_element_t<J, Args>>::value ? 1 : 0));
    }
    (std::make_index_sequence<I>{});
  }
  template <typename P>
  struct IsInputP : std::bool_constant<kIsInput<P>> {};
  template <typename P>
  struct IsOutputP : std::bool_constant<kIsOutput<P>> {};
  template <typename P>
  struct IsContextP : std::bool_constant<kIsContext<P>> {};

  template <typename Args, template <typename> class Pred>
  constexpr std::size_t count_all() {
    return count_before<Args, Pred, std::tuple_size_v<Args>>();
  }

  // The element type of the first parameter satisfying Pred, as a DType (kNone if there is none).
  template <typename Args, template <typename> class Pred, std::size_t I = 0>
  constexpr DType element_dtype() {
    if constexpr (I == std::tuple_size_v<Args>) {
      return DType::kNone;
    } else if constexpr (Pred<std::tuple_element_t<I, Args>>::value) {
      using E =
          std::remove_const_t<typename SpanTraits<Bare<std::tuple_element_t<I, Args>>>::Element>;
      return dtype_of<E>();
    } else {
      return element_dtype<Args, Pred, I + 1>();
    }
  }

  // Whether parameter P, if it satisfies Pred, has the element type `want`.
  template <typename P, template <typename> class Pred>
  constexpr bool element_is(DType want) {
    if constexpr (Pred<P>::value) {
      using E = std::remove_const_t<typename SpanTraits<Bare<P>>::Element>;
      return dtype_of<E>() == want;
    } else {
      return true;
    }
  }
  // Whether every parameter satisfying Pred has the element type `want`.
  template <typename Args, template <typename> class Pred>
  constexpr bool same_elements(DType want) {
    return [want]<std::size_t... J>(std::index_sequence<J...>) {
      return (true && ... && element_is<std::tuple_element_t<J, Args>, Pred>(want));
    }
    (std::make_index_sequence<std::tuple_size_v<Args>>{});
  }

  // What a kernel call's arguments are made of.
  struct Call {
    const SliceContext& ctx;
    Reducer& reducer;
    const Params& params;
    Range range;
  };

  // The argument for parameter type P; `kInput` says which input a const span is (0 or 1).
  template <typename P, std::size_t kInput>
  decltype(auto) argument(Call & c) {
    using D = Bare<P>;
    if constexpr (SpanTraits<D>::kConst) {
      using E = std::remove_const_t<typename SpanTraits<D>::Element>;
      static_assert(kInput < 2, "a kernel reads at most two inputs (input, input2)");
      const SliceView& v = kInput == 0 ? c.ctx.in : c.ctx.in2;
      return D(v.as<E>(), static_cast<std::size_t>(c.ctx.count));
    } else if constexpr (SpanTraits<D>::kMutable) {
      using E = typename SpanTraits<D>::Element;
      return D(c.ctx.out.as<E>(), static_cast<std::size_t>(c.ctx.count));
    } else if constexpr (std::is_same_v<D, Params>) {
      static_assert(std::is_const_v<std::remove_reference_t<P>> || !std::is_reference_v<P>,
                    "take parameters as const zwq::Params&");
      return (c.params);
    } else if constexpr (std::is_same_v<D, Reducer>) {
      static_assert(std::is_lvalue_reference_v<P> && !std::is_const_v<std::remove_reference_t<P>>,
                    "take the accumulator as zwq::sdk::Reducer&");
      return (c.reducer);
    } else if constexpr (std::is_same_v<D, Range>) {
      return c.range;
    } else if constexpr (std::is_same_v<D, SliceContext>) {
      return (c.ctx);
    } else {
      static_assert(kAlwaysFalse<P>,
                    "a kernel parameter must be std::span<const T>, std::span<T>, "
                    "const zwq::Params&, zwq::sdk::Range, zwq::sdk::Reducer& or "
                    "const zwq::SliceContext&");
    }
  }

  template <auto Fn>
  decltype(auto) invoke(Call & c) {
    using Args = typename FnTraits<decltype(Fn)>::Args;
    return [&]<std::size_t... I>(std::index_sequence<I...>)->decltype(auto) {
      return Fn(argument<std::tuple_element_t<I, Args>, count_before<Args, IsInputP, I>()>(c)...);
    }
    (std::make_index_sequence<std::tuple_size_v<Args>>{});
  }

  // One call of the user's function; its return value folded into the slice's result.
  template <auto Fn, Combiner C, KernelShape S>
  Status call_once(Call & c) {
    using R = typename FnTraits<decltype(Fn)>::Return;
    if constexpr (std::is_void_v<R>) {
      invoke<Fn>(c);
      if constexpr (C == Combiner::kCount &&
                    (S == KernelShape::kMap || S == KernelShape::kGenerate)) {
        c.reducer.add_count(c.ctx.count);  // a map counts the elements it wrote
      }
    } else if constexpr (std::is_same_v<R, Status>) {
      if (Status s = invoke<Fn>(c); !s.ok()) return s;
    } else if constexpr (C == Combiner::kGather) {
      c.reducer.gather(invoke<Fn>(c));
    } else if constexpr (std::is_integral_v<R> && C == Combiner::kCount) {
      const auto v = invoke<Fn>(c);
      c.reducer.add_count(v > 0 ? static_cast<std::uint64_t>(v) : 0);
    } else if constexpr (std::is_arithmetic_v<R>) {
      c.reducer.add(static_cast<double>(invoke<Fn>(c)));
    } else {
      static_assert(kAlwaysFalse<R>,
                    "a kernel returns void, zwq::Status or a number; other values need the "
                    "gather combiner");
    }
    return Status::Ok();
  }

  // The KernelFn of a typed kernel.
  template <auto Fn, Combiner C, KernelShape S>
  Status run(const SliceContext& ctx, Partial& out) noexcept {
    try {
      Reducer reducer(out, ctx.params);
      if (!reducer.status().ok()) return reducer.status();
      const Params none;
      [[maybe_unused]] const Range range{ctx.first, ctx.count, ctx.job_first, ctx.job_count,
                                         ctx.slice};
      if constexpr (S == KernelShape::kParams) {
        const bool shared = ctx.params != nullptr && !ctx.params->values.empty();
        for (std::uint64_t i = 0; i < ctx.count; ++i) {
          // The set on top of the job's shared parameters (the set's values win).
          Params merged;
          if (shared) {
            merged = *ctx.params;
            for (const auto& [key, value] : ctx.sets[i].values) merged.values[key] = value;
          }
          Call c{ctx, reducer, shared ? merged : ctx.sets[i],
                 Range{ctx.first + i, 1, ctx.job_first, ctx.job_count, ctx.slice}};
          if (Status s = call_once<Fn, C, S>(c); !s.ok()) return s;
        }
      } else {
        Call c{ctx, reducer, ctx.params ? *ctx.params : none, range};
        if (Status s = call_once<Fn, C, S>(c); !s.ok()) return s;
      }
      reducer.finish(ctx.count);
      return Status::Ok();
    } catch (const std::exception& e) {
      return make_error(ErrorCode::kKernelFailed, std::string("the kernel threw: ") + e.what());
    } catch (...) {
      return make_error(ErrorCode::kKernelFailed, "the kernel threw an exception");
    }
  }

  // Compile-time checks of a kernel's signature against its shape, and its table entry.
  template <auto Fn, Combiner C, KernelShape S>
  zwq_plugin_kernel make_entry(const char* name, const Options& options) {
    using Args = typename FnTraits<decltype(Fn)>::Args;
    constexpr std::size_t inputs = count_all<Args, IsInputP>();
    constexpr std::size_t outputs = count_all<Args, IsOutputP>();
    constexpr bool untyped = count_all<Args, IsContextP>() > 0;
    constexpr ShapeNeeds needs = shape_needs(S);
    static_assert(untyped || inputs == (needs.input ? 1u : 0u) + (needs.input2 ? 1u : 0u),
                  "the kernel's std::span<const T> parameters do not match its shape: reduce and "
                  "map take one, reduce2 two, range, params and generate none");
    static_assert(untyped || outputs == (needs.output ? 1u : 0u),
                  "the kernel's std::span<T> (output) parameters do not match its shape: map and "
                  "generate take one, the others none");
    constexpr DType in = element_dtype<Args, IsInputP>();
    constexpr DType out = element_dtype<Args, IsOutputP>();
    static_assert(same_elements<Args, IsInputP>(in),
                  "both inputs of a reduce2 kernel must have the same element type");
    return zwq_plugin_kernel{name,
                             options.help,
                             &run<Fn, C, S>,
                             options.validate,
                             static_cast<std::uint8_t>(C),
                             static_cast<std::uint8_t>(S),
                             static_cast<std::uint8_t>(in),
                             static_cast<std::uint8_t>(out)};
  }

  // This plugin's kernels, in registration order.
  inline std::vector<zwq_plugin_kernel>& table() {
    static std::vector<zwq_plugin_kernel> kernels;
    return kernels;
  }

  struct Registrar {
    explicit Registrar(const zwq_plugin_kernel& k) { table().push_back(k); }
  };

}  // namespace )

// The kernels registered with ZWQ_KERNEL in this program or plugin, as a KernelRegistry (for
// tests that run a plugin's kernels in-process). Fails on a duplicate or malformed entry.
inline Result<KernelRegistry> registered_kernels() {
  KernelRegistry registry;
  for (const zwq_plugin_kernel& k : detail::table()) {
    if (Status s = registry.add(kernel_info_of(k)); !s.ok()) return s.error();
  }
  return registry;
}

}  // namespace zwq::sdk

// The plugin's entry points (see zwq/plugin_abi.hpp). Inline, so that every source file of a
// plugin may include this header; `used` makes each emit them, and the linker keeps one.
extern "C" {
__attribute__((visibility("default"), used)) inline std::uint32_t zwq_plugin_abi_version() {
  return kZwqPluginAbiVersion;
}
__attribute__((visibility("default"), used)) inline const zwq_plugin_kernel* zwq_plugin_kernels(
    std::size_t* count) {
  auto& t = ::zwq::sdk::detail::table();
  if (count != nullptr) *count = t.size();
  return t.data();
}
}

#define ZWQ_SDK_CONCAT2(a, b) a##b
#define ZWQ_SDK_CONCAT(a, b) ZWQ_SDK_CONCAT2(a, b)

// Registers FUNCTION as kernel NAME (see the top of this file).
#define ZWQ_KERNEL(NAME, FUNCTION, COMBINER, SHAPE, ...)                                        \
  static const ::zwq::sdk::detail::Registrar ZWQ_SDK_CONCAT(zwq_sdk_kernel_, __COUNTER__) {     \
    ::zwq::sdk::detail::make_entry<&FUNCTION, ::zwq::sdk::combiners::COMBINER,                  \
                                   ::zwq::sdk::shapes::SHAPE>(NAME,                             \
                                                              ::zwq::sdk::Options{__VA_ARGS__}) \
  }
