// What exactness costs: the `fsum` kernel against `sum` and `fdot` against `dot`, one thread in
// this process, each exact pass right after a plain pass over the same warm mapping, in 1 MiB
// slices (of the first array) as zwq's default jobs of 1 GiB take them. fsum over the bench's
// array (the pattern, whose blocks never need a second pass) and over normal values, whose
// float32 blocks now and then hold an element 2^18 times smaller than their largest and are
// summed again in levels, and whose float64 blocks are split twice or more; fdot over two arrays
// of normal float32 values, whose products are summed as float64 blocks are.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>

#include "bench_array.hpp"
#include "process.hpp"
#include "sections.hpp"
#include "stats.hpp"

namespace zwq::bench {
namespace {

constexpr std::uint64_t kSliceBytes = std::uint64_t{1} << 20;

template <typename T>
void fill_normal(T* x, std::uint64_t n, unsigned seed) {
  auto fill = [x](std::uint64_t lo, std::uint64_t hi, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    for (std::uint64_t i = lo; i < hi; ++i) x[i] = static_cast<T>(normal(rng));
  };
  std::thread other(fill, n / 2, n, seed + 1);
  fill(0, n / 2, seed);
  other.join();
}

bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

// A plain kernel and its exact twin.
struct Pair {
  const char* plain;
  const char* exact;
};
constexpr Pair kSum{"sum", "fsum"};
constexpr Pair kDot{"dot", "fdot"};

// `runs` pairs of a plain pass and an exact pass; the exact one must give the same bits every
// time and, where it is known, the exact value. `data2`: the second array of a dot.
json compare(const BenchOptions& o, const char* what, Pair k, const void* data, const void* data2,
             DType dtype, std::uint64_t n, double exact) {
  const std::uint64_t slice = kSliceBytes / dtype_size(dtype);
  const double bytes = static_cast<double>(n * dtype_size(dtype) * (data2 != nullptr ? 2 : 1));
  (void)timed_reduce(k.plain, data, dtype, n, 1, slice, data2);  // warm
  std::vector<double> plain_gbps, exact_gbps, ratio;
  double first = 0;
  for (int r = 0; r < o.runs; ++r) {
    const TimedSum s = timed_reduce(k.plain, data, dtype, n, 1, slice, data2);
    const TimedSum f = timed_reduce(k.exact, data, dtype, n, 1, slice, data2);
    if (r == 0) first = f.value;
    if (!same_bits(f.value, first) || (!std::isnan(exact) && f.value != exact)) {
      throw std::runtime_error(std::string(what) + ": " + k.exact + " gave another value");
    }
    plain_gbps.push_back(bytes / s.seconds / 1e9);
    exact_gbps.push_back(bytes / f.seconds / 1e9);
    ratio.push_back(s.seconds / f.seconds);
  }
  const Summary sr = summarize(ratio);
  std::fprintf(stderr, "  %s: %s %.2f GB/s, %s %.2f GB/s, ratio %.3f\n", what, k.plain,
               summarize(plain_gbps).median, k.exact, summarize(exact_gbps).median, sr.median);
  return json{{"what", what},
              {"plain", k.plain},
              {"exact", k.exact},
              {"bytes", static_cast<std::uint64_t>(bytes)},
              {"plain_gbps", to_json(summarize(plain_gbps))},
              {"exact_gbps", to_json(summarize(exact_gbps))},
              {"ratio", to_json(sr)},
              {"exact_value", first}};
}

}  // namespace

json run_fsum(const BenchOptions& o, const SharedArray<float>& x) {
  const std::uint64_t normal_bytes = std::min<std::uint64_t>(o.array_bytes / 4, 256u << 20);
  json rows = json::array();
  rows.push_back(compare(o, "the bench's array (f32 pattern)", kSum, x.data(), nullptr, DType::kF32,
                         x.size(), pattern_sum(x.size())));
  {
    BenchArray<float> a("fsum", normal_bytes / sizeof(float));
    fill_normal(a.array().data(), a.array().size(), 1);
    rows.push_back(compare(o, "normal values, f32", kSum, a.array().data(), nullptr, DType::kF32,
                           a.array().size(), NAN));
    BenchArray<float> b("fsum", normal_bytes / sizeof(float));
    fill_normal(b.array().data(), b.array().size(), 3);
    rows.push_back(compare(o, "normal values, f32 · f32", kDot, a.array().data(), b.array().data(),
                           DType::kF32, a.array().size(), NAN));
  }
  {
    BenchArray<double> a("fsum", normal_bytes / sizeof(double));
    fill_normal(a.array().data(), a.array().size(), 1);
    rows.push_back(compare(o, "normal values, f64", kSum, a.array().data(), nullptr, DType::kF64,
                           a.array().size(), NAN));
  }
  return json{{"slice_bytes", kSliceBytes}, {"rows", rows}};
}

}  // namespace zwq::bench
