#include "journal_rewrite.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace zwq::broker {
std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

bool write_all(int fd, std::string_view bytes) {
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return true;
}

Result<std::unique_ptr<JournalRewrite>> JournalRewrite::start(JournalPaths paths,
                                                              std::string contents) {
  const int fd =
      ::open(paths.tmp.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(ErrorCode::kInternal, errno_text("cannot write", paths.tmp));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    Error e = make_error(ErrorCode::kInternal, errno_text("cannot lock", paths.tmp));
    ::close(fd);
    return e;
  }
  return std::unique_ptr<JournalRewrite>(
      new JournalRewrite(std::move(paths), std::move(contents), fd));
}

JournalRewrite::JournalRewrite(JournalPaths paths, std::string contents, int fd)
    : paths_(std::move(paths)), contents_(std::move(contents)), fd_(fd), size_(contents_.size()) {
  writer_ = std::thread([this] { write_contents(); });
}

JournalRewrite::~JournalRewrite() {
  if (writer_.joinable()) writer_.join();
  abandon();
}

void JournalRewrite::write_contents() {
  if (!write_all(fd_, contents_)) {
    error_ = errno_text("cannot write", paths_.tmp);
  } else if (::fsync(fd_) != 0) {
    error_ = errno_text("cannot sync", paths_.tmp);
  }
  std::string().swap(contents_);  // its memory goes back now, not at finish()
  done_.store(true, std::memory_order_release);
}

void JournalRewrite::abandon() noexcept {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(paths_.tmp.c_str());
  fd_ = -1;
}

Result<int> JournalRewrite::finish(const std::string& tail) {
  if (writer_.joinable()) writer_.join();
  if (fd_ < 0) return make_error(ErrorCode::kInternal, "the journal rewrite was finished before");
  std::string error = error_;
  if (error.empty() && !tail.empty()) {
    if (!write_all(fd_, tail)) {
      error = errno_text("cannot write", paths_.tmp);
    } else if (::fdatasync(fd_) != 0) {
      error = errno_text("cannot sync", paths_.tmp);
    }
  }
  if (error.empty() && ::rename(paths_.tmp.c_str(), paths_.journal.c_str()) != 0) {
    error = errno_text("cannot rename over the journal", paths_.tmp);
  }
  if (!error.empty()) {
    abandon();
    return make_error(ErrorCode::kInternal, "journal rewrite: " + error);
  }
  if (const int dir = ::open(paths_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    (void)::fsync(dir);  // the rename itself survives a machine crash
    ::close(dir);
  }
  size_ += tail.size();
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

}  // namespace zwq::broker
