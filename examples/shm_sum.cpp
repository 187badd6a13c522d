// The seed's /dev/shm slice sum (lecture 004): a float32 array of 2^22 elements holding
// 0, 1, 2, ... in /dev/shm, cut into slices of 1024 elements that worker processes sum in place;
// the partial sums are collected as they arrive.
//
//   data = open("/dev/shm/bigarray", "w+b"); data.seek(1<<24); data.truncate()
//   mdata = numpy.memmap(data, numpy.float32); mdata[:] = numpy.arange(1<<22)
//   ... push.send(slice(i, i + 1024)) ... print sum(res.recv() for each slice)
//
// Answer: 0 + 1 + ... + (2^22 - 1) = 8796090925056.
#include <unistd.h>

#include <cstdint>
#include <numeric>

#include "common/example.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Sums a 2^22-element float32 array in /dev/shm, slice by slice"};
  zwq::example::Args args;
  std::uint64_t n = std::uint64_t{1} << 22;
  std::uint64_t slice = 1024;
  zwq::example::add_pool_options(app, args);
  app.add_option("--n", n, "elements")->capture_default_str();
  app.add_option("--slice", slice, "elements per slice")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  return zwq::example::guarded([&] {
    zwq::Pool pool = zwq::example::make_pool(args, false);
    const std::string name = "zwq-example-bigarray-" + std::to_string(::getpid());
    auto data = zwq::example::value_or_throw(zwq::SharedArray<float>::create(name, n));
    std::iota(data.begin(), data.end(), 0.0f);  // exact up to 2^24

    zwq::example::Timer timer;
    zwq::Job job = zwq::example::value_or_throw(
        pool.imap_unordered(zwq::JobRequest::reduce("sum", data), {.chunksize = slice}));
    std::uint64_t slices = 0;
    for (const zwq::SliceResult& s : job.as_completed()) {  // the seed's collect() thread
      (void)s;
      ++slices;
    }
    const zwq::JobResult r = job.get();
    const double expected = static_cast<double>(n) * static_cast<double>(n - 1) / 2.0;
    std::printf("sum of %llu elements in %llu slices: %.17g (expected %.17g)\n",
                static_cast<unsigned long long>(n), static_cast<unsigned long long>(slices),
                r.value, expected);
    zwq::example::print_time(timer, pool);
    return r.value == expected ? 0 : 1;
  });
}
