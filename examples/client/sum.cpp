// The smallest zwq program, as multiprocessing.Pool users write theirs: a shared array, a pool
// of local workers, one sum. Prints "sum = S over N elements, W workers".
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <zwq/pool.hpp>
#include <zwq/shared_array.hpp>

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  const std::string name = "zwq-example-client-" + std::to_string(::getpid());
  auto x = zwq::SharedArray<float>::create(name, n);  // removed again when x goes
  if (!x.ok()) {
    std::fprintf(stderr, "%s\n", x.error().to_string().c_str());
    return 1;
  }
  std::iota(x.value().begin(), x.value().end(), 0.0f);  // 0, 1, ..., n - 1

  zwq::Pool pool({.workers = 2});  // zwq-broker and zwq-worker from PATH or ZWQ_BIN_DIR
  auto job = pool.submit(zwq::JobRequest::reduce("sum", x.value()));  // Pool.apply_async
  if (!job.ok()) {
    std::fprintf(stderr, "%s\n", job.error().to_string().c_str());
    return 1;
  }
  auto sum = job.value().result();  // AsyncResult.get(), without exceptions
  if (!sum.ok()) {
    std::fprintf(stderr, "%s\n", sum.error().to_string().c_str());
    return 1;
  }
  std::printf("sum = %.17g over %zu elements, %llu workers\n", sum.value().value, n,
              static_cast<unsigned long long>(pool.workers()));
  return 0;
}
