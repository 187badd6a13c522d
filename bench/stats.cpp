#include "stats.hpp"

#include <algorithm>
#include <cmath>

namespace zwq::bench {

Summary summarize(std::vector<double> samples) {
  Summary s;
  s.samples = samples;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  const std::size_t n = samples.size();
  s.median = n % 2 == 1 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
  s.min = samples.front();
  s.max = samples.back();
  return s;
}

double percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(samples.size()));
  const std::size_t i = static_cast<std::size_t>(std::clamp(rank, 1.0, double(samples.size())));
  return samples[i - 1];
}

json to_json(const Summary& s) {
  return json{{"median", s.median}, {"min", s.min}, {"max", s.max}, {"samples", s.samples}};
}

double median_of(const json& summary) {
  if (!summary.is_object() || !summary.contains("median")) return 0;
  return summary["median"].get<double>();
}

}  // namespace zwq::bench
