// The example programs (examples/), run as a user runs them: each starts its own pool of two
// workers, prints its answer and its time, and the answer must be the known one.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <regex>

#include "command.hpp"

#if defined(ZWQ_TEST_HAVE_EXAMPLES)

using namespace zwq::test;

namespace {

const std::string kExamples = ZWQ_TEST_EXAMPLES_DIR;

// Runs an example with two workers; its exit code must be 0 and its last line the time.
std::string run_example(const std::string& name, const std::string& args = "") {
  auto r =
      run_command("env -u ZWQ_BROKER " + kExamples + "/" + name + " --workers 2 " + args + " 2>&1");
  INFO(name << " printed:\n" << r.out);
  REQUIRE(r.exit_code == 0);
  REQUIRE(std::regex_search(r.out, std::regex(R"(\ntime: [0-9.]+ s \(2 workers\)\n$)")));
  return r.out;
}

// The number after `label` in `out`.
double number_after(const std::string& out, const std::string& label) {
  const std::regex re(label + R"(\s*([-+0-9.eE]+))");
  std::smatch m;
  INFO("looking for '" << label << "' in:\n" << out);
  REQUIRE(std::regex_search(out, m, re));
  return std::stod(m[1].str());
}

}  // namespace

TEST_CASE("examples: the /dev/shm slice sum adds 0 .. 2^22-1", "[integration][examples]") {
  const std::string out = run_example("shm_sum");
  CHECK(number_after(out, "in") == 4096);  // slices of 1024, as the seed sends them
  CHECK(number_after(out, "slices:") == 8796090925056.0);
}

TEST_CASE("examples: pi by the midpoint rule", "[integration][examples]") {
  const std::string out = run_example("pi_midpoint", "--steps 10000000");
  CHECK(std::abs(number_after(out, "steps:") - M_PI) < 1e-12);
}

TEST_CASE("examples: Monte Carlo pi", "[integration][examples]") {
  const std::string out = run_example("mc_pi", "--n 4000000");
  // The standard error for 4e6 points is 8e-4: 0.01 is over 10 of them.
  CHECK(std::abs(number_after(out, "points:") - M_PI) < 0.01);
}

TEST_CASE("examples: the primes below 10^6", "[integration][examples]") {
  CHECK(number_after(run_example("primes"), "below 1000000:") == 78498);
  CHECK(number_after(run_example("primes", "--limit 100000"), "below 100000:") == 9592);
}

TEST_CASE("examples: the x**3 map", "[integration][examples]") {
  const std::string out = run_example("cube_map", "--n 1000000");
  CHECK(number_after(out, "written,") == 0);  // wrong elements
  const double half = 1e6 * (1e6 - 1) / 2;
  CHECK(number_after(out, "sum") == Approx(half * half).epsilon(1e-15));
}

TEST_CASE("examples: the Poisson sweep agrees with the seed's FEniCS norms",
          "[integration][examples]") {
  const std::string out = run_example("poisson_sweep");
  // The seed's output: alpha 0.1 -> 18.4762, 1 -> 20.0226, 10 -> 38.1301, 100 -> 240.314.
  CHECK(number_after(out, "alpha 0.1 -> \\|u\\|=") == Approx(18.4762).epsilon(1e-4));
  CHECK(number_after(out, "alpha 1 -> \\|u\\|=") == Approx(20.0226).epsilon(1e-4));
  CHECK(number_after(out, "alpha 10 -> \\|u\\|=") == Approx(38.1301).epsilon(1e-4));
  CHECK(number_after(out, "alpha 100 -> \\|u\\|=") == Approx(240.314).epsilon(1e-4));
  // In alpha order, whatever order the tasks finished in.
  CHECK(out.find("alpha 0.1") < out.find("alpha 1 "));
  CHECK(out.find("alpha 10 ") < out.find("alpha 100 "));
}

TEST_CASE("examples: the Mandelbrot set's area, and its PNG", "[integration][examples]") {
  const std::string png = "/tmp/zwq-example-" + std::to_string(::getpid()) + ".png";
  const std::string out = run_example("mandelbrot", "--width 600 --height 480 --out " + png);
  CHECK(number_after(out, "rendered,") > 0);
  // The set's area is 1.5066; escape-time pixels at 500 iterations overestimate it slightly.
  const double area = number_after(out, "area");
  CHECK(area > 1.49);
  CHECK(area < 1.53);

  // A PNG of 600 x 480: the signature, then the IHDR chunk with big-endian width and height.
  std::FILE* f = std::fopen(png.c_str(), "rb");
  REQUIRE(f != nullptr);
  unsigned char head[24] = {};
  const std::size_t got = std::fread(head, 1, sizeof head, f);
  std::fclose(f);
  std::remove(png.c_str());
  REQUIRE(got == sizeof head);
  CHECK(std::string(reinterpret_cast<char*>(head), 8) == "\x89PNG\r\n\x1a\n");
  CHECK(std::string(reinterpret_cast<char*>(head) + 12, 4) == "IHDR");
  auto be32 = [&](int at) {
    return (head[at] << 24) | (head[at + 1] << 16) | (head[at + 2] << 8) | head[at + 3];
  };
  CHECK(be32(16) == 600);
  CHECK(be32(20) == 480);
}

#endif
