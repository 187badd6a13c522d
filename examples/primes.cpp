// The seed's prime test over a range (lecture 001), as a count:
//
//   numbers_to_test = range(int(1e5)); results = p.map(is_prime, numbers_to_test)
//
// Here every number below --limit (10^6) is tested in parallel ranges by zwq's segmented-sieve
// `primes` kernel. Answer: 78498 primes below 10^6 (9592 below 10^5).
#include <cstdint>

#include "common/example.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Counts the primes below a limit"};
  zwq::example::Args args;
  std::uint64_t limit = 1'000'000;
  zwq::example::add_pool_options(app, args);
  app.add_option("--limit", limit, "count the primes below this")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  return zwq::example::guarded([&] {
    zwq::Pool pool = zwq::example::make_pool(args, false);
    zwq::example::Timer timer;
    auto job = zwq::example::value_or_throw(pool.submit(zwq::JobRequest::range("primes", limit)));
    const zwq::JobResult r = job.get();
    std::printf("primes below %llu: %llu\n", static_cast<unsigned long long>(limit),
                static_cast<unsigned long long>(r.merged.count));
    zwq::example::print_time(timer, pool);
    return 0;
  });
}
