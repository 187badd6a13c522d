// zwq-worker: runs one worker in this process, or --count N workers as child processes (and
// with --respawn replaces those that a signal killed).
//
// Exit codes: 0 after a broker shutdown or SIGINT/SIGTERM, 2 on bad options, 1 on a fatal
// set-up error (a --plugin that cannot be loaded, the broker never answered, refused us, ...),
// with the reason on stderr.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "plugin_loader.hpp"
#include "respawn.hpp"
#include "zwq/status.hpp"
#include "zwq/worker.hpp"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitSetup = 1;
constexpr int kExitUsage = 2;
constexpr int kMaxCount = 1024;

// The in-process worker a signal stops.
std::atomic<zwq::Worker*> g_worker{nullptr};
// The children a signal is forwarded to (0: none or already reaped).
std::atomic<pid_t> g_children[kMaxCount];
static_assert(std::atomic<pid_t>::is_always_lock_free);
// Set by a stop signal in the launcher: no more replacements.
std::atomic<bool> g_stopping{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void stop_worker(int) {
  if (zwq::Worker* w = g_worker.load()) w->stop();
}

extern "C" void forward_to_children(int sig) {
  const int saved = errno;
  g_stopping.store(true);
  for (auto& child : g_children) {
    if (const pid_t pid = child.load(); pid > 0) ::kill(pid, sig);
  }
  errno = saved;
}

void on_stop_signals(void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking poll returns at once with EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// Runs one worker until it exits; SIGINT/SIGTERM stop it. `unblock` is the signal mask to
// restore once the handlers are in place (signals that came earlier are delivered then).
int run_worker(const zwq::WorkerOptions& options, const std::shared_ptr<spdlog::logger>& log,
               const sigset_t& unblock) {
  std::unique_ptr<zwq::Worker> worker;
  try {
    worker = std::make_unique<zwq::Worker>(options, log);
  } catch (const zwq::SetupError& e) {
    std::fprintf(stderr, "zwq-worker: %s\n", e.what());
    return kExitUsage;
  }
  g_worker.store(worker.get());
  on_stop_signals(stop_worker);
  sigprocmask(SIG_SETMASK, &unblock, nullptr);
  int rc = kExitOk;
  try {
    (void)worker->run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zwq-worker %s: %s\n", worker->options().worker_id.c_str(), e.what());
    rc = kExitSetup;
  }
  g_worker.store(nullptr);
  return rc;
}

// Forks a child that runs one worker and exits with its code, and records it in
// g_children[slot]. Returns its pid; 0 when the launcher is stopping (nothing started); -1 when
// fork failed. The stop signals stay blocked from the check of g_stopping until the pid is
// recorded, so a SIGTERM is either seen here or forwarded to the new child by the handler, never
// lost; the child unblocks them once its own handler is in place.
pid_t fork_worker(const zwq::WorkerOptions& options, const std::shared_ptr<spdlog::logger>& log,
                  const sigset_t& unblock, int slot) {
  sigset_t stop_signals, before;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, &before);
  if (g_stopping.load()) {
    sigprocmask(SIG_SETMASK, &before, nullptr);
    return 0;
  }
  log->flush();
  std::fflush(nullptr);  // so the child does not write the parent's buffered output again
  const pid_t pid = ::fork();
  if (pid == 0) {
    // A child must not outlive its launcher, even one killed with SIGKILL.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    for (auto& child : g_children) child.store(0);
    const int rc = run_worker(options, log, unblock);
    log->flush();
    std::fflush(nullptr);
    ::_exit(rc);
  }
  if (pid > 0) g_children[slot].store(pid);
  sigprocmask(SIG_SETMASK, &before, nullptr);
  return pid;
}

// Sleeps `d`, or less if a stop signal comes.
void pause_unless_stopping(std::chrono::milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!g_stopping.load() && std::chrono::steady_clock::now() < until) {
    timespec step{0, 20'000'000};
    ::nanosleep(&step, nullptr);
  }
}

// Starts `count` children, each running one worker, forwards SIGINT/SIGTERM to them and waits
// for all. With `respawn`, a child that a signal killed is replaced (RespawnPolicy) unless the
// launcher is stopping. Returns the worst exit code of the children that were not replaced (a
// child killed by a signal counts as 1).
int run_children(int count, bool respawn, const zwq::WorkerOptions& options,
                 const std::shared_ptr<spdlog::logger>& log, const sigset_t& unblock) {
  using Clock = std::chrono::steady_clock;
  std::vector<Clock::time_point> started_at(static_cast<std::size_t>(count));
  int started = 0;
  int worst = kExitOk;
  for (; started < count; ++started) {
    const pid_t pid = fork_worker(options, log, unblock, started);
    if (pid <= 0) {  // (0 cannot happen yet: the stop signals are still blocked, unhandled)
      std::fprintf(stderr, "zwq-worker: fork failed: %s\n", std::strerror(errno));
      forward_to_children(SIGTERM);
      worst = kExitSetup;
      break;
    }
    started_at[static_cast<std::size_t>(started)] = Clock::now();
  }
  on_stop_signals(forward_to_children);
  sigprocmask(SIG_SETMASK, &unblock, nullptr);
  log->info("zwq-worker: started {} worker processes", started);
  zwq::worker::RespawnPolicy policy;
  for (int left = started; left > 0;) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD: nothing left
    }
    int slot = -1;
    for (int i = 0; i < started; ++i) {
      pid_t expected = pid;
      if (g_children[i].compare_exchange_strong(expected, 0)) slot = i;
    }
    const std::string how = zwq::worker::describe_wait_status(status);
    if (respawn && slot >= 0 && !g_stopping.load() &&
        zwq::worker::RespawnPolicy::replaces(status)) {
      const auto lived = std::chrono::duration_cast<std::chrono::milliseconds>(
          Clock::now() - started_at[static_cast<std::size_t>(slot)]);
      const auto delay = policy.delay(lived);
      log->warn("zwq-worker: worker process {} {}; starting another in {} ms", pid, how,
                delay.count());
      pause_unless_stopping(delay);
      const pid_t again = fork_worker(options, log, unblock, slot);
      if (again > 0) {
        started_at[static_cast<std::size_t>(slot)] = Clock::now();
        continue;
      }
      --left;
      if (again == 0) continue;  // stopping: it would have been replaced, so it is no failure
      log->error("zwq-worker: cannot start another worker process: {}", std::strerror(errno));
      worst = std::max(worst, kExitSetup);
      continue;
    }
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == kExitOk)) {
      log->warn("zwq-worker: worker process {} {}", pid, how);
    }
    --left;
    worst = std::max(worst, WIFEXITED(status) ? WEXITSTATUS(status) : kExitSetup);
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"zwq-worker: computes slices of shared-memory arrays for a zwq broker"};
  zwq::WorkerOptions options;
  int count = 1;
  int nice = 0;
  std::string level = "info";
  bool no_populate = false;
  bool respawn = false;
  std::vector<std::string> plugins;
  app.add_option("--broker", options.broker, "the broker's control endpoint")
      ->envname("ZWQ_BROKER");
  app.add_option("--count", count, "worker processes to start (one worker each)")
      ->check(CLI::Range(1, kMaxCount));
  app.add_option("--credit", options.credit, "slices the broker may lease to a worker at once")
      ->check(CLI::Range(1u, 1u << 20))
      ->capture_default_str();
  app.add_option("--worker-id", options.worker_id,
                 "worker id (only with --count 1; default <host>-<pid>-<hex>)");
  app.add_option("--connect-timeout-ms", options.connect_timeout_ms,
                 "how long to wait for the broker at start; 0 = forever")
      ->capture_default_str();
  app.add_option("--log-level", level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_flag(
      "--no-populate", no_populate,
      "do not pre-fault the chunks of dataset mappings that slices reach (MADV_POPULATE_READ)");
  app.add_option("--nice", nice,
                 "add this to the process's nice value (0-19) before starting, as nice -n does, "
                 "so that a broker and clients sharing its cores run first when they wake "
                 "(zwq local uses 10)")
      ->check(CLI::Range(0, 19))
      ->capture_default_str();
  app.add_flag("--respawn", respawn,
               "replace a worker process that a signal killed (kill -9, the OOM killer, a "
               "crashing kernel), as multiprocessing.Pool replaces its workers; zwq local uses it");
  app.add_option("--plugin", plugins,
                 "a kernel plugin (shared library built with zwq_add_kernel_plugin) to load; "
                 "repeatable")
      ->allow_extra_args(false);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if ((count > 1 || respawn) && !options.worker_id.empty()) {
    std::fprintf(
        stderr, "zwq-worker: --worker-id needs --count 1 without --respawn (ids must be unique)\n");
    return kExitUsage;
  }
  if (options.broker.empty()) {
    std::fprintf(stderr, "zwq-worker: no broker address: pass --broker or set ZWQ_BROKER\n");
    return kExitUsage;
  }
  options.populate = !no_populate;
  // Before any thread or child exists: they all inherit it. (nice() may return -1 on success.)
  errno = 0;
  if (nice != 0 && ::nice(nice) == -1 && errno != 0) {
    std::fprintf(stderr, "zwq-worker: cannot add %d to the nice value: %s\n", nice,
                 std::strerror(errno));
    return kExitSetup;
  }
  // Loaded once, before any fork: children share the mapped code.
  auto loaded = zwq::worker::load_plugins(plugins);
  if (!loaded.ok()) {
    std::fprintf(stderr, "zwq-worker: %s\n", loaded.error().message.c_str());
    return kExitSetup;
  }
  const std::shared_ptr<const zwq::worker::PluginSet> plugin_set = std::move(loaded).value();
  options.kernels = std::shared_ptr<const zwq::KernelRegistry>(plugin_set, &plugin_set->registry());

  auto log = spdlog::stderr_color_mt("zwq-worker");
  log->set_level(spdlog::level::from_str(level));

  // Hold SIGINT/SIGTERM until their handlers are installed (in the parent and each child).
  sigset_t stop_signals, previous;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, &previous);
  const int rc = count == 1 && !respawn ? run_worker(options, log, previous)
                                        : run_children(count, respawn, options, log, previous);
  log->flush();
  return rc;
}
