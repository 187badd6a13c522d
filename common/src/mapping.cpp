#include "zwq/mapping.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace zwq {

MappedFile::~MappedFile() { reset(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : addr_(other.addr_), size_(other.size_), inode_(other.inode_) {
  other.addr_ = nullptr;
  other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    reset();
    addr_ = other.addr_;
    size_ = other.size_;
    inode_ = other.inode_;
    other.addr_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void MappedFile::reset() {
  if (addr_ != nullptr) ::munmap(addr_, size_);
  addr_ = nullptr;
  size_ = 0;
}

Result<MappedFile> MappedFile::open(const std::string& path, Mode mode, bool populate) {
  const bool rw = mode == Mode::kReadWrite;
  const int fd = ::open(path.c_str(), (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) {
    return make_error(ErrorCode::kDatasetMissing, "cannot open " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return make_error(ErrorCode::kDatasetMissing, "cannot stat " + path + ": " + std::strerror(err));
  }
  MappedFile m;
  m.inode_ = static_cast<std::uint64_t>(st.st_ino);
  if (st.st_size > 0) {
    const int prot = rw ? (PROT_READ | PROT_WRITE) : PROT_READ;
    const int flags = MAP_SHARED | (populate ? MAP_POPULATE : 0);
    void* addr = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), prot, flags, fd, 0);
    if (addr == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return make_error(ErrorCode::kDatasetMissing, "cannot map " + path + ": " + std::strerror(err));
    }
    m.addr_ = addr;
    m.size_ = static_cast<std::size_t>(st.st_size);
  }
  ::close(fd);  // the mapping keeps the file referenced
  return m;
}

std::optional<std::uint64_t> file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(st.st_size);
}

}  // namespace zwq
