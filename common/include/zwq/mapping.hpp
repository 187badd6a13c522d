// RAII memory mappings of dataset files.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "zwq/status.hpp"

namespace zwq {

// A read-only or read-write shared mapping of a whole file. Move-only; unmaps on destruction.
// Not thread-safe to move while other threads read; reading the bytes is safe from any thread.
class MappedFile {
 public:
  enum class Mode { kRead, kReadWrite };

  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // How the pages of a new mapping get into its page tables.
  enum class Populate {
    kOnFault,     // one page fault per page (or per fault-around block) on first touch
    kWhole,       // all of them at once, by mmap (MAP_POPULATE)
    kOnFirstUse,  // each 2 MiB chunk at once, the first time prefault() is asked for it
  };

  // Maps the whole file. Fails with kDatasetMissing if the file cannot be opened or mapped. An
  // empty file maps to a valid object with data() == nullptr and size() == 0.
  static Result<MappedFile> open(const std::string& path, Mode mode,
                                 Populate populate = Populate::kOnFault);
  static Result<MappedFile> open(const std::string& path, Mode mode, bool populate) {
    return open(path, mode, populate ? Populate::kWhole : Populate::kOnFault);
  }

  // kOnFirstUse: pre-faults each 2 MiB chunk that [offset, offset + length) touches and no earlier
  // call did (MADV_POPULATE_READ, or _WRITE for kReadWrite; Linux >= 5.14, else nothing happens),
  // so that the first pass over a chunk costs one system call instead of a fault per page, and
  // a worker that computes half of an array populates only that half. After the first time a
  // chunk costs one bit test. Other modes: nothing. Safe to call from any thread.
  void prefault(std::size_t offset, std::size_t length) const;
  static constexpr std::size_t kPrefaultChunk = std::size_t{2} << 20;
  // False if prefault(offset, length) would populate a chunk: in kOnFirstUse mode, one that the
  // range touches (within the file) and no call has populated yet. True in the other modes.
  bool prefaulted(std::size_t offset, std::size_t length) const;

  const std::byte* data() const { return static_cast<const std::byte*>(addr_); }
  std::byte* mutable_data() const { return static_cast<std::byte*>(addr_); }
  std::size_t size() const { return size_; }
  // Inode and size when mapped: a cache compares them to notice a replaced or resized file.
  std::uint64_t inode() const { return inode_; }

 private:
  void reset();
  // The chunks [first, last) that [offset, offset + length) touches within the file in
  // kOnFirstUse mode; none (first == last) in the other modes.
  std::pair<std::size_t, std::size_t> chunks_of(std::size_t offset, std::size_t length) const;
  void* addr_ = nullptr;
  std::size_t size_ = 0;
  std::uint64_t inode_ = 0;
  bool writable_ = false;
  // kOnFirstUse: one bit per kPrefaultChunk, set once the chunk was populated; else null.
  std::unique_ptr<std::atomic<std::uint64_t>[]> populated_;
};

// Current size of the file at `path`, or empty if it does not exist.
std::optional<std::uint64_t> file_size(const std::string& path);

}  // namespace zwq
