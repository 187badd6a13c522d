#include "journal_rewrite.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <system_error>

namespace zwq::broker {
std::string errno_text(const std::string& what, const std::string& path) {
  // (system_category's message, not strerror: the writer thread may ask at the same time.)
  return what + " " + path + ": " + std::system_category().message(errno);
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

bool sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  // A filesystem that cannot fsync a directory (EINVAL) makes its renames durable without it.
  const bool synced = ::fsync(fd) == 0 || errno == EINVAL;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return synced;
}

Result<std::unique_ptr<JournalRewrite>> JournalRewrite::start(JournalPaths paths,
                                                              std::string contents) {
  // Not O_TRUNC: a file another broker holds locked is not emptied under it.
  const int fd = ::open(paths.tmp.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(ErrorCode::kInternal, errno_text("cannot write", paths.tmp));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0 || ::ftruncate(fd, 0) != 0) {
    Error e = make_error(ErrorCode::kInternal, errno_text("cannot lock and empty", paths.tmp));
    ::close(fd);
    return e;
  }
  std::unique_ptr<JournalRewrite> rewrite(
      new JournalRewrite(std::move(paths), std::move(contents), fd));
  // The writer takes no signal: SIGTERM and SIGINT must interrupt the broker's poll, on the
  // thread that started it.
  sigset_t all;
  sigset_t before;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &before);
  try {
    rewrite->writer_ = std::thread([r = rewrite.get()] { r->write_contents(); });
  } catch (const std::exception& e) {
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
    return make_error(ErrorCode::kInternal, std::string("cannot start the journal writer: ") +
                                                e.what());  // (the file goes with `rewrite`)
  }
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
  return rewrite;
}

JournalRewrite::JournalRewrite(JournalPaths paths, std::string contents, int fd)
    : paths_(std::move(paths)), contents_(std::move(contents)), fd_(fd), size_(contents_.size()) {}

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
  dir_synced_ = sync_dir(paths_.dir);  // the rename itself survives a machine crash
  size_ += tail.size();
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

}  // namespace zwq::broker
