// zwq-broker: command line around zwq::Broker. Prints "zwq-broker: control <endpoint>" once
// bound and serves until SIGINT, SIGTERM (the first one drains: see --drain-ms) or a ShutdownReq.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>

#include "zwq/broker.hpp"
#include "zwq/status.hpp"

namespace {

zwq::Broker* g_broker = nullptr;  // for the signal handler only

extern "C" void on_signal(int) {
  if (g_broker != nullptr) g_broker->stop();
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: let a blocking poll return at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  zwq::BrokerOptions options;
  std::string log_level = "info";
  CLI::App app{"zwq-broker: hands slices of shared-memory arrays to zwq workers"};
  app.add_option("--bind", options.bind,
                 "ipc://DIR/control, tcp://HOST:PORT (uses PORT..PORT+3) or tcp://HOST:*; "
                 "default: a private ipc directory");
  app.add_option("--heartbeat-ms", options.heartbeat_ms, "heartbeat interval")
      ->capture_default_str()
      ->check(CLI::Range(1u, 3600000u));
  app.add_option("--liveness", options.liveness, "missed heartbeats before a worker is dead")
      ->capture_default_str()
      ->check(CLI::Range(2u, 1000u));
  app.add_option("--slice-size", options.default_slice_size,
                 "elements per slice for jobs that leave it to the broker")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--batch-target-us", options.batch_target_us,
                 "a batch is about this much of a worker's observed work (µs)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 60000000u));
  app.add_option("--pipeline-depth", options.pipeline_depth,
                 "batches a worker holds at once (2: the next one waits while it computes one)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 64u));
  app.add_option("--max-batch", options.max_batch,
                 "most slices per Tasks message; 0 = the whole batch, 1 = one slice per message")
      ->capture_default_str();
  app.add_option("--lease-floor-ms", options.lease_floor_ms,
                 "shortest lease: a worker holding slices must report at least this often")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400000u));
  app.add_option("--lease-factor", options.lease_factor,
                 "a lease is this many times the slowest slice seen for the job")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--lease-first-ms", options.lease_first_ms,
                 "lease while no slice of the job has finished yet")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400000u));
  app.add_option("--max-lost-attempts", options.max_lost_attempts,
                 "a slice lost with its worker (killed or stalled) this often fails its job; 0 = "
                 "never")
      ->capture_default_str();
  app.add_option("--max-finished-jobs", options.max_finished_jobs,
                 "finished jobs kept for status, wait and fetch; the oldest are forgotten")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000000u));
  app.add_option("--max-finished-slices", options.max_finished_slices,
                 "per-slice results kept of finished jobs for fetch (~33 bytes each); beyond, the "
                 "oldest keep only their result")
      ->capture_default_str();
  app.add_option("--journal", options.journal,
                 "journal directory: unfinished jobs resume and finished results survive a "
                 "restart with the same directory (and the same --bind)");
  app.add_option("--journal-flush-ms", options.journal_flush_ms,
                 "covered slices are written to the journal at least this often")
      ->capture_default_str();
  app.add_option("--journal-rewrite-bytes", options.journal_rewrite_bytes,
                 "rewrite the journal from the jobs held once it is this large and has doubled "
                 "since the last rewrite (0: only at start)")
      ->capture_default_str();
  app.add_option("--journal-fsync-ms", options.journal_fsync_ms,
                 "fdatasync the journal at most this often (0: every write)")
      ->capture_default_str();
  app.add_option("--drain-ms", options.drain_ms,
                 "on SIGTERM/SIGINT, how long running jobs may finish (a second signal stops at "
                 "once)")
      ->capture_default_str();
  app.add_option("--spin-us", options.spin_us,
                 "after a request or a finished job, poll this long before sleeping (0: never)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  app.add_option("--ready-file", options.ready_file,
                 "write the control endpoint to this file once bound");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  CLI11_PARSE(app, argc, argv);

  auto logger = spdlog::stderr_color_mt("zwq-broker");
  logger->set_level(spdlog::level::from_str(log_level));
  try {
    zwq::Broker broker(options, logger);
    g_broker = &broker;
    install_signal_handlers();
    std::cout << "zwq-broker: control " << broker.endpoints().control << std::endl;
    broker.run();
    g_broker = nullptr;
  } catch (const zwq::SetupError& e) {
    std::cerr << "zwq-broker: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
