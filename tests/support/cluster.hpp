// Test helpers for integration tests: a real broker and real workers (child processes of the
// built binaries) and arrays in the real /dev/shm.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

#include "zwq/client.hpp"

#ifndef ZWQ_TEST_BIN_DIR
#error "integration tests need ZWQ_TEST_BIN_DIR (set by tests/CMakeLists.txt)"
#endif

namespace zwq::test {

using namespace std::chrono_literals;

// A bounded deadline for any job a test waits on: a hang fails the test instead of CI.
inline constexpr std::chrono::milliseconds kJobTimeout = 120s;

inline LocalClusterOptions cluster_options(int workers, std::string bind = {}) {
  LocalClusterOptions o;
  o.workers = workers;
  o.bind = std::move(bind);
  o.bin_dir = ZWQ_TEST_BIN_DIR;
  o.log_level = "warn";
  o.start_timeout = 30s;
  return o;
}

// A /dev/shm name unique to this process and call.
inline std::string unique_name(const std::string& stem) {
  static std::atomic<int> counter{0};
  return "zwq-it-" + stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

template <typename T>
SharedArray<T> make_array(const std::string& stem, std::size_t count) {
  auto a = SharedArray<T>::create(unique_name(stem), count);
  if (!a.ok()) throw std::runtime_error(a.error().to_string());
  return std::move(a).value();
}

// splitmix64: a small, fixed generator so that data is the same on every machine.
inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

template <typename T>
void fill_random(SharedArray<T>& a, std::uint64_t seed) {
  for (auto& x : a) {
    const std::uint64_t r = splitmix64(seed);
    if constexpr (std::is_floating_point_v<T>) {
      x = static_cast<T>(static_cast<double>(r >> 11) * 0x1.0p-53 * 2.0 - 0.5);
    } else {
      x = static_cast<T>(r % 200);  // fits u8; a sum of millions fits every integer type
    }
  }
}

template <typename T>
long double reference_sum(const SharedArray<T>& a) {
  long double s = 0;
  for (const auto& x : a) s += static_cast<long double>(x);
  return s;
}

}  // namespace zwq::test
