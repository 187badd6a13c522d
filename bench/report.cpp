// Turns the measurements of one run into the targets T1-T7 (each with its measured ratio and a
// verdict), the Markdown table printed and saved as latest.md, latest.json and the plot data.
//
// Parts: 1. lookups into the results  2. the targets  3. the Markdown table  4. files.
#include "report.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "stats.hpp"

namespace zwq::bench {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

// ---- 1. lookups (NaN when a figure was not measured) ----

// j[key], or an empty object when j is not an object or lacks the key (a section that did not
// run): nlohmann's const operator[] must not be asked for a missing key, and value() throws on
// null, while an empty object gives every lookup its default (NaN: not measured).
const json& field(const json& j, const char* key) {
  static const json missing = json::object();
  if (!j.is_object()) return missing;
  const auto it = j.find(key);
  return it == j.end() ? missing : *it;
}

double med(const json& j, const std::initializer_list<const char*> path) {
  const json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return kNaN;
    p = &(*p)[k];
  }
  if (p->is_number()) return p->get<double>();
  if (p->is_object() && p->contains("median")) return (*p)["median"].get<double>();
  return kNaN;
}

// The median of `key` ("gbps", "bw_beside_gbps", "ratio_to_bw_beside") in the sum row of
// `workers` and `slice_bytes`.
double sum_figure(const json& rows, int workers, std::uint64_t slice_bytes, const char* key) {
  if (!rows.is_array()) return kNaN;
  for (const auto& r : rows) {
    if (r.value("workers", 0) == workers &&
        r.value("slice_bytes", std::uint64_t{0}) == slice_bytes && r.contains(key)) {
      return median_of(field(r, key));
    }
  }
  return kNaN;
}

double sum_gbps(const json& rows, int workers, std::uint64_t slice_bytes) {
  return sum_figure(rows, workers, slice_bytes, "gbps");
}

// zwq's sum as a ratio to BW measured beside each job (the median of the pairs' ratios); where
// a run has no such baseline, to the limits section's BW1 or BW2.
double sum_ratio(const json& r, int workers, std::uint64_t slice_bytes) {
  const json& rows = field(field(r, "zwq"), "sum");
  const double beside = sum_figure(rows, workers, slice_bytes, "ratio_to_bw_beside");
  if (!std::isnan(beside)) return beside;
  const double bw = med(field(r, "limits"), {"bw", workers == 1 ? "bw1_gbps" : "bw2_gbps"});
  return sum_gbps(rows, workers, slice_bytes) / bw;
}

// The BW measured beside the jobs of a sum row, else the limits section's.
double sum_baseline(const json& r, int workers, std::uint64_t slice_bytes) {
  const double beside =
      sum_figure(field(field(r, "zwq"), "sum"), workers, slice_bytes, "bw_beside_gbps");
  if (!std::isnan(beside)) return beside;
  return med(field(r, "limits"), {"bw", workers == 1 ? "bw1_gbps" : "bw2_gbps"});
}

double peer_gbps(const json& rows, std::uint64_t slice_bytes) {
  if (!rows.is_array()) return kNaN;
  for (const auto& r : rows) {
    if (r.value("slice_bytes", std::uint64_t{0}) == slice_bytes && r.contains("gbps")) {
      return median_of(field(r, "gbps"));
    }
  }
  return kNaN;
}

double noop_rate(const json& rows, std::uint32_t batch) {
  if (!rows.is_array()) return kNaN;
  for (const auto& r : rows) {
    if (r.value("max_batch", 0u) == batch && r.contains("slices_per_s")) {
      return median_of(field(r, "slices_per_s"));
    }
  }
  return kNaN;
}

json noop_row(const json& rows, std::uint32_t batch) {
  if (rows.is_array()) {
    for (const auto& r : rows) {
      if (r.value("max_batch", 0u) == batch) return r;
    }
  }
  return json::object();
}

// The raw PUSH/PULL ipc rate measured beside a no-op row, else the limits section's.
double noop_baseline(const json& r, std::uint32_t batch) {
  const double beside =
      med(noop_row(field(field(r, "zwq"), "noop"), batch), {"raw_pushpull_ipc_msgs_per_s"});
  return std::isnan(beside) ? med(field(r, "limits"), {"pushpull", "ipc", "msgs_per_s"}) : beside;
}

// The raw REQ/REP ipc p50 measured beside the latency runs, else the limits section's.
double latency_baseline(const json& r) {
  const double beside = med(field(r, "zwq"), {"latency", "raw_reqrep_ipc_p50_us"});
  return std::isnan(beside) ? med(field(r, "limits"), {"reqrep", "ipc", "p50_us"}) : beside;
}

double cold_first(const json& rows, int workers) {
  if (!rows.is_array()) return kNaN;
  for (const auto& r : rows) {
    if (r.value("workers", 0) == workers) return med(r, {"first_pass_s"});
  }
  return kNaN;
}

// ---- 2. targets ----

std::string num(double x, int digits = 3) {
  if (std::isnan(x)) return "—";
  char buf[64];
  const double a = std::abs(x);
  if (a >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.*g M", digits, x / 1e6);
  } else if (a >= 1e4) {
    std::snprintf(buf, sizeof buf, "%.*g k", digits, x / 1e3);
  } else if (a >= 1000 || x == std::floor(x)) {
    std::snprintf(buf, sizeof buf, "%.0f", x);
  } else {
    std::snprintf(buf, sizeof buf, "%.*g", digits, x);
  }
  return buf;
}

std::string ratio_text(double x) {
  if (std::isnan(x)) return "—";
  char buf[32];
  std::snprintf(buf, sizeof buf, x >= 10 ? "%.1f×" : "%.3g×", x);
  return buf;
}

std::string bytes_text(std::uint64_t b) {
  if (b >= kMiB) return std::to_string(b / kMiB) + " MiB";
  return std::to_string(b / 1024) + " KiB";
}

}  // namespace

std::string verdict(const Check& c) {
  if (std::isnan(c.value)) return "NOT MEASURED";
  const bool ok = c.op == ">=" ? c.value >= c.limit : c.value <= c.limit;
  return ok ? "PASS" : "FAIL";
}

namespace {

// A target's value or limit as the targets table shows it: a ratio, but T7's plain numbers.
bool shown_as_ratio(const Check& c) {
  return c.id != "T7";
}
std::string target_text(const Check& c, double x) {
  return shown_as_ratio(c) ? ratio_text(x) : num(x);
}

}  // namespace

std::string value_text(const Check& c) {
  std::string shown = target_text(c, c.value);
  const std::string limit = target_text(c, c.limit);
  for (int digits = 4; digits <= 9 && c.value != c.limit && shown == limit; ++digits) {
    char buf[48];
    std::snprintf(buf, sizeof buf, shown_as_ratio(c) ? "%.*g×" : "%.*g", digits, c.value);
    shown = buf;
  }
  return shown;
}

std::vector<Check> targets(const BenchOptions& o, const json& r) {
  std::vector<Check> out;
  const json& zwq = field(r, "zwq");
  const json& lim = field(r, "limits");
  const json& peers = field(r, "peers");

  // T1: the worst slice size of 1 MiB or more, against BW measured beside each job.
  for (int w : o.worker_counts()) {
    double worst = kNaN;
    std::uint64_t at = 0;
    for (std::uint64_t sb : o.slice_bytes) {
      if (sb < kMiB) continue;
      const double x = sum_ratio(r, w, sb);
      if (std::isnan(worst) || x < worst) worst = x, at = sb;
    }
    out.push_back({"T1",
                   std::to_string(w) + " worker(s), warm sum, slices ≥ 1 MiB, vs BW" +
                       std::to_string(w) + " measured beside each job",
                   worst, ">=", w == 1 ? 0.95 : 0.90,
                   "worst at " + bytes_text(at) + ": " + num(sum_gbps(field(zwq, "sum"), w, at)) +
                       " GB/s vs " + num(sum_baseline(r, w, at)) + " GB/s"});
  }
  // T2: cold first pass vs MAP_POPULATE + warm pass (same thread count as workers).
  for (int w : o.worker_counts()) {
    const double base =
        med(lim, {"cold", w == 1 ? "populate_plus_warm1_s" : "populate_plus_warm2_s"});
    const double first = cold_first(field(zwq, "cold"), w);
    out.push_back({"T2", std::to_string(w) + " worker(s), cold first pass vs populate + warm pass",
                   first / base, "<=", 1.2, num(first) + " s vs " + num(base) + " s"});
  }
  // T3: no-op slices vs raw PUSH/PULL over ipc.
  const double raw = noop_baseline(r, o.default_credit);
  const double raw1 = noop_baseline(r, 1);
  const double batched = noop_rate(field(zwq, "noop"), o.default_credit);
  const double single = noop_rate(field(zwq, "noop"), 1);
  out.push_back({"T3",
                 "no-op slices, batched (up to the credit, " + std::to_string(o.default_credit) +
                     ") vs raw PUSH/PULL ipc",
                 batched / raw, ">=", 0.5, num(batched) + "/s vs " + num(raw) + "/s"});
  out.push_back({"T3", "no-op slices, one per message (--max-batch 1) vs raw PUSH/PULL ipc",
                 single / raw1, ">=", 0.25, num(single) + "/s vs " + num(raw1) + "/s"});
  // T4: single-slice job latency vs raw REQ/REP p50 over ipc.
  const double rtt = latency_baseline(r);
  const double p50 = med(zwq, {"latency", "p50_us"});
  const double p99 = med(zwq, {"latency", "p99_us"});
  out.push_back({"T4", "single-slice job p50 vs raw REQ/REP p50 (ipc)", p50 / rtt, "<=", 2.5,
                 num(p50) + " µs vs " + num(rtt) + " µs"});
  out.push_back({"T4", "single-slice job p99 vs raw REQ/REP p50 (ipc)", p99 / rtt, "<=", 5,
                 num(p99) + " µs vs " + num(rtt) + " µs"});
  // T5: against the Python peers.
  const double z1m = sum_gbps(field(zwq, "sum"), o.workers, kMiB);
  const double seed = peer_gbps(field(peers, "seed_pyzmq"), kMiB);
  const double pool = peer_gbps(field(peers, "pool_imap_unordered"), kMiB);
  out.push_back({"T5", "1 GiB sum, 1 MiB slices, vs the seed's pyzmq program", z1m / seed, ">=", 2,
                 num(z1m) + " GB/s vs " + num(seed) + " GB/s"});
  out.push_back({"T5", "1 GiB sum, 1 MiB slices, vs Pool.imap_unordered", z1m / pool, ">=", 2,
                 num(z1m) + " GB/s vs " + num(pool) + " GB/s"});
  const double pool1 = med(peers, {"pool_noop_chunksize1", "per_s"});
  out.push_back({"T5", "no-op tasks (batched) vs Pool.map chunksize 1", batched / pool1, ">=", 20,
                 num(batched) + "/s vs " + num(pool1) + "/s"});
  const double async = med(zwq, {"async", "jobs_per_s"});
  const double apply = med(peers, {"pool_apply_async", "per_s"});
  out.push_back({"T5", "asynchronous small jobs vs Pool.apply_async", async / apply, ">=", 5,
                 num(async) + " jobs/s vs " + num(apply) + " jobs/s"});
  // T6.
  const json& un = field(r, "uneven");
  out.push_back({"T6", "makespan with one worker 4× slower vs ideal balanced makespan",
                 un.value("measured", false) ? un.value("ratio", kNaN) : kNaN, "<=", 1.15,
                 un.value("measured", false)
                     ? num(med(un, {"both_s"})) + " s vs " + num(un.value("ideal_s", kNaN)) +
                           " s (slow worker measured " + num(un.value("slow_factor", kNaN)) +
                           "× slower)"
                     : un.value("reason", std::string("not run"))});
  // T7.
  const json& bc = field(r, "broker");
  const double idle = med(bc, {"idle", "cpu_percent"});
  out.push_back(
      {"T7", "idle broker CPU with " + std::to_string(o.idle_workers) + " workers (% of a core)",
       idle, "<=", 1.0, num(idle) + " %"});
  const double mem = std::max(med(bc, {"memory", "noop_range_bytes_per_slice"}),
                              med(bc, {"memory", "sum_bytes_per_slice"}));
  out.push_back({"T7",
                 "broker bytes per queued slice at " + num(double(o.queued_slices)) + " queued",
                 mem, "<=", 256, num(mem) + " B (worst of noop_range and sum jobs)"});
  return out;
}

// ---- 3. the Markdown table ----

std::string time_split_table(const BenchOptions& o, const json& r) {
  const json& rows = field(field(r, "zwq"), "sum");
  std::ostringstream md;
  md << "| slice | workers | compute threads ran, share of the job's time | waited for a CPU | "
        "slept | their rate while running ÷ BW beside | zwq ÷ BW beside (T1) "
        "|\n|---|---|---|---|---|---|---|\n";
  bool any = false;
  for (int w : o.worker_counts()) {
    for (std::uint64_t sb : o.slice_bytes) {
      if (sb < kMiB) continue;
      const double share = sum_figure(rows, w, sb, "compute_busy_share");
      if (std::isnan(share)) continue;
      any = true;
      md << "| " << bytes_text(sb) << " | " << w << " | " << num(share) << " | "
         << num(sum_figure(rows, w, sb, "compute_wait_share")) << " | "
         << num(sum_figure(rows, w, sb, "compute_asleep_share")) << " | "
         << ratio_text(sum_figure(rows, w, sb, "compute_rate_ratio_to_bw_beside")) << " | "
         << ratio_text(sum_ratio(r, w, sb)) << " |\n";
    }
  }
  return any ? md.str() : std::string();
}

namespace {

std::string markdown(const BenchOptions& o, const json& r, const std::vector<Check>& checks) {
  std::ostringstream md;
  const json& lim = field(r, "limits");
  const json& zwq = field(r, "zwq");
  const json& peers = field(r, "peers");
  const double bw1 = med(lim, {"bw", "bw1_gbps"});
  const double bw2 = med(lim, {"bw", "bw2_gbps"});
  const double raw = med(lim, {"pushpull", "ipc", "msgs_per_s"});
  const double rtt = med(lim, {"reqrep", "ipc", "p50_us"});

  md << "Machine: " << field(field(r, "meta"), "machine").value("line", std::string()) << "  \n";
  md << "Run: " << field(r, "meta").value("date", std::string()) << ", " << o.runs
     << " run(s) per figure (median; min–max in latest.json), array " << bytes_text(o.array_bytes)
     << " f32, " << o.workers << " workers max at nice +" << o.worker_nice;
  if (!o.broker_args.empty()) {
    md << ", every zwq-broker with";
    for (const std::string& a : o.broker_args) md << " `" << a << "`";
  }
  md << (o.quick ? ", QUICK MODE" : "") << "  \n";
  md << "Command: `" << o.command << "`" << (o.revision.empty() ? "" : ", revision " + o.revision)
     << "  \nLoad average at start / end: "
     << field(r, "meta").value("load_at_start", std::string()) << " / "
     << field(r, "meta").value("load_at_end", std::string()) << "\n\n";

  md << "### Limits (our own code, same run)\n\n| figure | ipc | tcp (127.0.0.1) "
        "|\n|---|---|---|\n";
  md << "| raw PUSH/PULL, 32-byte messages | " << num(raw) << " msg/s | "
     << num(med(lim, {"pushpull", "tcp", "msgs_per_s"})) << " msg/s |\n";
  md << "| raw REQ/REP round trip p50 | " << num(rtt) << " µs | "
     << num(med(lim, {"reqrep", "tcp", "p50_us"})) << " µs |\n";
  md << "| raw REQ/REP round trip p99 | " << num(med(lim, {"reqrep", "ipc", "p99_us"})) << " µs | "
     << num(med(lim, {"reqrep", "tcp", "p99_us"})) << " µs |\n\n";
  md << "| in-process sum (zwq's kernel) | 1 thread | 2 threads |\n|---|---|---|\n";
  md << "| warm /dev/shm mapping: BW1, BW2 (best in-process slice size of 256 KiB–64 MiB) | "
     << num(bw1) << " GB/s | " << num(bw2) << " GB/s |\n";
  md << "| fresh file: MAP_POPULATE | " << num(med(lim, {"cold", "populate_s"}))
     << " s | (same) |\n";
  md << "| fresh file: MAP_POPULATE + warm pass | "
     << num(med(lim, {"cold", "populate_plus_warm1_s"})) << " s | "
     << num(med(lim, {"cold", "populate_plus_warm2_s"})) << " s |\n";
  md << "| fresh file: first pass, plain mmap | " << num(med(lim, {"cold", "first_touch1_s"}))
     << " s | " << num(med(lim, {"cold", "first_touch2_s"})) << " s |\n\n";

  md << "### Sum of the array (GB/s, 1 GB = 10^9 bytes)\n\n";
  md << "BW1 and BW2 beside: an in-process pass (4 MiB slices) right before each zwq job, with as "
        "many threads as workers; the ratio is the median of the pairs' ratios.\n\n";
  md << "| slice | zwq 1 worker | BW1 beside | ratio | zwq " << o.workers << " workers | BW"
     << o.workers
     << " beside | ratio | seed pyzmq | Pool imap_unordered | zwq÷seed | zwq÷Pool "
        "|\n|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (std::uint64_t sb : o.slice_bytes) {
    const double z1 = sum_gbps(field(zwq, "sum"), 1, sb),
                 zn = sum_gbps(field(zwq, "sum"), o.workers, sb);
    const double s = peer_gbps(field(peers, "seed_pyzmq"), sb),
                 p = peer_gbps(field(peers, "pool_imap_unordered"), sb);
    md << "| " << bytes_text(sb) << " | " << num(z1) << " | " << num(sum_baseline(r, 1, sb))
       << " | " << ratio_text(sum_ratio(r, 1, sb)) << " | " << num(zn) << " | "
       << num(sum_baseline(r, o.workers, sb)) << " | " << ratio_text(sum_ratio(r, o.workers, sb))
       << " | " << num(s) << " | " << num(p) << " | " << ratio_text(zn / s) << " | "
       << ratio_text(zn / p) << " |\n";
  }
  if (const std::string split = time_split_table(o, r); !split.empty()) {
    md << "\nWhere a job's time goes (1 MiB slices and up): the workers' compute threads' time on "
          "a CPU during each job and their time runnable but waiting for one (the two clocks of "
          "`/proc/PID/task/TID/schedstat`), as shares of the job's wall time; the rest they "
          "slept (before the submit reached them, after their last Results went out, or "
          "waiting for Tasks); and the rate they read at while on a CPU against the same BW "
          "beside. The ratio is about the first share times that rate (medians of the "
          "jobs).\n\n"
       << split;
  }
  md << "\n| cold first pass (1 MiB slices) | zwq | MAP_POPULATE + warm pass | ratio "
        "|\n|---|---|---|---|\n";
  for (int w : o.worker_counts()) {
    const double first = cold_first(field(zwq, "cold"), w);
    const double base =
        med(lim, {"cold", w == 1 ? "populate_plus_warm1_s" : "populate_plus_warm2_s"});
    md << "| " << w << " worker(s) | " << num(first) << " s | " << num(base) << " s | "
       << ratio_text(first / base) << " |\n";
  }

  md << "\n### No-op slices end to end (one job of " << num(double(o.noop_slices)) << " slices, "
     << o.workers << " workers, ipc)\n\n"
     << "| most slices per Tasks message (`--max-batch`; worker credit " << o.default_credit
     << ") | slices/s | raw PUSH/PULL ipc, measured beside it | ratio | broker CPU µs/slice | "
        "workers CPU µs/slice | context switches/slice |\n|---|---|---|---|---|---|---|\n";
  for (std::uint32_t c : o.batches) {
    const double x = noop_rate(field(zwq, "noop"), c);
    const json row = noop_row(field(zwq, "noop"), c);
    const double base = noop_baseline(r, c);
    md << "| " << c << (c == o.default_credit ? " (default: the whole batch)" : "")
       << (c == 1 ? " (one slice per message)" : "") << " | " << num(x) << " | " << num(base)
       << " | " << ratio_text(x / base) << " | " << num(med(row, {"broker_cpu_us_per_slice"}))
       << " | " << num(med(row, {"workers_cpu_us_per_slice"})) << " | "
       << num(med(row, {"broker_switches_per_slice"}) + med(row, {"workers_switches_per_slice"}))
       << " |\n";
  }
  const double pool1 = med(peers, {"pool_noop_chunksize1", "per_s"});
  const double poold = med(peers, {"pool_noop_default", "per_s"});
  md << "| Pool.map no-op, chunksize 1 | " << num(pool1) << " | " << num(raw) << " (limits) | "
     << ratio_text(pool1 / raw) << " | | | |\n";
  md << "| Pool.map no-op, default chunksize | " << num(poold) << " | " << num(raw)
     << " (limits) | " << ratio_text(poold / raw) << " | | | |\n";

  md << "\n### Jobs\n\n| figure | zwq | baseline | ratio |\n|---|---|---|---|\n";
  const double rtt_beside = latency_baseline(r);
  const double p50 = med(zwq, {"latency", "p50_us"}), p99 = med(zwq, {"latency", "p99_us"});
  md << "| single-slice job, submit→result, p50 | " << num(p50)
     << " µs | raw REQ/REP ipc p50, measured beside it: " << num(rtt_beside) << " µs | "
     << ratio_text(p50 / rtt_beside) << " |\n";
  md << "| single-slice job, submit→result, p99 | " << num(p99)
     << " µs | raw REQ/REP ipc p50, measured beside it: " << num(rtt_beside) << " µs | "
     << ratio_text(p99 / rtt_beside) << " |\n";
  md << "| (breakdown) raw REQ/REP ipc p99, measured beside it | "
     << num(med(zwq, {"latency", "raw_reqrep_ipc_p99_us"})) << " µs | | |\n";
  const double ctl = med(zwq, {"latency", "control_rtt_p50_us"});
  md << "| (breakdown) one control round trip via the broker (WorkersReq), p50 | " << num(ctl)
     << " µs | raw REQ/REP ipc p50 " << num(rtt_beside) << " µs | " << ratio_text(ctl / rtt_beside)
     << " |\n";
  const double async = med(zwq, {"async", "jobs_per_s"});
  const double apply = med(peers, {"pool_apply_async", "per_s"});
  md << "| " << num(double(o.async_jobs)) << " small jobs, async from one client | " << num(async)
     << " jobs/s | Pool.apply_async " << num(apply) << " jobs/s | " << ratio_text(async / apply)
     << " |\n";

  const json& un = field(r, "uneven");
  const json& bc = field(r, "broker");
  md << "\n### Broker cost and uneven workers\n\n| figure | value |\n|---|---|\n";
  if (un.value("measured", false)) {
    md << "| T6: fast worker alone / slow worker alone / both | " << num(med(un, {"fast_alone_s"}))
       << " s / " << num(med(un, {"slow_alone_s"})) << " s / " << num(med(un, {"both_s"}))
       << " s |\n";
    md << "| T6: ideal balanced makespan, ratio | " << num(un.value("ideal_s", kNaN)) << " s, "
       << ratio_text(un.value("ratio", kNaN)) << " |\n";
  } else {
    md << "| T6 | not measured: " << un.value("reason", std::string("not run")) << " |\n";
  }
  md << "| T7: idle broker CPU, " << med(bc, {"idle", "workers"}) << " workers | "
     << num(med(bc, {"idle", "cpu_percent"})) << " % of a core |\n";
  md << "| T7: broker RSS per queued slice (noop_range / sum job) | "
     << num(med(bc, {"memory", "noop_range_bytes_per_slice"})) << " B / "
     << num(med(bc, {"memory", "sum_bytes_per_slice"})) << " B |\n";

  const json& fs = field(field(r, "fsum"), "rows");
  if (fs.is_array() && !fs.empty()) {
    md << "\n### The exact kernels (`fsum`, `fdot`) against `sum` and `dot`, in process, one "
          "thread, 1 MiB slices\n\n"
          "| data | plain | exact | exact ÷ plain (median of the pairs) |\n|---|---|---|---|\n";
    for (const json& row : fs) {
      md << "| " << row.value("what", std::string()) << ", " << bytes_text(row.value("bytes", 0ull))
         << " | `" << row.value("plain", std::string()) << "` " << num(med(row, {"plain_gbps"}))
         << " GB/s | `" << row.value("exact", std::string()) << "` "
         << num(med(row, {"exact_gbps"})) << " GB/s | " << ratio_text(med(row, {"ratio"}))
         << " |\n";
    }
  }

  md << "\n### Targets\n\n| target | check | measured | value | limit | verdict "
        "|\n|---|---|---|---|---|---|\n";
  for (const Check& c : checks) {
    md << "| " << c.id << " | " << c.what << " | " << c.measured << " | " << value_text(c) << " | "
       << c.op << " " << target_text(c, c.limit) << " | **" << verdict(c) << "** |\n";
  }
  return md.str();
}

// ---- 4. files ----

std::string dat(double x) {
  return std::isnan(x) ? "NaN" : std::to_string(x);
}

void write_plot_data(const BenchOptions& o, const json& r) {
  const json& zwq = field(r, "zwq");
  const json& peers = field(r, "peers");
  std::ofstream g(o.out_dir + "/gbps_vs_slice.dat");
  g << "# slice_bytes zwq_1w zwq_" << o.workers << "w bw1 bw2 seed_pyzmq pool_imap_unordered\n";
  const double bw1 = med(field(r, "limits"), {"bw", "bw1_gbps"}),
               bw2 = med(field(r, "limits"), {"bw", "bw2_gbps"});
  for (std::uint64_t sb : o.slice_bytes) {
    g << sb << " " << dat(sum_gbps(field(zwq, "sum"), 1, sb)) << " "
      << dat(sum_gbps(field(zwq, "sum"), o.workers, sb)) << " " << dat(bw1) << " " << dat(bw2)
      << " " << dat(peer_gbps(field(peers, "seed_pyzmq"), sb)) << " "
      << dat(peer_gbps(field(peers, "pool_imap_unordered"), sb)) << "\n";
  }
  std::ofstream s(o.out_dir + "/slices_vs_batch.dat");
  s << "# max_batch zwq_slices_per_s raw_pushpull_ipc pool_chunksize1\n";
  for (std::uint32_t c : o.batches) {
    s << c << " " << dat(noop_rate(field(zwq, "noop"), c)) << " "
      << dat(med(field(r, "limits"), {"pushpull", "ipc", "msgs_per_s"})) << " "
      << dat(med(peers, {"pool_noop_chunksize1", "per_s"})) << "\n";
  }
}

}  // namespace

void write_report(const BenchOptions& o, json& results) {
  const std::vector<Check> checks = targets(o, results);
  json tj = json::array();
  for (const Check& c : checks) {
    tj.push_back({{"id", c.id},
                  {"check", c.what},
                  {"measured", c.measured},
                  {"value", std::isnan(c.value) ? json(nullptr) : json(c.value)},
                  {"op", c.op},
                  {"limit", c.limit},
                  {"verdict", verdict(c)}});
  }
  results["targets"] = tj;
  const std::string md = markdown(o, results, checks);
  std::ofstream(o.out_dir + "/latest.json") << results.dump(2) << "\n";
  std::ofstream(o.out_dir + "/latest.md") << md;
  write_plot_data(o, results);
  std::fputs(md.c_str(), stdout);
}

}  // namespace zwq::bench
