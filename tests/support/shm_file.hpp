// Test helper: a uniquely named file in /dev/shm, removed (with its sidecar) on destruction.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace zwq::test {

// A NumPy format 1.0 header for a one-dimensional little-endian array of n elements of `descr`
// ("<f8"), padded to a multiple of 64 bytes as numpy.save pads it.
inline std::string npy_header(const std::string& descr, std::size_t n) {
  std::string dict =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + std::to_string(n) + ",), }";
  const std::size_t total = ((10 + dict.size() + 1 + 63) / 64) * 64;
  dict.resize(total - 10 - 1, ' ');
  dict += '\n';
  std::string h("\x93NUMPY\x01\x00", 8);
  h += static_cast<char>(dict.size() & 0xff);
  h += static_cast<char>(dict.size() >> 8);
  return h + dict;
}

class ShmFile {
 public:
  explicit ShmFile(const std::string& stem) {
    static std::atomic<int> counter{0};
    name_ = "zwq-test-" + stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    path_ = "/dev/shm/" + name_;
  }
  ~ShmFile() {
    std::remove(path_.c_str());
    std::remove((path_ + ".zwq-meta").c_str());
  }
  ShmFile(const ShmFile&) = delete;
  ShmFile& operator=(const ShmFile&) = delete;

  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }
  std::string uri() const { return "shm:" + name_; }

  template <typename T>
  void write(const std::vector<T>& values, const std::string& prefix = {}) const {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(prefix.data(), static_cast<std::streamsize>(prefix.size()));
    out.write(reinterpret_cast<const char*>(values.data()),
              static_cast<std::streamsize>(values.size() * sizeof(T)));
  }
  void truncate(std::uint64_t bytes) const { (void)::truncate(path_.c_str(), static_cast<off_t>(bytes)); }

 private:
  std::string name_;
  std::string path_;
};

}  // namespace zwq::test
