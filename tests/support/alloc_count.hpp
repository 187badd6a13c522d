// Heap allocations made by the calling thread, counted by replacing the global operator new in
// the test binaries that link zwq_alloc_count (tests/CMakeLists.txt): "no allocation per slice
// on the hot paths" is then a number a test can check. Other threads' allocations (libzmq's,
// the worker's prefaulter) are not counted.
#pragma once

#include <cstdint>

namespace zwq::test {

std::uint64_t allocations_on_this_thread();

// Allocations made while `fn` runs on this thread.
template <typename F>
std::uint64_t allocations_during(F&& fn) {
  const std::uint64_t before = allocations_on_this_thread();
  fn();
  return allocations_on_this_thread() - before;
}

}  // namespace zwq::test
