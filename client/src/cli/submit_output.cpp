#include "submit_output.hpp"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"

namespace zwq::cli {

namespace {

Combiner combiner_of(const Outcome& o) {
  if (const KernelInfo* k = KernelRegistry::builtin().find(o.spec.kernel)) return k->combiner;
  return o.result ? o.result->merged.combiner : Combiner::kSum;
}

std::optional<double> gbps(const Outcome& o) {
  const std::uint64_t bytes = input_bytes(o.spec);
  if (bytes == 0 || o.seconds <= 0) return std::nullopt;
  return static_cast<double>(bytes) / o.seconds / 1e9;
}

// Histogram bins as the kernel returns them: bins..., underflow, overflow.
void print_bins(const std::vector<std::uint64_t>& bins) {
  if (bins.size() < 2) return;
  std::cout << "bins = [";
  for (std::size_t i = 0; i + 2 < bins.size(); ++i) std::cout << (i ? ", " : "") << bins[i];
  std::cout << "]\nunderflow = " << bins[bins.size() - 2]
            << "\noverflow = " << bins[bins.size() - 1] << "\n";
}

}  // namespace

std::uint64_t input_bytes(const JobSpec& spec) {
  std::uint64_t bytes = 0;
  for (const DatasetRef* ref : {&spec.input, &spec.input2}) {
    if (ref->present()) bytes += spec.count * dtype_size(ref->dtype);
  }
  return bytes;
}

void print_human(const Outcome& o) {
  if (!o.result) return;
  const JobResult& r = *o.result;
  std::cout << o.spec.kernel << " = " << format_exact(r.value) << "\n";
  const Combiner combiner = combiner_of(o);
  if (combiner == Combiner::kMoments)
    std::cout << "variance = " << format_exact(r.variance) << "\n";
  if (combiner == Combiner::kHistogram) print_bins(r.merged.bins);
  if (o.attached) {
    std::cout << r.merged.n << " elements or points, " << o.total_slices << " slices, "
              << format_duration(o.seconds) << "\n";
    return;
  }
  const bool range = !o.spec.input.present();
  std::cout << o.spec.count << (range ? " points" : " elements") << ", " << o.total_slices
            << " slices, " << format_duration(o.seconds);
  if (auto g = gbps(o)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", *g);
    std::cout << ", " << buf << " GB/s";
  }
  std::cout << "\n";
}

void put_histogram(nlohmann::json& j, const std::vector<std::uint64_t>& bins) {
  using nlohmann::json;
  if (bins.size() < 2) {
    j["bins"] = j["underflow"] = j["overflow"] = nullptr;
    return;
  }
  j["bins"] = std::vector<std::uint64_t>(bins.begin(), bins.end() - 2);
  j["underflow"] = bins[bins.size() - 2];
  j["overflow"] = bins[bins.size() - 1];
}

void print_json(const Outcome& o) {
  using nlohmann::json;
  json j;
  j["job_id"] = o.spec.job_id;
  j["kernel"] = o.spec.kernel.empty() ? json(nullptr) : json(o.spec.kernel);
  j["state"] = o.state_known ? json(std::string(job_state_name(o.status.state))) : json(nullptr);
  j["value"] = o.result ? json(o.result->value) : json(nullptr);
  const Combiner combiner = combiner_of(o);
  j["variance"] =
      o.result && combiner == Combiner::kMoments ? json(o.result->variance) : json(nullptr);
  j["n"] = o.result ? json(o.result->merged.n) : json(nullptr);
  j["first"] = o.attached ? json(nullptr) : json(o.spec.first);  // (not known by id)
  j["count"] = o.attached ? json(nullptr) : json(o.spec.count);
  put_histogram(j, o.result && combiner == Combiner::kHistogram ? o.result->merged.bins
                                                                : std::vector<std::uint64_t>{});
  j["total_slices"] = o.total_slices;
  j["seconds"] = o.seconds;
  const auto g = gbps(o);
  j["gbps"] = o.result && g ? json(*g) : json(nullptr);
  j["error"] = o.error ? json(o.error->to_string()) : json(nullptr);
  std::cout << j.dump() << std::endl;
}

int print_outcome(const Outcome& o, bool json, int exit_code) {
  if (json) {
    print_json(o);
  } else {
    print_human(o);
  }
  if (o.error) report(*o.error);
  return exit_code;
}

}  // namespace zwq::cli
