// The seed's Monte Carlo pi (lecture 003): draw points in the unit square; the fraction inside
// the quarter disc is pi / 4.
//
//   part_count = [n // np for i in range(np)]
//   count = pool.map(monte_carlo_pi, part_count)
//   print("estimated value of Pi: ", sum(count) / (n * 1.0) * 4)
//
// zwq's `mcpi` kernel draws point p from a counter-based stream, so the estimate is the same
// however many workers run it. Answer: about 3.1416 (|error| ~ 1.6 / sqrt(n)).
#include <cmath>
#include <cstdint>

#include "common/example.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Pi by Monte Carlo"};
  zwq::example::Args args;
  std::uint64_t n = 100'000'000;
  std::int64_t seed = 0;
  zwq::example::add_pool_options(app, args);
  app.add_option("--n", n, "points")->capture_default_str();
  app.add_option("--seed", seed, "random stream")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  return zwq::example::guarded([&] {
    zwq::Pool pool = zwq::example::make_pool(args, false);
    zwq::example::Timer timer;
    auto job = zwq::example::value_or_throw(
        pool.submit(zwq::JobRequest::range("mcpi", n).with("seed", seed)));
    const zwq::JobResult r = job.get();
    std::printf("estimated value of pi with %llu points: %.8f (%llu inside, error %.3g)\n",
                static_cast<unsigned long long>(n), r.value,
                static_cast<unsigned long long>(r.merged.count), r.value - M_PI);
    zwq::example::print_time(timer, pool);
    return 0;
  });
}
