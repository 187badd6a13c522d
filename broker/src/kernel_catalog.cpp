#include "kernel_catalog.hpp"

#include <algorithm>

namespace zwq::broker {

namespace {

// Announced kernels run on workers only; the broker keeps their KernelInfo for its shape and
// combiner. Should anything call it here, it fails instead of computing.
Status runs_on_workers(const SliceContext&, Partial&) {
  return make_error(ErrorCode::kInternal, "an announced kernel runs on workers only");
}

}  // namespace

KernelCatalog::KernelCatalog(const KernelRegistry& builtin) : builtin_(builtin) {}

const KernelInfo* KernelCatalog::intern(const KernelSpec& spec) {
  for (const KernelInfo& k : announced_) {
    if (same_definition(spec_of(k), spec)) return &k;
  }
  KernelInfo info;
  info.name = spec.name;
  info.fn = &runs_on_workers;
  info.combiner = spec.combiner;
  info.shape = spec.shape;
  info.input_dtype = spec.input_dtype;
  info.output_dtype = spec.output_dtype;
  info.help = spec.help;
  announced_.push_back(std::move(info));
  return &announced_.back();
}

void KernelCatalog::offer(const std::string& worker_id, const std::vector<std::string>& names,
                          const std::vector<KernelSpec>& specs) {
  withdraw(worker_id);
  Offered offered;
  offered.names = names;
  for (const KernelSpec& spec : specs) {
    if (builtin_.find(spec.name) != nullptr || !kernel_spec_problem(spec).empty()) continue;
    auto live = live_.find(spec.name);
    if (live != live_.end() && !same_definition(spec_of(*live->second), spec)) {
      ++conflicts_;  // another definition is offered already: this worker gets none of its jobs
      continue;
    }
    const KernelInfo* k = live != live_.end() ? live->second : intern(spec);
    if (!offered.kernels.insert(k).second) continue;  // announced twice
    live_.emplace(spec.name, k);
    ++offer_count_[k];
  }
  workers_[worker_id] = std::move(offered);
}

void KernelCatalog::withdraw(const std::string& worker_id) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return;
  for (const KernelInfo* k : it->second.kernels) {
    if (--offer_count_[k] == 0) {
      offer_count_.erase(k);
      live_.erase(k->name);
    }
  }
  workers_.erase(it);
}

const KernelInfo* KernelCatalog::remember(const KernelSpec& spec) {
  if (const KernelInfo* k = builtin_.find(spec.name)) return k;
  if (!kernel_spec_problem(spec).empty()) return nullptr;
  auto live = live_.find(spec.name);
  if (live != live_.end() && same_definition(spec_of(*live->second), spec)) return live->second;
  return intern(spec);
}

const KernelInfo* KernelCatalog::find(std::string_view name) const {
  if (const KernelInfo* k = builtin_.find(name)) return k;
  auto it = live_.find(name);
  return it == live_.end() ? nullptr : it->second;
}

bool KernelCatalog::is_builtin(const KernelInfo* kernel) const {
  return kernel != nullptr && builtin_.find(kernel->name) == kernel;
}

bool KernelCatalog::serves(const std::string& worker_id, const KernelInfo* kernel) const {
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || kernel == nullptr) return false;
  const Offered& w = it->second;
  if (is_builtin(kernel)) {
    return w.names.empty() ||
           std::find(w.names.begin(), w.names.end(), kernel->name) != w.names.end();
  }
  return w.kernels.count(kernel) != 0;
}

std::vector<std::string> KernelCatalog::names() const {
  std::vector<std::string> out = builtin_.names();
  for (const auto& [name, k] : live_) out.push_back(name);
  return out;
}

std::vector<KernelSpec> KernelCatalog::specs() const {
  std::vector<KernelSpec> out = builtin_.specs();
  for (const auto& [name, k] : live_) out.push_back(spec_of(*k));
  return out;
}

}  // namespace zwq::broker
