// An array in /dev/shm for one part of the benchmark: made with a unique name, unlinked with
// its sidecar if the benchmark is stopped by a signal meanwhile (remove_on_signal), and removed
// when it goes out of scope. Throws std::runtime_error if it cannot be made.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "process.hpp"
#include "sections.hpp"

namespace zwq::bench {

template <typename T>
class BenchArray {
 public:
  BenchArray(const std::string& what, std::uint64_t count)
      : name_(unique_name(what)), path_("/dev/shm/" + name_) {
    remove_on_signal(path_);
    remove_on_signal(path_ + ".zwq-meta");
    auto made = SharedArray<T>::create(name_, count);
    if (!made.ok()) {
      forget();
      throw std::runtime_error(made.error().to_string());
    }
    array_ = std::move(made).value();
  }
  ~BenchArray() {
    array_ = SharedArray<T>();  // removes the file and its sidecar
    forget();
  }
  BenchArray(const BenchArray&) = delete;
  BenchArray& operator=(const BenchArray&) = delete;

  const SharedArray<T>& array() const { return array_; }  // its data() is writable
  const std::string& path() const { return path_; }

 private:
  void forget() {
    forget_on_signal(path_);
    forget_on_signal(path_ + ".zwq-meta");
  }

  std::string name_;
  std::string path_;
  SharedArray<T> array_;
};

}  // namespace zwq::bench
