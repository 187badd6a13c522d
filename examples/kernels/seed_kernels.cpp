// The kernels of the seed programs that zwq does not ship: a kernel plugin, built in-tree with
// zwq_add_kernel_plugin() exactly as a user builds one outside it (docs/PLUGINS.md).
//
//   poisson     (params -> gather)  the seed's parameter sweep: solves a 2-D Poisson problem for
//                                   one `alpha` and returns the l2 norm of the solution
//   mandelbrot  (generate -> count) the seed's embarrassingly parallel image: renders pixels
//                                   [first, first + count) of a width x height picture as u8
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>
#include <zwq/kernel_sdk.hpp>

namespace {

// ---- poisson ------------------------------------------------------------------------------
//
// The FEniCS demo of the seed, on the unit square with an n x n grid of cells (n = 256 there):
//   -Laplace(u) = alpha * exp(-((x - 0.5)^2 + (y - 0.5)^2) / 0.02)
//   u = 0 on x = 0 and x = 1 (Dirichlet), du/dn = sin(5x) on y = 0 and y = 1 (Neumann),
// discretised with the 5-point stencil (the P1 finite elements of the demo, with a lumped load)
// and solved by successive over-relaxation, a Jacobi-family iteration that converges in O(n)
// sweeps. Returns sqrt(sum of u^2 over every grid node), the `u.vector().norm('l2')` the demo
// prints.
double poisson(const zwq::Params& p) {
  const double alpha = p.get_double("alpha", 1.0);
  const auto n = static_cast<int>(std::clamp<std::int64_t>(p.get_int("n", 256), 4, 4096));
  const double tol = p.get_double("tol", 1e-10);
  const double h = 1.0 / n;
  const int stride = n + 1;
  std::vector<double> u(static_cast<std::size_t>(stride) * stride, 0.0);  // u[j * stride + i]
  std::vector<double> rhs(u.size(), 0.0);
  for (int j = 0; j <= n; ++j) {
    for (int i = 1; i < n; ++i) {
      const double x = i * h, y = j * h;
      const double dx = x - 0.5, dy = y - 0.5;
      double b = h * h * alpha * std::exp(-(dx * dx + dy * dy) / 0.02);
      if (j == 0 || j == n) b += 2.0 * h * std::sin(5.0 * x);  // ghost node from du/dn = g
      rhs[j * stride + i] = b;
    }
  }
  // The optimal factor for the Dirichlet problem on this grid; close enough for the mixed one.
  const double omega = 2.0 / (1.0 + std::sin(M_PI * h));
  // Red-black ordering: the nodes of one colour depend only on the other's, so a half-sweep has
  // no chain from one update to the next and runs several times faster than a lexicographic one.
  for (int sweep = 0; sweep < 100 * n; ++sweep) {
    double change = 0;
    for (int colour = 0; colour < 2; ++colour) {
      for (int j = 0; j <= n; ++j) {
        const int below = j == 0 ? 1 : j - 1;  // mirrored neighbours on the Neumann sides
        const int above = j == n ? n - 1 : j + 1;
        double* row = &u[j * stride];
        const double* down = &u[below * stride];
        const double* up = &u[above * stride];
        const double* b = &rhs[j * stride];
        for (int i = 1 + (j + 1 + colour) % 2; i < n; i += 2) {
          const double target = 0.25 * (b[i] + row[i - 1] + row[i + 1] + down[i] + up[i]);
          const double delta = omega * (target - row[i]);
          row[i] += delta;
          change = std::max(change, std::abs(delta));
        }
      }
    }
    if (change < tol) break;
  }
  double sum = 0;
  for (double v : u) sum += v * v;
  return std::sqrt(sum);
}

// ---- mandelbrot ---------------------------------------------------------------------------

struct View {
  std::int64_t width, height, max_iter;
  double x0, x1, y0, y1;
};

View view_of(const zwq::Params& p) {
  return View{p.get_int("width", 800),  p.get_int("height", 800), p.get_int("max_iter", 256),
              p.get_double("x0", -2.0), p.get_double("x1", 0.5),  p.get_double("y0", -1.25),
              p.get_double("y1", 1.25)};
}

zwq::Status validate_mandelbrot(const zwq::Params& p, zwq::DType, std::uint64_t job_count) {
  const View v = view_of(p);
  if (v.width < 1 || v.height < 1 || v.max_iter < 1 || v.max_iter > 1'000'000 || !(v.x0 < v.x1) ||
      !(v.y0 < v.y1)) {
    return zwq::make_error(zwq::ErrorCode::kInvalidArgument,
                           "mandelbrot: needs width, height, max_iter >= 1, x0 < x1 and y0 < y1");
  }
  if (job_count > static_cast<std::uint64_t>(v.width * v.height)) {
    return zwq::make_error(zwq::ErrorCode::kInvalidArgument,
                           "mandelbrot: the job covers more than width * height pixels");
  }
  return zwq::Status::Ok();
}

// Pixel value: 0 inside the set (no escape within max_iter), else 1 + the escape iteration
// folded into 1..255 (a palette index).
void mandelbrot(std::span<std::uint8_t> out, zwq::sdk::Range r, const zwq::Params& p) {
  const View v = view_of(p);
  const double sx = (v.x1 - v.x0) / static_cast<double>(v.width);
  const double sy = (v.y1 - v.y0) / static_cast<double>(v.height);
  for (std::size_t k = 0; k < out.size(); ++k) {
    const auto pixel = static_cast<std::int64_t>(r.first + k);
    const double cx = v.x0 + (static_cast<double>(pixel % v.width) + 0.5) * sx;
    const double cy = v.y1 - (static_cast<double>(pixel / v.width) + 0.5) * sy;
    double zx = 0, zy = 0;
    std::int64_t it = 0;
    while (it < v.max_iter && zx * zx + zy * zy <= 4.0) {
      const double t = zx * zx - zy * zy + cx;
      zy = 2.0 * zx * zy + cy;
      zx = t;
      ++it;
    }
    out[k] = it == v.max_iter ? 0 : static_cast<std::uint8_t>(1 + it % 255);
  }
}

}  // namespace

ZWQ_KERNEL("poisson", poisson, gather, params,
           .help = "l2 norm of a 2-D Poisson solution for alpha (n=256 cells, tol=1e-10)");
ZWQ_KERNEL("mandelbrot", mandelbrot, count, generate,
           .help = "Mandelbrot escape times as u8 pixels (width, height, max_iter, x0..y1)",
           .validate = validate_mandelbrot);
