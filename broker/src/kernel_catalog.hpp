// KernelCatalog: the kernels the broker accepts jobs for — the built-in ones, plus those that
// live workers announced in Hello.kernel_specs (plugins) — and which worker serves which.
//
// The broker never runs a plugin's code: an announced kernel is known by its KernelSpec alone
// (shape, combiner, dtypes), which is all validation, routing and the collector's merge need.
// A job names a kernel; find() gives a KernelInfo whose address stays valid for the catalog's
// lifetime (a queued job keeps pointing at it after every worker offering it left, and is
// served again when a worker announcing the same definition arrives).
//
// Rules (docs/PROTOCOL.md, "Hello"):
//  * a built-in name keeps its built-in definition; a worker's spec for it is not used;
//  * an announced name is offered while at least one live worker announces it; a worker whose
//    definition of it (combiner, shape, dtypes) disagrees with the one live workers offer is
//    not given its jobs, and the disagreement is counted.
//
// Socket-free and clock-free. Not thread-safe: the scheduler owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "zwq/kernel.hpp"

namespace zwq::broker {

class KernelCatalog {
 public:
  // `builtin` must outlive the catalog.
  explicit KernelCatalog(const KernelRegistry& builtin);

  // What `worker_id` offers, from its Hello: `names` (empty: it did not say, so it is taken to
  // serve every built-in kernel) and `specs`. Replaces what the worker offered before.
  void offer(const std::string& worker_id, const std::vector<std::string>& names,
             const std::vector<KernelSpec>& specs);
  // The worker is gone: it offers nothing any more.
  void withdraw(const std::string& worker_id);

  // The kernel a job of that name runs: built-in, or announced by a live worker; nullptr if
  // neither.
  const KernelInfo* find(std::string_view name) const;
  // The definition a job restored from the journal ran with, before any worker announced it
  // again: the built-in kernel of that name, else the stored definition equal to `spec` (made
  // if there is none yet; not offered until a live worker announces it). nullptr when `spec` is
  // not a valid definition.
  const KernelInfo* remember(const KernelSpec& spec);
  // Whether `worker_id` should get jobs of `kernel` (a pointer find() returned).
  bool serves(const std::string& worker_id, const KernelInfo* kernel) const;
  bool is_builtin(const KernelInfo* kernel) const;

  // Built-in names, then the announced ones in name order.
  std::vector<std::string> names() const;
  std::vector<KernelSpec> specs() const;
  // Announced definitions that disagreed with the one already offered.
  std::uint64_t conflicts() const { return conflicts_; }

 private:
  struct Offered {
    std::vector<std::string> names;
    std::set<const KernelInfo*> kernels;  // announced kernels this worker serves
  };
  // The stored definition equal to `spec`, made if there is none yet.
  const KernelInfo* intern(const KernelSpec& spec);

  const KernelRegistry& builtin_;
  std::deque<KernelInfo> announced_;                            // only grows: jobs point into it
  std::map<std::string, const KernelInfo*, std::less<>> live_;  // name -> offered definition
  std::map<const KernelInfo*, std::size_t> offer_count_;        // live workers offering it
  std::unordered_map<std::string, Offered> workers_;
  std::uint64_t conflicts_ = 0;
};

}  // namespace zwq::broker
