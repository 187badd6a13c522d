// zwq local: a broker and workers on this machine for as long as a command (or Ctrl-C) lasts.
#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <memory>
#include <thread>

#include "child_process.hpp"
#include "cli.hpp"

namespace zwq::cli {

namespace {

// How often the supervising loop looks at signals and children.
constexpr std::chrono::milliseconds kSuperviseEvery{50};
constexpr int kExitNotFound = 127;  // as shells report a missing command

volatile std::sig_atomic_t g_signal = 0;
// Whether the last signal was sent with kill() rather than by the terminal: the terminal already
// delivered it to the whole foreground process group, the command included.
volatile std::sig_atomic_t g_signal_from_kill = 0;

void on_signal(int sig, siginfo_t* info, void*) {
  g_signal = sig;
  g_signal_from_kill = info != nullptr && info->si_code <= 0;  // SI_USER, SI_QUEUE, SI_TKILL
}

void install_handlers() {
  struct sigaction sa {};
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

struct LocalArgs {
  int workers = 0;
  std::string bind;
  std::string log_level = "warn";
  std::string bin_dir;
  double start_timeout = 10;
  int worker_nice = LocalClusterOptions{}.worker_nice;
  std::vector<std::string> plugins;
  std::vector<std::string> command;
};

// Runs the command with ZWQ_BROKER set; passes on signals sent to us with kill().
int run_command(LocalCluster& cluster, const std::vector<std::string>& command) {
  auto path = detail::find_executable(command[0]);
  if (!path) {
    std::cerr << "zwq: command not found: " << command[0] << "\n";
    return kExitNotFound;
  }
  detail::SpawnOptions spawn;
  spawn.env.push_back("ZWQ_BROKER=" + cluster.address());
  const std::vector<std::string> args(command.begin() + 1, command.end());
  auto child = detail::ChildProcess::spawn(*path, args, spawn);
  if (!child.ok()) return report(child.error());
  while (child.value().running()) {
    if (g_signal != 0) {
      if (g_signal_from_kill) child.value().signal(g_signal);
      g_signal = 0;
    }
    std::this_thread::sleep_for(kSuperviseEvery);
  }
  return child.value().exit_status().value_or(kExitFailed);
}

// Serves until a signal arrives or a process of the cluster dies.
int serve(LocalCluster& cluster) {
  std::cout << "ZWQ_BROKER=" << cluster.address() << std::endl;
  std::cerr << "zwq: local broker with " << cluster.workers()
            << " workers is running; Ctrl-C stops it\n";
  while (g_signal == 0) {
    if (Status s = cluster.check(); !s.ok()) {
      if (cluster.shut_down()) {
        std::cerr << "zwq: the local broker was shut down\n";
        return kExitOk;
      }
      return report(s.error());
    }
    std::this_thread::sleep_for(kSuperviseEvery);
  }
  return kExitOk;
}

int run_local(const LocalArgs& a) {
  install_handlers();
  LocalClusterOptions options;
  options.workers = a.workers;
  options.bind = a.bind;
  options.log_level = a.log_level;
  options.bin_dir = a.bin_dir;
  options.plugins = a.plugins;
  options.worker_nice = a.worker_nice;
  options.start_timeout = std::chrono::milliseconds(static_cast<long>(a.start_timeout * 1000));
  std::optional<LocalCluster> cluster;
  try {
    cluster.emplace(options);
  } catch (const SetupError& e) {
    std::cerr << "zwq: cannot start the local cluster: " << e.what() << "\n";
    return kExitFailed;
  }
  if (g_signal != 0) return kExitFailed;  // interrupted while starting
  return a.command.empty() ? serve(*cluster) : run_command(*cluster, a.command);
}

}  // namespace

void add_local_command(CLI::App& app, Commands& commands) {
  auto a = std::make_shared<LocalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "local",
      "Run a broker and workers here; with -- COMMAND, for as long as the command runs "
      "(with ZWQ_BROKER set), else until Ctrl-C");
  cmd->add_option("--workers,-w", a->workers, "Worker count (default: one per core)")
      ->check(kNotNegative);
  cmd->add_option("--bind", a->bind, "Broker address (default: a private ipc:// directory)");
  cmd->add_option("--log-level", a->log_level, "Broker and worker log level (default: warn)");
  cmd->add_option("--bin-dir", a->bin_dir, "Where zwq-broker and zwq-worker are");
  cmd->add_option("--start-timeout", a->start_timeout, "Seconds to wait for start-up");
  cmd->add_option("--worker-nice", a->worker_nice,
                  "Added to the workers' nice value, so that the broker and clients run first on "
                  "shared cores (0-19)")
      ->check(CLI::Range(0, 19))
      ->capture_default_str();
  cmd->add_option("--plugin", a->plugins, "A kernel plugin every worker loads (repeatable)")
      ->allow_extra_args(false);  // one path each, so that `-- COMMAND` stays the command
  cmd->add_option("command", a->command, "Command to run (after --)");
  commands.push_back({cmd, [a] { return run_local(*a); }});
}

}  // namespace zwq::cli
