// What the exact sum costs: the `fsum` kernel against `sum`, one thread in this process, each
// fsum pass right after a sum pass over the same warm mapping, in 1 MiB slices as zwq's default
// jobs of 1 GiB take them. Over the bench's array (the pattern, whose blocks never need a second
// pass) and over normal values, whose float32 blocks now and then hold an element 2^18 times
// smaller than their largest and are summed again in levels, and whose float64 blocks are split
// twice or more.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>

#include "process.hpp"
#include "sections.hpp"
#include "stats.hpp"

namespace zwq::bench {
namespace {

constexpr std::uint64_t kSliceBytes = std::uint64_t{1} << 20;

template <typename T>
void fill_normal(T* x, std::uint64_t n) {
  auto fill = [x](std::uint64_t lo, std::uint64_t hi, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    for (std::uint64_t i = lo; i < hi; ++i) x[i] = static_cast<T>(normal(rng));
  };
  std::thread other(fill, n / 2, n, 2u);
  fill(0, n / 2, 1u);
  other.join();
}

bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

// `runs` pairs of a sum pass and an fsum pass; fsum must give the same bits every time and,
// where it is known, the exact value.
json compare(const BenchOptions& o, const char* what, const void* data, DType dtype,
             std::uint64_t n, double exact) {
  const std::uint64_t slice = kSliceBytes / dtype_size(dtype);
  const double bytes = static_cast<double>(n * dtype_size(dtype));
  (void)timed_reduce("sum", data, dtype, n, 1, slice);  // warm
  std::vector<double> sum_gbps, fsum_gbps, ratio;
  double first = 0;
  for (int r = 0; r < o.runs; ++r) {
    const TimedSum s = timed_reduce("sum", data, dtype, n, 1, slice);
    const TimedSum f = timed_reduce("fsum", data, dtype, n, 1, slice);
    if (r == 0) first = f.value;
    if (!same_bits(f.value, first) || (!std::isnan(exact) && f.value != exact)) {
      throw std::runtime_error(std::string(what) + ": fsum gave another value");
    }
    sum_gbps.push_back(bytes / s.seconds / 1e9);
    fsum_gbps.push_back(bytes / f.seconds / 1e9);
    ratio.push_back(s.seconds / f.seconds);
  }
  const Summary sr = summarize(ratio);
  std::fprintf(stderr, "  %s: sum %.2f GB/s, fsum %.2f GB/s, ratio %.3f\n", what,
               summarize(sum_gbps).median, summarize(fsum_gbps).median, sr.median);
  return json{{"what", what},
              {"bytes", n * dtype_size(dtype)},
              {"sum_gbps", to_json(summarize(sum_gbps))},
              {"fsum_gbps", to_json(summarize(fsum_gbps))},
              {"ratio", to_json(sr)},
              {"fsum_value", first}};
}

template <typename T>
json compare_normal(const BenchOptions& o, const char* what, std::uint64_t bytes) {
  const std::string name = unique_name("fsum");
  remove_on_signal("/dev/shm/" + name);
  remove_on_signal("/dev/shm/" + name + ".zwq-meta");
  json out;
  {
    auto a = SharedArray<T>::create(name, bytes / sizeof(T));
    if (!a.ok()) throw std::runtime_error(a.error().to_string());
    fill_normal(a.value().data(), a.value().size());
    out = compare(o, what, a.value().data(), dtype_of<T>(), a.value().size(), NAN);
  }
  forget_on_signal("/dev/shm/" + name);
  forget_on_signal("/dev/shm/" + name + ".zwq-meta");
  return out;
}

}  // namespace

json run_fsum(const BenchOptions& o, const SharedArray<float>& x) {
  const std::uint64_t normal_bytes = std::min<std::uint64_t>(o.array_bytes / 4, 256u << 20);
  json rows = json::array();
  rows.push_back(compare(o, "the bench's array (f32 pattern)", x.data(), DType::kF32, x.size(),
                         pattern_sum(x.size())));
  rows.push_back(compare_normal<float>(o, "normal values, f32", normal_bytes));
  rows.push_back(compare_normal<double>(o, "normal values, f64", normal_bytes));
  return json{{"slice_bytes", kSliceBytes}, {"rows", rows}};
}

}  // namespace zwq::bench
