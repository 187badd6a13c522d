#include "zwq/mapping.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace zwq {

namespace {
// From <linux/mman.h> (Linux 5.14); Debian 12's glibc headers may lack the names.
#ifdef MADV_POPULATE_READ
constexpr int kMadvPopulateRead = MADV_POPULATE_READ;
constexpr int kMadvPopulateWrite = MADV_POPULATE_WRITE;
#else
constexpr int kMadvPopulateRead = 22;
constexpr int kMadvPopulateWrite = 23;
#endif
}  // namespace

MappedFile::~MappedFile() {
  reset();
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : addr_(other.addr_),
      size_(other.size_),
      inode_(other.inode_),
      writable_(other.writable_),
      populated_(std::move(other.populated_)) {
  other.addr_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    reset();
    addr_ = other.addr_;
    size_ = other.size_;
    inode_ = other.inode_;
    writable_ = other.writable_;
    populated_ = std::move(other.populated_);
    other.addr_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void MappedFile::reset() {
  if (addr_ != nullptr) ::munmap(addr_, size_);
  addr_ = nullptr;
  size_ = 0;
  populated_.reset();
}

Result<MappedFile> MappedFile::open(const std::string& path, Mode mode, Populate populate) {
  const bool rw = mode == Mode::kReadWrite;
  const int fd = ::open(path.c_str(), (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) {
    return make_error(ErrorCode::kDatasetMissing,
                      "cannot open " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return make_error(ErrorCode::kDatasetMissing,
                      "cannot stat " + path + ": " + std::strerror(err));
  }
  MappedFile m;
  m.inode_ = static_cast<std::uint64_t>(st.st_ino);
  if (st.st_size > 0) {
    const int prot = rw ? (PROT_READ | PROT_WRITE) : PROT_READ;
    const int flags = MAP_SHARED | (populate == Populate::kWhole ? MAP_POPULATE : 0);
    void* addr = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), prot, flags, fd, 0);
    if (addr == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return make_error(ErrorCode::kDatasetMissing,
                        "cannot map " + path + ": " + std::strerror(err));
    }
    m.addr_ = addr;
    m.size_ = static_cast<std::size_t>(st.st_size);
    m.writable_ = rw;
    if (populate == Populate::kOnFirstUse) {
      const std::size_t words = (m.size_ / kPrefaultChunk + 1 + 63) / 64;
      m.populated_ = std::make_unique<std::atomic<std::uint64_t>[]>(words);
    }
  }
  ::close(fd);  // the mapping keeps the file referenced
  return m;
}

std::pair<std::size_t, std::size_t> MappedFile::chunks_of(std::size_t offset,
                                                          std::size_t length) const {
  if (!populated_ || length == 0 || offset >= size_) return {0, 0};
  const std::size_t end = offset + std::min(length, size_ - offset);
  return {offset / kPrefaultChunk, (end - 1) / kPrefaultChunk + 1};
}

void MappedFile::prefault(std::size_t offset, std::size_t length) const {
  const auto [first, last] = chunks_of(offset, length);
  for (std::size_t c = first; c < last; ++c) {
    std::atomic<std::uint64_t>& word = populated_[c / 64];
    const std::uint64_t bit = std::uint64_t{1} << (c % 64);
    if ((word.load(std::memory_order_relaxed) & bit) != 0) continue;
    word.fetch_or(bit, std::memory_order_relaxed);
    const std::size_t from = c * kPrefaultChunk;  // addr_ is page-aligned, so is from
    const std::size_t n = std::min(kPrefaultChunk, size_ - from);
    // Errors are ignored: an old kernel (EINVAL) or a file truncated under us (EFAULT) leaves the
    // pages to be faulted in one by one, where a SIGBUS is caught as before.
    (void)::madvise(static_cast<char*>(addr_) + from, n,
                    writable_ ? kMadvPopulateWrite : kMadvPopulateRead);
  }
}

bool MappedFile::prefaulted(std::size_t offset, std::size_t length) const {
  const auto [first, last] = chunks_of(offset, length);
  for (std::size_t c = first; c < last; ++c) {
    const std::uint64_t bit = std::uint64_t{1} << (c % 64);
    if ((populated_[c / 64].load(std::memory_order_relaxed) & bit) == 0) return false;
  }
  return true;
}

std::optional<std::uint64_t> file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(st.st_size);
}

}  // namespace zwq
