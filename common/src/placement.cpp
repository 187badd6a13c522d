#include "zwq/placement.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fstream>

namespace zwq {

bool host_local(const std::string& uri) {
  auto path = dataset_path(uri);
  if (!path.ok()) return false;
  // The file's filesystem when it exists (through links, /run/shm, "//", relative names), else
  // what its path says.
  struct stat file {};
  struct stat shm {};
  if (::stat(path.value().c_str(), &file) == 0 && ::stat("/dev/shm", &shm) == 0) {
    return file.st_dev == shm.st_dev;
  }
  return path.value().rfind("/dev/shm/", 0) == 0;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "unknown";
  return buf;
}

std::string memory_id() {
  // Read once: neither changes while the process runs. (A failure is kept too: such a process
  // is matched by host name, as an older one is.)
  static const std::string id = [] {
    std::string boot;
    std::ifstream("/proc/sys/kernel/random/boot_id") >> boot;
    struct stat shm {};
    if (boot.empty() || ::stat("/dev/shm", &shm) != 0) return std::string();
    return boot + "/" + std::to_string(major(shm.st_dev)) + ":" + std::to_string(minor(shm.st_dev));
  }();
  return id;
}

void stamp_memory(DatasetRef& d) {
  if (!d.host.empty() || !d.present() || !host_local(d.uri)) return;
  d.host = host_name();
  d.memory = memory_id();
}

void keep_here(DatasetRef& d) {
  if (!d.host.empty() || !d.present()) return;
  d.host = host_name();
  d.memory = memory_id();
}

void stamp_dataset(DatasetRef& d, bool here) {
  if (here) {
    keep_here(d);
  } else {
    stamp_memory(d);
  }
}

bool in_memory_of(const DatasetRef& d, const std::string& host, const std::string& memory) {
  if (d.host.empty()) return true;
  if (d.memory.empty() || memory.empty()) return d.host == host;
  return d.memory == memory;
}

bool same_place(const DatasetRef& a, const DatasetRef& b) {
  if (a.host.empty() || b.host.empty()) return true;  // a shared file goes anywhere
  if (a.memory.empty() || b.memory.empty()) return a.host == b.host;
  return a.memory == b.memory;
}

std::string memory_place(const DatasetRef& d) {
  std::string s = "host '" + d.host + "'";
  if (!d.memory.empty()) s += " (memory " + d.memory + ")";
  return s;
}

}  // namespace zwq
