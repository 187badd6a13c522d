// The memory-bandwidth limits zwq is held to (T1, T2): zwq's own sum kernel run in this process
// over the same /dev/shm array, so that the only difference left is the machinery around it.
#include <sys/mman.h>

#include <cstdio>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bench_array.hpp"
#include "process.hpp"
#include "sections.hpp"
#include "stats.hpp"
#include "zwq/kernel.hpp"
#include "zwq/mapping.hpp"

namespace zwq::bench {

namespace {

// Slice sizes (elements) of the in-process sum: BW is the best of them, so that no slice size
// zwq uses can look better than the limit merely because the baseline used another one.
constexpr std::uint64_t kInProcessSlices[] = {std::uint64_t{1} << 16, std::uint64_t{1} << 18,
                                              std::uint64_t{1} << 20, std::uint64_t{1} << 22,
                                              std::uint64_t{1} << 24};
// The slice size of the cold passes: the broker's default, as zwq's cold pass uses.
constexpr std::uint64_t kColdSlice = std::uint64_t{1} << 18;

TimedSum timed_sum(const float* x, std::uint64_t n, int threads, std::uint64_t slice = kColdSlice) {
  return timed_reduce("sum", x, DType::kF32, n, threads, slice);
}

const float* floats(const MappedFile& m) {
  return reinterpret_cast<const float*>(m.data());
}

MappedFile map_file(const std::string& path, bool populate) {
  auto m = MappedFile::open(path, MappedFile::Mode::kRead, populate);
  if (!m.ok()) throw std::runtime_error(m.error().to_string());
  return std::move(m).value();
}

void check_value(double got, double expected, const char* what) {
  if (got != expected) {
    std::fprintf(stderr, "zwq-bench: %s: sum %.17g, expected %.17g\n", what, got, expected);
    throw std::runtime_error(std::string(what) + ": wrong sum");
  }
}

}  // namespace

TimedSum timed_reduce(const std::string& kernel, const void* data, DType dtype, std::uint64_t n,
                      int threads, std::uint64_t slice, const void* data2) {
  const KernelInfo* k = KernelRegistry::builtin().find(kernel);
  if (k == nullptr) throw std::runtime_error("no built-in '" + kernel + "' kernel");
  const std::size_t width = dtype_size(dtype);
  std::vector<Partial> parts(static_cast<std::size_t>(threads));
  auto work = [&](int t) {
    const std::uint64_t lo = n * static_cast<std::uint64_t>(t) / threads;
    const std::uint64_t hi = n * static_cast<std::uint64_t>(t + 1) / threads;
    Partial acc = identity_partial(k->combiner);
    for (std::uint64_t first = lo; first < hi; first += slice) {
      SliceContext ctx;
      ctx.first = first;
      ctx.count = std::min(slice, hi - first);
      ctx.job_count = n;
      ctx.in = SliceView{static_cast<const char*>(data) + first * width, dtype};
      if (data2 != nullptr) {
        ctx.in2 = SliceView{static_cast<const char*>(data2) + first * width, dtype};
      }
      Partial p = identity_partial(k->combiner);
      if (!run_kernel(*k, ctx, p).ok()) throw std::runtime_error(kernel + " kernel failed");
      (void)merge_into(acc, p);
    }
    parts[static_cast<std::size_t>(t)] = std::move(acc);
  };
  Stopwatch clock;
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  TimedSum out;
  out.seconds = clock.seconds();
  Partial total = identity_partial(k->combiner);
  for (const auto& p : parts) (void)merge_into(total, p);
  out.value = finalize_result(*k, std::move(total), Params{}, n).value;
  return out;
}

void fill_pattern(float* x, std::uint64_t n) {
  auto fill = [&](std::uint64_t lo, std::uint64_t hi) {
    for (std::uint64_t i = lo; i < hi; ++i) x[i] = static_cast<float>(i % 1024) * 0.25f;
  };
  std::thread other(fill, n / 2, n);
  fill(0, n / 2);
  other.join();
}

// Exact: every partial sum is a multiple of 0.25 far below 2^53.
double pattern_sum(std::uint64_t n) {
  const double block = 1023.0 * 1024.0 / 2.0 * 0.25;
  double s = static_cast<double>(n / 1024) * block;
  for (std::uint64_t k = 0; k < n % 1024; ++k) s += static_cast<double>(k) * 0.25;
  return s;
}

std::string unique_name(const std::string& what) {
  static int serial = 0;
  return "zwq-bench-" + std::to_string(::getpid()) + "-" + what + "-" + std::to_string(serial++);
}

json run_bandwidth(const BenchOptions& o, const SharedArray<float>& x) {
  const double bytes = static_cast<double>(x.size()) * 4;
  const double expected = pattern_sum(x.size());
  (void)timed_sum(x.data(), x.size(), 1);  // warm: every page mapped and in the caches it fits
  json out;
  std::vector<std::uint64_t> slices;
  for (std::uint64_t slice : kInProcessSlices) {
    if (slice <= x.size()) slices.push_back(slice);
  }
  for (int threads : o.worker_counts()) {
    // Run by run, every slice size in turn (not all runs of one size, then the next): a few
    // seconds of a busy host then slow one run of several sizes, not the median of one.
    std::vector<std::vector<double>> gbps(slices.size());
    for (int r = 0; r < o.runs; ++r) {
      for (std::size_t i = 0; i < slices.size(); ++i) {
        const TimedSum s = timed_sum(x.data(), x.size(), threads, slices[i]);
        check_value(s.value, expected, "in-process sum");
        gbps[i].push_back(bytes / s.seconds / 1e9);
      }
    }
    Summary best;
    std::uint64_t best_slice = 0;
    json by_slice = json::array();
    for (std::size_t i = 0; i < slices.size(); ++i) {
      const std::uint64_t slice = slices[i];
      const Summary sm = summarize(gbps[i]);
      by_slice.push_back({{"slice_bytes", slice * 4}, {"gbps", to_json(sm)}});
      if (sm.median > best.median) best = sm, best_slice = slice;
    }
    const std::string key = "bw" + std::to_string(threads);
    out[key + "_gbps"] = to_json(best);
    out[key + "_slice_bytes"] = best_slice * 4;
    out[key + "_by_slice"] = by_slice;
    std::fprintf(stderr, "  BW%d: %.2f GB/s (best at %llu B slices)\n", threads, best.median,
                 static_cast<unsigned long long>(best_slice * 4));
  }
  return out;
}

double inprocess_sum_gbps(const SharedArray<float>& x, int threads, std::uint64_t slice_elems) {
  const TimedSum s = timed_sum(x.data(), x.size(), threads, slice_elems);
  check_value(s.value, pattern_sum(x.size()), "in-process sum beside zwq");
  return static_cast<double>(x.size()) * 4 / s.seconds / 1e9;
}

json run_cold_baseline(const BenchOptions& o) {
  const std::uint64_t n = o.array_elems();
  const double expected = pattern_sum(n);
  std::vector<double> populate, warm1, warm2, pop_warm1, pop_warm2, first1, first2;
  for (int r = 0; r < o.runs; ++r) {
    {
      BenchArray<float> a("cold", n);
      const std::string& path = a.path();
      fill_pattern(a.array().data(), n);
      {
        Stopwatch clock;
        MappedFile m = map_file(path, true);
        populate.push_back(clock.seconds());
        const TimedSum s1 = timed_sum(floats(m), n, 1);
        const TimedSum s2 = timed_sum(floats(m), n, 2);
        check_value(s1.value, expected, "cold baseline");
        warm1.push_back(s1.seconds);
        warm2.push_back(s2.seconds);
        pop_warm1.push_back(populate.back() + s1.seconds);
        pop_warm2.push_back(populate.back() + s2.seconds);
      }
      {
        MappedFile m = map_file(path, false);
        first1.push_back(timed_sum(floats(m), n, 1).seconds);
      }
      {
        MappedFile m = map_file(path, false);
        first2.push_back(timed_sum(floats(m), n, 2).seconds);
      }
    }  // the array and its sidecar are removed here
  }
  json out{{"populate_s", to_json(summarize(populate))},
           {"warm1_s", to_json(summarize(warm1))},
           {"warm2_s", to_json(summarize(warm2))},
           {"populate_plus_warm1_s", to_json(summarize(pop_warm1))},
           {"populate_plus_warm2_s", to_json(summarize(pop_warm2))},
           {"first_touch1_s", to_json(summarize(first1))},
           {"first_touch2_s", to_json(summarize(first2))}};
  std::fprintf(stderr,
               "  cold: populate %.3f s + warm pass %.3f s (1 thread), %.3f s (2 threads)\n",
               summarize(populate).median, summarize(warm1).median, summarize(warm2).median);
  return out;
}

}  // namespace zwq::bench
