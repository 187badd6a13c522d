// Shared-memory arrays in /dev/shm: the data a zwq job reads and writes.
//
// A SharedArray<T> is a file /dev/shm/NAME mapped read-write into this process, plus the sidecar
// /dev/shm/NAME.zwq-meta that records its dtype and length (see zwq/dataset.hpp). Workers map the
// same file, so filling the array here and submitting `array.ref()` hands them the data without a
// copy. It plays the part of numpy.memmap / multiprocessing.shared_memory for zwq users.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "zwq/dataset.hpp"
#include "zwq/dtype.hpp"
#include "zwq/mapping.hpp"
#include "zwq/status.hpp"

namespace zwq {

// An untyped /dev/shm segment: what SharedArray<T> is made of, and what tools that learn the dtype
// at run time (the `zwq array` command) use directly.
//
// Ownership: a segment made by create() owns the file: its destructor unmaps it and removes the
// file and its sidecar, unless release() was called. Should the program end without running the
// destructor (Ctrl-C, kill -9, exit() with the segment still alive), the zwq-tracker process that
// the first create() starts removes them instead, and says so on stderr, as Python's
// multiprocessing resource tracker does. A process that exec()s another program is no longer
// tracked from a few seconds on: if the new program ends within them, the tracker removes the
// segments; after that, they stay. A segment made by open() never removes anything. Move-only. Not
// thread-safe to move or destroy while used; the mapped bytes may be read and written from any
// thread (synchronising those accesses is the caller's business).
class ShmSegment {
 public:
  ShmSegment() = default;
  ~ShmSegment();
  ShmSegment(ShmSegment&& other) noexcept;
  ShmSegment& operator=(ShmSegment&& other) noexcept;
  ShmSegment(const ShmSegment&) = delete;
  ShmSegment& operator=(const ShmSegment&) = delete;

  // Creates /dev/shm/NAME holding `count` zeroed elements of `dtype`, reserves its memory (so a
  // full /dev/shm fails here, not with SIGBUS later), maps it read-write and writes the sidecar.
  // Fails with kInvalidArgument when the name is not a plain file name, the file exists already,
  // dtype is kNone or /dev/shm has no room; with kInternal on other system errors. Leaves nothing
  // behind on failure.
  static Result<ShmSegment> create(const std::string& name, DType dtype, std::size_t count);

  // Maps the existing /dev/shm/NAME read-write. The dtype comes from a .npy header (whose
  // elements then start after it: NAME may be a file numpy.save wrote) or else from the sidecar;
  // `expected`, when given, must agree with it (kDtypeMismatch otherwise) and is used when the
  // file records none. Its length is the count the .npy shape or the sidecar records, else what
  // the file holds. Fails with kDatasetMissing when the file does not exist, kInvalidArgument
  // when nothing names a dtype or a .npy header is cut short or malformed, kDatasetTooShort when
  // the file holds fewer elements than recorded, kDtypeMismatch when a raw file is not a whole
  // number of elements or the .npy holds a dtype zwq cannot read.
  static Result<ShmSegment> open(const std::string& name,
                                 std::optional<DType> expected = std::nullopt);

  // Removes /dev/shm/NAME and its sidecar. Fails with kDatasetMissing if the file did not exist.
  static Status remove(const std::string& name);

  void* data() const { return map_.mutable_data() + offset_; }
  std::size_t size() const { return count_; }  // elements
  std::size_t bytes() const { return count_ * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }
  bool owns_file() const { return owner_; }
  std::uint64_t byte_offset() const { return offset_; }  // a .npy header's length, else 0
  // "shm:NAME" with this segment's dtype, byte offset and length.
  DatasetRef ref() const { return DatasetRef{"shm:" + name_, dtype_, offset_, count_}; }
  // Keeps the file and sidecar after destruction (the segment stays mapped until then).
  void release();

 private:
  void reset();

  std::string name_;
  std::string path_;
  MappedFile map_;
  DType dtype_ = DType::kNone;
  std::size_t count_ = 0;
  std::uint64_t offset_ = 0;  // where element 0 is in the file
  bool owner_ = false;
};

// A typed array in /dev/shm, T one of float, double, int32_t, int64_t, uint8_t.
//
// Ownership and thread safety as ShmSegment: create() owns (and on destruction removes) the file,
// open() does not; release() keeps a created file. Move-only.
//
//   auto a = zwq::SharedArray<float>::create("x", 1 << 20).value();
//   std::iota(a.begin(), a.end(), 0.0f);
//   auto job = client.submit(zwq::JobRequest::reduce("sum", a));
template <typename T>
class SharedArray {
 public:
  using value_type = T;

  SharedArray() = default;

  // See ShmSegment::create: /dev/shm/NAME with `count` zeroed elements of T.
  static Result<SharedArray> create(const std::string& name, std::size_t count) {
    auto seg = ShmSegment::create(name, dtype_of<T>(), count);
    if (!seg.ok()) return seg.error();
    return SharedArray(std::move(seg).value());
  }

  // See ShmSegment::open: maps an existing array; its sidecar dtype must be T (kDtypeMismatch).
  static Result<SharedArray> open(const std::string& name) {
    auto seg = ShmSegment::open(name, dtype_of<T>());
    if (!seg.ok()) return seg.error();
    return SharedArray(std::move(seg).value());
  }

  T* data() const { return static_cast<T*>(seg_.data()); }
  std::size_t size() const { return seg_.size(); }
  std::span<T> span() const { return {data(), size()}; }
  T* begin() const { return data(); }
  T* end() const { return data() + size(); }
  T& operator[](std::size_t i) const {
    assert(i < size());
    return data()[i];
  }
  const std::string& name() const { return seg_.name(); }
  // "shm:NAME", dtype_of<T>(), offset 0, length size(): what a JobRequest needs.
  DatasetRef ref() const { return seg_.ref(); }
  // Keeps /dev/shm/NAME and its sidecar after this object is destroyed.
  void release() { seg_.release(); }

 private:
  explicit SharedArray(ShmSegment seg) : seg_(std::move(seg)) {}
  ShmSegment seg_;
};

}  // namespace zwq
