// JournalRewrite: a journal's new contents written into a temporary file by a thread of its own,
// then finished on the caller's thread: what the caller appended to the old file meanwhile (the
// tail) goes after them, and the file is renamed over the journal. So the broker's loop does
// not wait for tens of MB to reach the disk (docs/RELIABILITY.md, "The journal").
//
// The temporary file is made, locked (flock) and emptied by start(), before the writer starts,
// and keeps its lock through the rename: the journal's name never points at an unlocked file.
// One left by a broker killed mid-rewrite is emptied and written over by the next rewrite.
//
// Error model: start() returns an error when the temporary file cannot be made or locked;
// finish() returns the new journal's descriptor, or the error of the write, sync or rename, in
// which case the temporary file is removed and the journal is as it was. Once renamed, the new
// file is the journal: a directory that cannot be synced after it is not an error of finish(),
// but dir_synced() says so, and the caller syncs it before it relies on the file.
//
// Thread safety: the methods are for the thread that called start(). The writer thread (which
// blocks every signal) touches only the contents, the temporary file and the error it met, and
// nothing after done() says it finished; finish() and the destructor join it first.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "zwq/status.hpp"

namespace zwq::broker {

// Writes all of `bytes` at the end of `fd` (short writes and EINTR retried); false, with errno
// set, on an error.
bool write_all(int fd, std::string_view bytes);
// "what path: <strerror(errno)>".
std::string errno_text(const std::string& what, const std::string& path);
// fsyncs directory `dir`, so that a rename in it survives a machine crash; false, with errno
// set, when it cannot be opened or synced (a filesystem that cannot sync a directory, EINVAL,
// counts as synced).
bool sync_dir(const std::string& dir);

struct JournalPaths {
  std::string journal;  // DIR/journal.zwq
  std::string tmp;      // DIR/journal.zwq.tmp
  std::string dir;      // DIR: synced after the rename
};

class JournalRewrite {
 public:
  // Makes and locks paths.tmp and starts writing `contents` into it (then fsync).
  static Result<std::unique_ptr<JournalRewrite>> start(JournalPaths paths, std::string contents);
  // Waits for the writer. A rewrite not finished is abandoned: its file is removed.
  ~JournalRewrite();
  JournalRewrite(const JournalRewrite&) = delete;
  JournalRewrite& operator=(const JournalRewrite&) = delete;

  // True once the writer is done: finish() will not wait.
  bool done() const { return done_.load(std::memory_order_acquire); }
  // Waits for the writer, appends `tail`, fdatasyncs, renames the file over paths.journal and
  // syncs the directory. The descriptor returned (and its lock) are the caller's. Once only.
  Result<int> finish(const std::string& tail);
  // The bytes of the new file: the contents and the tail given to finish().
  std::size_t size() const { return size_; }
  // Whether finish() synced the directory after the rename.
  bool dir_synced() const { return dir_synced_; }

 private:
  JournalRewrite(JournalPaths paths, std::string contents, int fd);
  void write_contents();
  void abandon() noexcept;

  JournalPaths paths_;
  std::string contents_;
  int fd_ = -1;
  std::size_t size_ = 0;
  bool dir_synced_ = false;
  std::string error_;  // the writer's, read after done()
  std::atomic<bool> done_{false};
  std::thread writer_;
};

}  // namespace zwq::broker
