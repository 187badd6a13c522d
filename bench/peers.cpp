// The Python peers (T5), run as child processes on the same array and slice sizes as zwq.
// Each prints one JSON object; see bench/peers/common.py.
#include <cstdio>
#include <stdexcept>

#include "process.hpp"
#include "sections.hpp"
#include "stats.hpp"

namespace zwq::bench {

namespace {

using std::chrono::milliseconds;

struct PeerRun {
  json result;  // what the peer printed (with "seconds"), or {"error": ...}
  bool ok = false;
};

// Runs `python script args...` and parses its last output line, within a time bound.
PeerRun run_peer(const BenchOptions& o, const std::string& script, std::vector<std::string> args) {
  args.insert(args.begin(), o.peers_dir + "/" + script);
  PeerRun out;
  try {
    Child child = spawn_child(o.python, args, Output::kCapture);
    const double budget_s = o.job_timeout_s * (o.runs + 1);
    const std::string text =
        child.read_all(milliseconds(static_cast<std::int64_t>(budget_s * 1000)));
    (void)child.wait_until(std::chrono::steady_clock::now() + milliseconds(10000));
    const auto code = child.exit_status();
    const auto nl = text.find_last_of('\n', text.size() >= 2 ? text.size() - 2 : 0);
    const std::string last = nl == std::string::npos ? text : text.substr(nl + 1);
    if (code != 0 || last.empty()) {
      out.result = {{"error", script + " failed (exit " + std::to_string(code.value_or(-1)) + ")"}};
      return out;
    }
    out.result = json::parse(last);
    out.ok = true;
  } catch (const std::exception& e) {
    out.result = {{"error", script + ": " + e.what()}};
  }
  return out;
}

json rates(const json& peer, double units) {
  std::vector<double> r;
  for (double s : peer["seconds"]) r.push_back(units / s);
  return to_json(summarize(r));
}

json sum_sweep(const BenchOptions& o, const std::string& script, const std::string& path) {
  json rows = json::array();
  const double bytes = static_cast<double>(o.array_bytes);
  for (std::uint64_t sb : o.slice_bytes) {
    PeerRun p = run_peer(o, script,
                         {"--array", path, "--slice-elems", std::to_string(sb / 4), "--workers",
                          std::to_string(o.workers), "--runs", std::to_string(o.runs)});
    json row{{"slice_bytes", sb}, {"workers", o.workers}};
    if (p.ok) {
      row["gbps"] = rates(p.result, bytes / 1e9);
      std::fprintf(stderr, "  %s, %8llu B slices: %.2f GB/s\n", script.c_str(),
                   static_cast<unsigned long long>(sb), median_of(row["gbps"]));
    } else {
      row["error"] = p.result["error"];
      std::fprintf(stderr, "  %s: %s\n", script.c_str(), p.result["error"].dump().c_str());
    }
    rows.push_back(row);
  }
  return rows;
}

json rate_row(const BenchOptions& o, const std::string& script, std::vector<std::string> args,
              double units, const char* what) {
  args.insert(args.end(),
              {"--workers", std::to_string(o.workers), "--runs", std::to_string(o.runs)});
  PeerRun p = run_peer(o, script, args);
  if (!p.ok) return p.result;
  json row = p.result;
  row["per_s"] = rates(p.result, units);
  std::fprintf(stderr, "  %s %s: %.0f /s\n", script.c_str(), what, median_of(row["per_s"]));
  return row;
}

}  // namespace

json run_peers(const BenchOptions& o, const std::string& array_path) {
  if (o.python.empty()) return {{"skipped", "no Python interpreter given (--python)"}};
  PeerRun check = run_peer(o, "check.py", {});
  if (!check.ok) return {{"skipped", "python3 with numpy and pyzmq is not available"}};
  json out{{"versions", check.result}};
  out["seed_pyzmq"] = sum_sweep(o, "seed_sumslice.py", array_path);
  out["pool_imap_unordered"] = sum_sweep(o, "pool_sum.py", array_path);
  const double chunk1 = static_cast<double>(o.pool_noop_tasks);
  const double dflt = static_cast<double>(o.noop_slices);
  out["pool_noop_chunksize1"] = rate_row(
      o, "pool_noop.py", {"--tasks", std::to_string(o.pool_noop_tasks), "--chunksize", "1"}, chunk1,
      "chunksize 1");
  out["pool_noop_default"] =
      rate_row(o, "pool_noop.py", {"--tasks", std::to_string(o.noop_slices), "--chunksize", "0"},
               dflt, "default chunksize");
  out["pool_apply_async"] = rate_row(o, "pool_async.py", {"--jobs", std::to_string(o.async_jobs)},
                                     static_cast<double>(o.async_jobs), "apply_async");
  return out;
}

}  // namespace zwq::bench
