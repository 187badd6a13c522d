// The seed's pi by the midpoint rule (lecture 002): the integral of 4 / (1 + x^2) over [0, 1]
// as a sum of num_steps rectangles, cut into ranges that worker processes sum.
//
//   for i in range(start, end): x = (i + 0.5) * step; sum = sum + 4.0 / (1.0 + x * x)
//   pi = step * sums
//
// Answer: pi (3.14159265358979...), to within ~1e-15 for 10^8 steps.
#include <cmath>
#include <cstdint>

#include "common/example.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Pi by the midpoint rule"};
  zwq::example::Args args;
  std::uint64_t steps = 100'000'000;
  zwq::example::add_pool_options(app, args);
  app.add_option("--steps", steps, "rectangles")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  return zwq::example::guarded([&] {
    zwq::Pool pool = zwq::example::make_pool(args, false);
    zwq::example::Timer timer;
    auto job = zwq::example::value_or_throw(pool.submit(zwq::JobRequest::range("pi", steps)));
    const double pi = job.get().value;
    std::printf("pi with %llu steps: %.15f (error %.3g)\n", static_cast<unsigned long long>(steps),
                pi, pi - M_PI);
    zwq::example::print_time(timer, pool);
    return 0;
  });
}
