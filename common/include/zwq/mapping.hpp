// RAII memory mappings of dataset files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

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

  // Maps the whole file. `populate` pre-faults the pages (MAP_POPULATE) so that the first pass
  // does not pay a page fault per 4 KiB. Fails with kDatasetMissing if the file cannot be opened
  // or mapped. An empty file maps to a valid object with data() == nullptr and size() == 0.
  static Result<MappedFile> open(const std::string& path, Mode mode, bool populate = false);

  const std::byte* data() const { return static_cast<const std::byte*>(addr_); }
  std::byte* mutable_data() const { return static_cast<std::byte*>(addr_); }
  std::size_t size() const { return size_; }
  // Inode and size when mapped: a cache compares them to notice a replaced or resized file.
  std::uint64_t inode() const { return inode_; }

 private:
  void reset();
  void* addr_ = nullptr;
  std::size_t size_ = 0;
  std::uint64_t inode_ = 0;
};

// Current size of the file at `path`, or empty if it does not exist.
std::optional<std::uint64_t> file_size(const std::string& path);

}  // namespace zwq
