// The seed's map of x**3 (lecture 001):
//
//   def f(x): return x**3
//   y = range(int(1e7)); results = p.map(f, y)
//
// Here x = 0, 1, ..., n-1 is a float64 array in /dev/shm; Pool.map runs the built-in `cube`
// kernel over it into a second shared array, in place, with Pool's automatic chunksize. The
// program checks every element and sums the cubes with a second job.
// Answer: sum of i^3 for i < n = (n (n - 1) / 2)^2 = 2.4999995000000025e27 for n = 10^7.
#include <unistd.h>

#include <cmath>
#include <cstdint>

#include "common/example.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Maps x -> x**3 over a shared array"};
  zwq::example::Args args;
  std::uint64_t n = 10'000'000;
  zwq::example::add_pool_options(app, args);
  app.add_option("--n", n, "elements")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  return zwq::example::guarded([&] {
    zwq::Pool pool = zwq::example::make_pool(args, false);
    const std::string stem = "zwq-example-cube-" + std::to_string(::getpid());
    auto x = zwq::example::value_or_throw(zwq::SharedArray<double>::create(stem + "-x", n));
    auto y = zwq::example::value_or_throw(zwq::SharedArray<double>::create(stem + "-y", n));
    for (std::uint64_t i = 0; i < n; ++i) x[i] = static_cast<double>(i);

    zwq::example::Timer timer;
    const zwq::JobResult mapped = zwq::example::value_or_throw(pool.map("cube", x, y));
    std::uint64_t wrong = 0;
    for (std::uint64_t i = 0; i < n; ++i) wrong += y[i] != x[i] * x[i] * x[i];
    const zwq::JobResult sum =
        zwq::example::value_or_throw(pool.client().run(zwq::JobRequest::reduce("sum", y)));
    const double half = static_cast<double>(n) * static_cast<double>(n - 1) / 2.0;
    std::printf("cubes of %llu elements: %.17g written, %llu wrong, sum %.17g (expected %.17g)\n",
                static_cast<unsigned long long>(n), mapped.value,
                static_cast<unsigned long long>(wrong), sum.value, half * half);
    zwq::example::print_time(timer, pool);
    return wrong == 0 ? 0 : 1;
  });
}
