// zwq-bench: measures zwq against the limits of this machine (raw ZeroMQ, memory bandwidth) and
// against the Python programs its users would otherwise write, in one run; prints a Markdown
// table and writes latest.json, latest.md and plot data (scripts/bench drives it and plots).
//
//   zwq-bench [--quick] [--runs N] [--only limits,bw,...] [--python /usr/bin/python3] ...
//   zwq-bench _push|_echo ...     the raw ZeroMQ peer processes (internal)
#include <sys/utsname.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>

#include "bench_array.hpp"
#include "process.hpp"
#include "sections.hpp"
#include "stats.hpp"

namespace zwq::bench {
namespace {

constexpr std::uint64_t KiB = 1024, MiB = KiB * KiB;

void apply_mode(BenchOptions& o, int runs, std::uint64_t array_mib) {
  o.slice_bytes = {4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 16 * MiB, 64 * MiB};
  o.batches = {1, 4, 16, 64, 256, 1024, 4096};
  if (o.quick) {
    o.runs = 1;
    o.array_bytes = 64 * MiB;
    o.noop_slices = 20000;
    o.pushpull_messages = 200000;
    o.reqrep_samples = 2000;
    o.latency_samples = 500;
    o.async_jobs = 5000;
    o.idle_workers = 20;
    o.idle_seconds = 1;
    o.queued_slices = 100000;
    o.pool_noop_tasks = 20000;
    o.job_timeout_s = 60;
  }
  if (runs > 0) o.runs = runs;
  if (array_mib > 0) o.array_bytes = array_mib * MiB;
  std::erase_if(o.slice_bytes, [&](std::uint64_t s) { return s > o.array_bytes; });
}

std::string machine_line() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  utsname u{};
  ::uname(&u);
  return model + ", " + std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)) + " cores, Linux " +
         u.release + " " + u.machine;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string now_text() {
  const std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&t));
  return buf;
}

// Runs one section; a failure is recorded in the results instead of ending the run.
// The load average before each section goes into the results, so a noisy run shows.
json g_section_load = json::array();

void section(const BenchOptions& o, const std::string& name, json& slot,
             const std::function<json()>& body) {
  if (!o.wants(name)) return;
  std::fprintf(stderr, "zwq-bench: %s (load %s)\n", name.c_str(), load_average().c_str());
  g_section_load.push_back({{"section", name}, {"load", load_average()}});
  Stopwatch clock;
  try {
    slot = body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zwq-bench: %s failed: %s\n", name.c_str(), e.what());
    slot = json{{"error", e.what()}};
  }
  std::fprintf(stderr, "zwq-bench: %s took %.1f s\n", name.c_str(), clock.seconds());
}

int run(BenchOptions& o) {
  // Made first: a report written into a directory that does not exist would be lost silently.
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) throw std::runtime_error("cannot create " + o.out_dir + ": " + ec.message());
  install_signal_cleanup();
  json r;
  r["meta"] = {{"date", now_text()},
               {"machine", {{"line", machine_line()}, {"cores", ::sysconf(_SC_NPROCESSORS_ONLN)}}},
               {"load_at_start", load_average()},
               {"command", o.command},
               {"revision", o.revision},
               {"quick", o.quick},
               {"runs", o.runs},
               {"array_bytes", o.array_bytes},
               {"workers", o.workers},
               {"worker_nice", o.worker_nice},
               {"broker_args", o.broker_args},
               {"gb", "1e9 bytes"}};
  Stopwatch total;
  section(o, "limits", r["limits"], [&] { return run_zmq_limits(o); });
  if (r["limits"].is_null()) r["limits"] = json::object();

  // The array every sum reads: zwq's workers, the in-process baseline and the Python peers.
  {
    BenchArray<float> array("array", o.array_elems());
    const SharedArray<float>& x = array.array();
    fill_pattern(x.data(), x.size());
    const double expected = pattern_sum(x.size());
    section(o, "bw", r["limits"]["bw"], [&] { return run_bandwidth(o, x); });
    section(o, "fsum", r["fsum"], [&] { return run_fsum(o, x); });
    section(o, "cold", r["limits"]["cold"], [&] { return run_cold_baseline(o); });
    section(o, "sum", r["zwq"]["sum"], [&] { return run_zwq_sum(o, x, expected); });
    section(o, "cold", r["zwq"]["cold"], [&] { return run_zwq_cold(o); });
    section(o, "peers", r["peers"], [&] { return run_peers(o, array.path()); });
  }
  section(o, "noop", r["zwq"]["noop"], [&] { return run_zwq_noop(o); });
  section(o, "latency", r["zwq"]["latency"], [&] { return run_zwq_latency(o); });
  section(o, "async", r["zwq"]["async"], [&] { return run_zwq_async(o); });
  section(o, "uneven", r["uneven"], [&] { return run_zwq_uneven(o); });
  section(o, "broker", r["broker"], [&] { return run_broker_cost(o); });
  r["meta"]["load_at_end"] = load_average();
  r["meta"]["load_by_section"] = g_section_load;
  r["meta"]["seconds"] = total.seconds();
  for (const char* k : {"zwq", "peers", "uneven", "broker", "fsum"}) {
    if (r[k].is_null()) r[k] = json::object();
  }
  write_report(o, r);
  std::fprintf(stderr, "zwq-bench: done in %.0f s; results in %s/latest.json\n", total.seconds(),
               o.out_dir.c_str());
  return 0;
}

}  // namespace
}  // namespace zwq::bench

int main(int argc, char** argv) {
  using namespace zwq::bench;
  BenchOptions o;
  int runs = 0;
  std::uint64_t array_mib = 0;
  std::string only;
  std::string endpoint;
  std::uint64_t count = 0;
  std::size_t size = 32;

  CLI::App app{"zwq-bench: zwq against raw ZeroMQ, memory bandwidth and the Python peers"};
  app.add_flag("--quick", o.quick, "smoke mode: 64 MiB array, 1 run each, small counts");
  app.add_option("--runs", runs, "runs per figure (default 5; 1 with --quick)")
      ->check(CLI::Range(1, 100));
  app.add_option("--array-mib", array_mib, "array size in MiB (default 1024; 64 with --quick)")
      ->check(CLI::Range(1, 16384));
  app.add_option("--workers", o.workers, "most workers (the targets are defined for 2 cores)")
      ->check(CLI::Range(1, 2))
      ->capture_default_str();
  app.add_option("--worker-nice", o.worker_nice,
                 "zwq-worker --nice of the workers zwq-bench starts (0-19; 10 as zwq local)")
      ->check(CLI::Range(0, 19))
      ->capture_default_str();
  app.add_option("--broker-arg", o.broker_args,
                 "one more zwq-broker argument for every broker the bench starts, as one word "
                 "(--broker-arg=--pipeline-depth=8); repeatable");
  app.add_option("--bin-dir", o.bin_dir,
                 "where zwq-broker and zwq-worker are (default: beside us)");
  app.add_option("--python", o.python, "Python 3 with numpy and pyzmq for the peers (none: skip)");
  app.add_option("--peers-dir", o.peers_dir, "the bench/peers directory");
  app.add_option("--out", o.out_dir, "output directory (latest.json, latest.md, *.dat)")
      ->required();
  app.add_option(
      "--only", only,
      "comma-separated sections: limits,bw,fsum,cold,sum,peers,noop,latency,async,uneven,broker");
  app.add_option("--command", o.command, "the command line to record in the report");
  app.add_option("--revision", o.revision, "the source revision to record in the report");
  auto* push = app.add_subcommand("_push", "(internal) raw PUSH peer");
  auto* echo = app.add_subcommand("_echo", "(internal) raw REP peer");
  for (auto* sub : {push, echo}) {
    sub->group("");
    sub->add_option("--endpoint", endpoint)->required();
    sub->add_option("--count", count)->required();
  }
  push->add_option("--size", size);
  // The internal peers do not need --out.
  if (argc > 1 && (std::string(argv[1]) == "_push" || std::string(argv[1]) == "_echo")) {
    app.get_option("--out")->required(false);
  }
  CLI11_PARSE(app, argc, argv);
  if (push->parsed()) return peer_push(endpoint, count, size);
  if (echo->parsed()) return peer_echo(endpoint, count);

  apply_mode(o, runs, array_mib);
  std::stringstream ss(only);
  for (std::string s; std::getline(ss, s, ',');) {
    if (!s.empty()) o.sections.insert(s);
  }
  if (o.bin_dir.empty()) o.bin_dir = self_dir();
  if (o.command.empty()) {
    for (int i = 0; i < argc; ++i) o.command += (i ? " " : "") + std::string(argv[i]);
  }
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zwq-bench: %s\n", e.what());
    return 1;
  }
}
