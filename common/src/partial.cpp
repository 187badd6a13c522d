#include "zwq/partial.hpp"

#include <cmath>
#include <utility>

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
    case Combiner::kExactSum:
      return "exact sum";
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

// Exact sums: a non-finite hi is the IEEE sum of the specials met (inf + -inf = NaN), and any
// finite value beside it no longer matters.
void merge_exact_sum(Partial& acc, const Partial& p) {
  acc.n += p.n;
  const bool acc_special = !std::isfinite(acc.hi);
  const bool p_special = !std::isfinite(p.hi);
  if (acc_special || p_special) {
    acc.hi = (acc_special ? acc.hi : 0.0) + (p_special ? p.hi : 0.0);
    acc.lo = 0;
    acc.terms.clear();
    return;
  }
  // The accumulator keeps its whole expansion in terms (its capacity is reused merge after
  // merge); hi and lo go in first.
  std::vector<double>& t = acc.terms;
  const double pending[] = {acc.hi, acc.lo, p.hi, p.lo};
  acc.hi = acc.lo = 0;
  auto add = [&](double x) {
    double overflow = 0;
    if (x == 0 || expansion_add(t, x, &overflow)) return true;
    acc.hi = overflow;  // a running total beyond the largest double: +-inf
    acc.terms.clear();
    return false;
  };
  for (double x : pending) {
    if (!add(x)) return;
  }
  for (double x : p.terms) {
    if (!add(x)) return;
  }
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

// Shewchuk's grow-expansion with the zero components dropped (as Python's msum does): each
// component in turn is added to x with an error-free two-sum; the errors stay, in order.
bool expansion_add(std::vector<double>& terms, double x, double* overflow) {
  // The running sums are the same whichever operand is the larger: one pass finds an overflow
  // (or a non-finite x) before anything is written.
  double carry = x;
  for (double y : terms) carry += y;
  if (!std::isfinite(carry)) {
    if (overflow != nullptr) *overflow = carry;
    return false;
  }
  std::size_t kept = 0;
  carry = x;
  for (std::size_t i = 0; i < terms.size(); ++i) {
    double a = carry;
    double y = terms[i];
    if (std::fabs(a) < std::fabs(y)) std::swap(a, y);
    const double hi = a + y;
    const double lo = y - (hi - a);  // exact, as |a| >= |y| (Dekker's fast two-sum)
    if (lo != 0) terms[kept++] = lo;
    carry = hi;
  }
  terms.resize(kept);
  terms.push_back(carry);
  return true;
}

double expansion_value(const std::vector<double>& terms) {
  if (terms.empty()) return 0.0;
  std::size_t i = terms.size() - 1;
  double hi = terms[i];
  double lo = 0;
  // From the top down, until a sum is inexact: hi then holds the value rounded once, lo what
  // that rounding dropped.
  while (i > 0) {
    const double x = hi;
    const double y = terms[--i];
    hi = x + y;
    lo = y - (hi - x);
    if (lo != 0) break;
  }
  // Round half to even is right unless the dropped part was exactly half an ulp and more terms
  // below push it past half in the same direction: then round away.
  if (i > 0 && ((lo < 0 && terms[i - 1] < 0) || (lo > 0 && terms[i - 1] > 0))) {
    const double twice = lo * 2;
    const double away = hi + twice;
    if (away - hi == twice) hi = away;
  }
  return hi;
}

double exact_sum_value(const Partial& p) {
  if (!std::isfinite(p.hi)) return p.hi;
  if (p.terms.empty() && p.lo == 0) return p.hi;
  std::vector<double> t;
  t.reserve(p.terms.size() + 2);
  double overflow = 0;
  for (double x : {p.hi, p.lo}) {
    if (x != 0 && !expansion_add(t, x, &overflow)) return overflow;
  }
  for (double x : p.terms) {
    if (!expansion_add(t, x, &overflow)) return overflow;
  }
  return expansion_value(t);
}

void set_exact_terms(Partial& p, const std::vector<double>& expansion) {
  const std::size_t n = expansion.size();
  p.hi = n > 0 ? expansion[n - 1] : 0.0;
  p.lo = n > 1 ? expansion[n - 2] : 0.0;
  if (n > 2) {
    p.terms.assign(expansion.begin(), expansion.end() - 2);
  } else {
    p.terms.clear();
  }
}

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
    case Combiner::kExactSum:
      merge_exact_sum(acc, p);
      return Status::Ok();
    case Combiner::kGather: break;
  }
  return make_error(ErrorCode::kInvalidArgument, "gather partials are kept per slice, not merged");
}

}  // namespace zwq
