#include "zwq/partial.hpp"

#include <cmath>

namespace zwq {

std::string_view combiner_name(Combiner c) {
  switch (c) {
    case Combiner::kSum: return "sum";
    case Combiner::kMin: return "min";
    case Combiner::kMax: return "max";
    case Combiner::kMoments: return "moments";
    case Combiner::kCount: return "count";
    case Combiner::kHistogram: return "histogram";
    case Combiner::kGather: return "gather";
  }
  return "unknown";
}

bool combiner_is_order_sensitive(Combiner c) {
  return c == Combiner::kSum || c == Combiner::kMoments;
}

Partial identity_partial(Combiner c, std::size_t histogram_bins) {
  Partial p;
  p.combiner = c;
  if (c == Combiner::kHistogram) p.bins.assign(histogram_bins + 2, 0);
  return p;
}

namespace {

// Error-free transformation: s + e == a + b exactly (Knuth's TwoSum; no ordering assumption).
inline void two_sum(double a, double b, double& s, double& e) {
  s = a + b;
  const double bp = s - a;
  e = (a - (s - bp)) + (b - bp);
}

// Renormalises (hi, lo) so that hi carries all it can (Dekker's fast two-sum, |hi| >= |lo|).
inline void renormalize(double& hi, double& lo) {
  const double s = hi + lo;
  lo = lo - (s - hi);
  hi = s;
}

void merge_extreme(Partial& acc, const Partial& p, bool want_min) {
  if (p.n == 0) return;
  if (acc.n == 0 || std::isnan(p.hi)) {
    acc.hi = p.hi;
  } else if (!std::isnan(acc.hi)) {
    acc.hi = want_min ? std::fmin(acc.hi, p.hi) : std::fmax(acc.hi, p.hi);
  }
  acc.n += p.n;
}

// Chan, Golub & LeVeque's pairwise update of (n, mean, M2).
void merge_moments(Partial& acc, const Partial& p) {
  if (p.n == 0) return;
  if (acc.n == 0) {
    acc.n = p.n;
    acc.hi = p.hi;
    acc.lo = p.lo;
    return;
  }
  const double na = static_cast<double>(acc.n);
  const double nb = static_cast<double>(p.n);
  const double n = na + nb;
  const double delta = p.hi - acc.hi;
  acc.hi = acc.hi + delta * (nb / n);
  acc.lo = acc.lo + p.lo + delta * delta * (na * nb / n);
  acc.n += p.n;
}

}  // namespace

void dd_add(double& hi, double& lo, double x) {
  double s, e;
  two_sum(hi, x, s, e);
  if (!std::isfinite(s)) {  // inf or NaN: the error term is meaningless (inf - inf = NaN)
    hi = s;
    lo = 0;
    return;
  }
  hi = s;
  lo += e;
  renormalize(hi, lo);
}

void dd_add_dd(double& hi, double& lo, double x_hi, double x_lo) {
  double s, e;
  two_sum(hi, x_hi, s, e);
  if (!std::isfinite(s)) {
    hi = s;
    lo = 0;
    return;
  }
  e += lo + x_lo;
  hi = s;
  lo = e;
  renormalize(hi, lo);
}

Status merge_into(Partial& acc, const Partial& p) {
  if (acc.combiner != p.combiner) {
    return make_error(ErrorCode::kInvalidArgument,
                      "cannot merge a " + std::string(combiner_name(p.combiner)) +
                          " partial into a " + std::string(combiner_name(acc.combiner)) + " one");
  }
  switch (acc.combiner) {
    case Combiner::kSum:
      dd_add_dd(acc.hi, acc.lo, p.hi, p.lo);
      acc.n += p.n;
      return Status::Ok();
    case Combiner::kMin: merge_extreme(acc, p, true); return Status::Ok();
    case Combiner::kMax: merge_extreme(acc, p, false); return Status::Ok();
    case Combiner::kMoments: merge_moments(acc, p); return Status::Ok();
    case Combiner::kCount:
      acc.count += p.count;
      acc.n += p.n;
      return Status::Ok();
    case Combiner::kHistogram:
      if (acc.bins.empty()) acc.bins.assign(p.bins.size(), 0);
      if (acc.bins.size() != p.bins.size()) {
        return make_error(ErrorCode::kInvalidArgument,
                          "histogram partials of " + std::to_string(p.bins.size()) + " and " +
                              std::to_string(acc.bins.size()) + " bins cannot be merged");
      }
      for (std::size_t i = 0; i < p.bins.size(); ++i) acc.bins[i] += p.bins[i];
      acc.n += p.n;
      return Status::Ok();
    case Combiner::kGather: break;
  }
  return make_error(ErrorCode::kInvalidArgument, "gather partials are kept per slice, not merged");
}

}  // namespace zwq
