// The replaced operator new behind alloc_count.hpp. Only the two basic forms are replaced: the
// array and nothrow forms of libstdc++ call them, and the default operator delete frees what
// malloc and aligned_alloc return.
#include "alloc_count.hpp"

#include <cstddef>
#include <cstdlib>
#include <new>

namespace {
thread_local std::uint64_t t_allocations = 0;

void* counted(std::size_t size, std::size_t alignment) {
  ++t_allocations;
  if (size == 0) size = 1;
  void* p = nullptr;
  if (alignment <= alignof(std::max_align_t)) {
    p = std::malloc(size);
  } else {
    p = std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
  }
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

namespace zwq::test {
std::uint64_t allocations_on_this_thread() {
  return t_allocations;
}
}  // namespace zwq::test

void* operator new(std::size_t size) {
  return counted(size, alignof(std::max_align_t));
}

void* operator new(std::size_t size, std::align_val_t alignment) {
  return counted(size, static_cast<std::size_t>(alignment));
}
