// The kernel SDK (zwq/kernel_sdk.hpp): typed functions registered with ZWQ_KERNEL become kernels
// with the right spec, and their results fold into each combiner's partial. The kernels are
// registered in this test program itself, as a plugin registers them in its library.
#include "zwq/kernel_sdk.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <stdexcept>
#include <vector>

#include "zwq/codec.hpp"

using zwq::Combiner;
using zwq::DType;
using zwq::ErrorCode;
using zwq::KernelShape;
using zwq::Params;
using zwq::Partial;
using zwq::SliceContext;

namespace {

double sdk_sum(std::span<const double> x) {
  double s = 0;
  for (double v : x) s += v;
  return s;
}
void sdk_fold(std::span<const float> x, zwq::sdk::Reducer& r) {
  for (float v : x) r.add(v);
}
double sdk_dot(std::span<const std::int32_t> a, std::span<const std::int32_t> b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}
void sdk_twice(std::span<const float> x, std::span<double> y, const Params& p) {
  const double k = p.get_double("k", 2);
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = k * x[i];
}
void sdk_index(std::span<std::uint8_t> out, zwq::sdk::Range r) {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(r.first + i);
}
std::int64_t sdk_evens(zwq::sdk::Range r) {
  std::int64_t n = 0;
  for (std::uint64_t i = r.first; i < r.first + r.count; ++i) n += i % 2 == 0;
  return n;
}
std::string sdk_label(const Params& p) {
  return p.get_string("name", "?") + "/" + std::to_string(p.get_int("scale", 1));
}
zwq::Status sdk_picky(const Params& p) {
  if (p.get_int("x", 0) < 0) return zwq::make_error(ErrorCode::kInvalidArgument, "x < 0");
  if (p.get_int("x", 0) == 13) throw std::runtime_error("thirteen");
  return zwq::Status::Ok();
}
std::uint64_t sdk_untyped(const SliceContext& ctx) {
  return ctx.count;
}

}  // namespace

ZWQ_KERNEL("sdk_sum", sdk_sum, sum, reduce, .help = "sum of f64");
ZWQ_KERNEL("sdk_min", sdk_fold, min, reduce);
ZWQ_KERNEL("sdk_max", sdk_fold, max, reduce);
ZWQ_KERNEL("sdk_fsum", sdk_fold, exact_sum, reduce);
ZWQ_KERNEL("sdk_moments", sdk_fold, moments, reduce);
ZWQ_KERNEL("sdk_hist", sdk_fold, histogram, reduce);
ZWQ_KERNEL("sdk_dot", sdk_dot, sum, reduce2);
ZWQ_KERNEL("sdk_twice", sdk_twice, count, map);
ZWQ_KERNEL("sdk_index", sdk_index, count, generate);
ZWQ_KERNEL("sdk_evens", sdk_evens, count, range);
ZWQ_KERNEL("sdk_label", sdk_label, gather, params);
ZWQ_KERNEL("sdk_picky", sdk_picky, count, params);
ZWQ_KERNEL("sdk_untyped", sdk_untyped, count, reduce);

namespace {

const zwq::KernelRegistry& sdk_kernels() {
  static const zwq::KernelRegistry registry = [] {
    auto r = zwq::sdk::registered_kernels();
    if (!r.ok()) throw std::runtime_error(r.error().message);
    return std::move(r).value();
  }();
  return registry;
}

const zwq::KernelInfo& kernel(const std::string& name) {
  const zwq::KernelInfo* k = sdk_kernels().find(name);
  if (k == nullptr) throw std::runtime_error("no kernel " + name);
  return *k;
}

template <typename T>
SliceContext over(const std::vector<T>& x) {
  SliceContext ctx;
  ctx.count = x.size();
  ctx.job_count = x.size();
  ctx.in = zwq::SliceView{x.data(), zwq::dtype_of<T>()};
  return ctx;
}

Partial run(const std::string& name, const SliceContext& ctx) {
  Partial p;
  const zwq::Status s = zwq::run_kernel(kernel(name), ctx, p);
  if (!s.ok()) throw std::runtime_error(s.error().message);
  return p;
}

}  // namespace

TEST_CASE("kernel sdk derives each kernel's spec from its signature", "[common][sdk]") {
  // Without the help text, which the last check looks at.
  auto spec = [](const std::string& name) {
    zwq::KernelSpec s = spec_of(kernel(name));
    s.help.clear();
    return s;
  };
  using S = zwq::KernelSpec;
  CHECK(spec("sdk_sum") ==
        S{"sdk_sum", Combiner::kSum, KernelShape::kReduce, DType::kF64, DType::kNone});
  CHECK(spec("sdk_dot") ==
        S{"sdk_dot", Combiner::kSum, KernelShape::kReduce2, DType::kI32, DType::kNone});
  CHECK(spec("sdk_twice") ==
        S{"sdk_twice", Combiner::kCount, KernelShape::kMap, DType::kF32, DType::kF64});
  CHECK(spec("sdk_index") ==
        S{"sdk_index", Combiner::kCount, KernelShape::kGenerate, DType::kNone, DType::kU8});
  CHECK(spec("sdk_label") ==
        S{"sdk_label", Combiner::kGather, KernelShape::kParams, DType::kNone, DType::kNone});
  CHECK(spec_of(kernel("sdk_untyped")).input_dtype == DType::kNone);
  CHECK(kernel("sdk_sum").help == "sum of f64");
  CHECK(sdk_kernels().size() == 13);
}

TEST_CASE("kernel sdk exports the plugin entry points with the ABI version", "[common][sdk]") {
  CHECK(zwq_plugin_abi_version() == kZwqPluginAbiVersion);
  std::size_t count = 0;
  const zwq_plugin_kernel* table = zwq_plugin_kernels(&count);
  REQUIRE(count == 13);
  CHECK(std::string(table[0].name) == "sdk_sum");
  CHECK(table[0].combiner == static_cast<std::uint8_t>(Combiner::kSum));
  CHECK(table[0].input_dtype == static_cast<std::uint8_t>(DType::kF64));
}

TEST_CASE("kernel sdk folds a returned number into a sum partial", "[common][sdk]") {
  const std::vector<double> x{1, 2, 3, 4.5};
  const Partial p = run("sdk_sum", over(x));
  CHECK(p.combiner == Combiner::kSum);
  CHECK(p.hi + p.lo == 10.5);
  CHECK(p.n == 4);
}

TEST_CASE("kernel sdk reducer adds exactly into an exact sum, and an infinity wins",
          "[common][sdk]") {
  std::vector<float> x{1e30f, 1, -1e30f, 0.5f};
  const Partial p = run("sdk_fsum", over(x));
  CHECK(p.combiner == Combiner::kExactSum);
  CHECK(zwq::exact_sum_value(p) == 1.5);  // a double sum of these gives 0.5
  CHECK(p.n == 4);
  CHECK(p.hi == 1.5);  // the slice's value where the broker streams it from
  CHECK(p.lo == 0);
  CHECK(p.terms.empty());
  x[1] = std::numeric_limits<float>::infinity();
  CHECK(zwq::exact_sum_value(run("sdk_fsum", over(x))) == std::numeric_limits<double>::infinity());
  x[3] = -std::numeric_limits<float>::infinity();
  CHECK(std::isnan(zwq::exact_sum_value(run("sdk_fsum", over(x)))));
}

TEST_CASE("kernel sdk reducer keeps min and max, and NaN wins", "[common][sdk]") {
  std::vector<float> x{3, -1.5f, 7, 2};
  CHECK(run("sdk_min", over(x)).hi == -1.5);
  CHECK(run("sdk_max", over(x)).hi == 7);
  CHECK(run("sdk_max", over(x)).n == 4);
  x[2] = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(run("sdk_min", over(x)).hi));
  CHECK(std::isnan(run("sdk_max", over(x)).hi));
}

TEST_CASE("kernel sdk reducer accumulates moments that merge like the built-in mean",
          "[common][sdk]") {
  const std::vector<float> a{1, 2, 3, 4}, b{10, 20};
  Partial pa = run("sdk_moments", over(a));
  const Partial pb = run("sdk_moments", over(b));
  CHECK(pa.n == 4);
  CHECK(pa.hi == Approx(2.5));
  CHECK(pa.lo == Approx(5.0));  // M2 = sum of squared deviations
  REQUIRE(zwq::merge_into(pa, pb).ok());
  CHECK(pa.n == 6);
  CHECK(pa.hi == Approx(40.0 / 6));
  const double mean = 40.0 / 6;
  double m2 = 0;
  for (double v : {1.0, 2.0, 3.0, 4.0, 10.0, 20.0}) m2 += (v - mean) * (v - mean);
  CHECK(pa.lo == Approx(m2));
}

TEST_CASE("kernel sdk reducer bins a histogram from lo, hi and bins", "[common][sdk]") {
  const std::vector<float> x{0.05f, 0.15f, 0.15f, 0.95f, -1, 1, std::nanf("")};
  SliceContext ctx = over(x);
  Params p;
  p.set("lo", 0.0);
  p.set("hi", 1.0);
  p.set("bins", std::int64_t{10});
  ctx.params = &p;
  const Partial h = run("sdk_hist", ctx);
  REQUIRE(h.bins.size() == 12);
  CHECK(h.bins[0] == 1);
  CHECK(h.bins[1] == 2);
  CHECK(h.bins[9] == 1);
  CHECK(h.bins[10] == 1);  // underflow
  CHECK(h.bins[11] == 2);  // overflow: 1 and NaN

  Params no_range;
  ctx.params = &no_range;
  Partial out;
  const zwq::Status s = zwq::run_kernel(kernel("sdk_hist"), ctx, out);
  CHECK(s.error().code == ErrorCode::kInvalidArgument);
}

TEST_CASE("kernel sdk hands two inputs, an output and a range to the function", "[common][sdk]") {
  const std::vector<std::int32_t> a{1, 2, 3}, b{4, 5, 6};
  SliceContext dot = over(a);
  dot.in2 = zwq::SliceView{b.data(), DType::kI32};
  CHECK(run("sdk_dot", dot).hi == 32);

  const std::vector<float> x{1, 2, 3};
  std::vector<double> y(3);
  SliceContext map = over(x);
  map.out = zwq::MutableSliceView{y.data(), DType::kF64};
  Params k;
  k.set("k", 3.0);
  map.params = &k;
  const Partial written = run("sdk_twice", map);
  CHECK(written.count == 3);  // a void map counts the elements it wrote
  CHECK(y == std::vector<double>{3, 6, 9});

  std::vector<std::uint8_t> pixels(4);
  SliceContext gen;
  gen.first = 100;
  gen.count = 4;
  gen.job_count = 200;
  gen.out = zwq::MutableSliceView{pixels.data(), DType::kU8};
  CHECK(run("sdk_index", gen).count == 4);
  CHECK(pixels == std::vector<std::uint8_t>{100, 101, 102, 103});

  SliceContext range;
  range.first = 10;
  range.count = 5;  // 10, 12, 14
  range.job_count = 100;
  const Partial evens = run("sdk_evens", range);
  CHECK(evens.count == 3);
  CHECK(evens.n == 5);
}

TEST_CASE("kernel sdk calls a params kernel once per set, over the shared parameters",
          "[common][sdk]") {
  std::vector<Params> sets(3);
  sets[0].set("name", std::string("a"));
  sets[1].set("name", std::string("b"));
  sets[2].set("name", std::string("c"));
  sets[2].set("scale", std::int64_t{7});
  Params shared;
  shared.set("scale", std::int64_t{2});
  SliceContext ctx;
  ctx.count = 3;
  ctx.job_count = 3;
  ctx.sets = sets.data();
  ctx.params = &shared;
  const Partial p = run("sdk_label", ctx);
  CHECK(p.n == 3);
  std::vector<std::string> labels;
  std::size_t offset = 0;
  while (offset < p.bytes.size()) {
    auto h = msgpack::unpack(p.bytes.data(), p.bytes.size(), offset);
    labels.push_back(h.get().as<std::string>());
  }
  CHECK(labels == std::vector<std::string>{"a/2", "b/2", "c/7"});
}

TEST_CASE("kernel sdk turns a Status error or an exception into the slice's error",
          "[common][sdk]") {
  std::vector<Params> sets(2);
  sets[1].set("x", std::int64_t{-1});
  SliceContext ctx;
  ctx.count = 2;
  ctx.sets = sets.data();
  Partial p;
  zwq::Status s = zwq::run_kernel(kernel("sdk_picky"), ctx, p);
  CHECK(s.error().code == ErrorCode::kInvalidArgument);
  CHECK(s.error().message == "x < 0");

  sets[1].set("x", std::int64_t{13});
  s = zwq::run_kernel(kernel("sdk_picky"), ctx, p);
  CHECK(s.error().code == ErrorCode::kKernelFailed);
  CHECK_THAT(s.error().message, Catch::Contains("thirteen"));
}

TEST_CASE("run_kernel refuses an array of another dtype than the kernel reads", "[common][sdk]") {
  const std::vector<float> x{1, 2};
  Partial p;
  const zwq::Status s = zwq::run_kernel(kernel("sdk_sum"), over(x), p);
  CHECK(s.error().code == ErrorCode::kDtypeMismatch);
  CHECK_THAT(s.error().message, Catch::Contains("f64") && Catch::Contains("f32"));
  // An untyped kernel takes any dtype.
  CHECK(run("sdk_untyped", over(x)).count == 2);
}

TEST_CASE("kernel specs travel in Hello and malformed ones are refused", "[common][sdk]") {
  zwq::msg::Hello hello;
  hello.worker_id = "w1";
  hello.credit = 4;
  hello.kernels = {"sdk_sum"};
  hello.kernel_specs = {spec_of(kernel("sdk_sum")), spec_of(kernel("sdk_label"))};
  const std::string frame = zwq::encode(hello);
  auto back = zwq::decode<zwq::msg::Hello>(frame.data(), frame.size());
  REQUIRE(back.ok());
  CHECK(back.value().kernel_specs == hello.kernel_specs);

  hello.kernel_specs[1].shape = static_cast<KernelShape>(42);
  const std::string bad = zwq::encode(hello);
  auto refused = zwq::decode<zwq::msg::Hello>(bad.data(), bad.size());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kBadMessage);
  CHECK_THAT(refused.error().message, Catch::Contains("shape"));

  hello.kernel_specs[1] = spec_of(kernel("sdk_label"));
  hello.kernel_specs[1].name.clear();
  const std::string unnamed = zwq::encode(hello);
  CHECK_FALSE(zwq::decode<zwq::msg::Hello>(unnamed.data(), unnamed.size()).ok());
}

TEST_CASE("a JobSpec's parameter sets survive the codec", "[common][sdk]") {
  zwq::msg::SubmitReq req;
  req.job.job_id = "sets-1";
  req.job.kernel = "sdk_label";
  req.job.count = 2;
  req.job.param_sets.resize(2);
  req.job.param_sets[0].set("alpha", 0.5);
  req.job.param_sets[1].set("name", std::string("x"));
  const std::string frame = zwq::encode(req);
  auto back = zwq::decode<zwq::msg::SubmitReq>(frame.data(), frame.size());
  REQUIRE(back.ok());
  CHECK(back.value().job == req.job);
}
