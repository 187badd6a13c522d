// Test helper: a private directory under /tmp for one test's sockets, ready file, journal or
// scratch files, removed with everything in it at the end. Depends on nothing of ours.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace zwq::test {

class TestDir {
 public:
  explicit TestDir(const std::string& stem) {
    std::string tmpl = "/tmp/zwq-test-" + stem + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TestDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TestDir(const TestDir&) = delete;
  TestDir& operator=(const TestDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace zwq::test
