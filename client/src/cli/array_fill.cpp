#include "array_fill.hpp"

#include <algorithm>
#include <thread>
#include <type_traits>
#include <vector>

namespace zwq::cli {

namespace {

// Below this many elements a fill runs on one thread: starting threads would cost more.
constexpr std::size_t kParallelMin = 1 << 20;

template <typename T>
T pattern_value(Pattern pattern, std::uint64_t i, double value, std::uint64_t seed) {
  switch (pattern) {
    case Pattern::kZero:
      return T(0);
    case Pattern::kArange:
      return static_cast<T>(i);
    case Pattern::kConst:
      return static_cast<T>(value);
    case Pattern::kRandom: {
      const std::uint64_t x = splitmix64_at(seed, i);
      if constexpr (std::is_same_v<T, double>) {
        return static_cast<double>(x >> 11) * 0x1.0p-53;
      } else if constexpr (std::is_same_v<T, float>) {
        return static_cast<float>(x >> 40) * 0x1.0p-24f;
      } else {
        return static_cast<T>(x % 100);
      }
    }
  }
  return T(0);
}

template <typename T>
void fill_range(T* data, std::size_t begin, std::size_t end, Pattern pattern, double value,
                std::uint64_t seed) {
  for (std::size_t i = begin; i < end; ++i) data[i] = pattern_value<T>(pattern, i, value, seed);
}

}  // namespace

std::optional<Pattern> parse_pattern(const std::string& name) {
  if (name == "zero") return Pattern::kZero;
  if (name == "arange") return Pattern::kArange;
  if (name == "random") return Pattern::kRandom;
  if (name == "const") return Pattern::kConst;
  return std::nullopt;
}

std::uint64_t splitmix64_at(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void fill(const ShmSegment& array, Pattern pattern, double value, std::uint64_t seed) {
  const std::size_t n = array.size();
  if (n == 0) return;
  visit_dtype(array.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* data = static_cast<T*>(array.data());
    const std::size_t threads =
        n < kParallelMin ? 1 : std::max(1u, std::thread::hardware_concurrency());
    const std::size_t chunk = (n + threads - 1) / threads;
    std::vector<std::thread> pool;
    for (std::size_t begin = 0; begin < n; begin += chunk) {
      pool.emplace_back(fill_range<T>, data, begin, std::min(n, begin + chunk), pattern, value,
                        seed);
    }
    for (auto& t : pool) t.join();
  });
}

long double reference_sum(const ShmSegment& array) {
  if (array.size() == 0) return 0;
  return visit_dtype(array.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* data = static_cast<const T*>(array.data());
    long double sum = 0;
    for (std::size_t i = 0; i < array.size(); ++i) sum += static_cast<long double>(data[i]);
    return sum;
  });
}

}  // namespace zwq::cli
