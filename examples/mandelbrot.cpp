// The seed's embarrassingly parallel picture (lecture 002 shows a ray tracer: every pixel is
// independent): the Mandelbrot set, rendered by worker processes in slices of rows straight into
// a shared u8 array in /dev/shm, then written as a PNG (docs/mandelbrot.png).
//
// Each slice runs the `mandelbrot` kernel of the examples' plugin (examples/kernels): pixel
// value 0 inside the set, else a palette index from its escape time.
// Answer: the pixels inside give the set's area, about 1.5066 (more with few iterations).
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>

#include "common/example.hpp"
#include "common/png_writer.hpp"

namespace {

// Black inside; outside, a smooth cycle from deep blue through white to orange.
std::array<zwq::example::Rgb, 256> palette() {
  std::array<zwq::example::Rgb, 256> p{};
  for (int i = 1; i < 256; ++i) {
    const double t = std::fmod(std::sqrt((i - 1) / 254.0) * 2.0, 1.0);
    const double r = 9 * (1 - t) * t * t * t, g = 15 * (1 - t) * (1 - t) * t * t,
                 b = 8.5 * (1 - t) * (1 - t) * (1 - t) * t;
    auto byte = [](double v) {
      return static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255));
    };
    p[i] = {byte(r + 0.1 * t), byte(g + 0.05), byte(b + 0.15)};
  }
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Renders the Mandelbrot set in parallel slices and writes a PNG"};
  zwq::example::Args args;
  std::uint32_t width = 1200, height = 960;
  std::int64_t max_iter = 500;
  std::uint32_t rows_per_slice = 16;
  std::string out = "mandelbrot.png";
  zwq::example::add_pool_options(app, args);
  app.add_option("--width", width)->capture_default_str();
  app.add_option("--height", height)->capture_default_str();
  app.add_option("--max-iter", max_iter)->capture_default_str();
  app.add_option("--rows", rows_per_slice, "rows per slice")->capture_default_str();
  app.add_option("--out", out, "the PNG to write")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  return zwq::example::guarded([&] {
    zwq::Pool pool = zwq::example::make_pool(args, true);
    const std::string name = "zwq-example-mandelbrot-" + std::to_string(::getpid());
    const std::uint64_t pixels = std::uint64_t{width} * height;
    auto image = zwq::example::value_or_throw(zwq::SharedArray<std::uint8_t>::create(name, pixels));
    // The view [-2.2, 0.8] x [-1.2, 1.2]: the whole set, 5:4 like the default picture.
    zwq::Params view;
    view.set("width", std::int64_t{width});
    view.set("height", std::int64_t{height});
    view.set("max_iter", max_iter);
    view.set("x0", -2.2);
    view.set("x1", 0.8);
    view.set("y0", -1.2);
    view.set("y1", 1.2);

    zwq::example::Timer timer;
    auto job = zwq::example::value_or_throw(
        pool.submit(zwq::JobRequest::generate("mandelbrot", image, view),
                    {.chunksize = std::uint64_t{rows_per_slice} * width}));
    const zwq::JobResult r = job.get();
    std::uint64_t inside = 0;
    for (std::uint8_t v : image) inside += v == 0;
    const double area = 3.0 * 2.4 * static_cast<double>(inside) / static_cast<double>(pixels);
    const std::string error = zwq::example::write_palette_png(
        out, std::span<const std::uint8_t>(image.data(), pixels), width, height, palette());
    if (!error.empty()) throw zwq::SetupError(error);
    std::printf(
        "mandelbrot %ux%u in %llu slices: %llu pixels rendered, %llu inside, area %.4f; "
        "wrote %s\n",
        width, height, static_cast<unsigned long long>(job.job().total_slices()),
        static_cast<unsigned long long>(r.value), static_cast<unsigned long long>(inside), area,
        out.c_str());
    zwq::example::print_time(timer, pool);
    return 0;
  });
}
