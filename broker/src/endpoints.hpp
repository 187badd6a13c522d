// Where the broker listens: turning BrokerOptions::bind into four bind addresses, the private
// ipc directory (RAII) and the ready file.
//
// Set-up code: failures throw zwq::SetupError with a message naming the address or path.
#pragma once

#include <string>

namespace zwq::broker {

// A directory this process made for its ipc endpoints; removed with its contents when the
// object is destroyed or remove() is called. Move-only.
class PrivateDir {
 public:
  PrivateDir() = default;
  explicit PrivateDir(std::string path) : path_(std::move(path)) {}
  ~PrivateDir() { remove(); }
  PrivateDir(PrivateDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  PrivateDir& operator=(PrivateDir&& other) noexcept;
  PrivateDir(const PrivateDir&) = delete;
  PrivateDir& operator=(const PrivateDir&) = delete;

  // Makes a new directory (mode 0700) named zwq-<pid>-<random> under $XDG_RUNTIME_DIR, or /tmp
  // when that is unset or not a directory.
  static PrivateDir create_unique();

  const std::string& path() const { return path_; }
  bool owns() const { return !path_.empty(); }
  void remove() noexcept;

 private:
  std::string path_;
};

// The four addresses to bind, and the directory made for them (if any).
struct BindPlan {
  std::string control, tasks, results, events;
  PrivateDir dir;
};

// "" -> a private ipc directory; "ipc://DIR/control" -> DIR/{control,tasks,results,events}
// (DIR is made, and later removed, if it does not exist); "tcp://HOST:PORT" -> PORT..PORT+3;
// "tcp://HOST:*" -> four ephemeral ports. Anything else throws SetupError.
BindPlan plan_endpoints(const std::string& bind);

// Writes `content` to `path` atomically (a temporary file in the same directory, then rename).
void write_ready_file(const std::string& path, const std::string& content);

}  // namespace zwq::broker
