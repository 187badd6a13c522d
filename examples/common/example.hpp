// What the example programs share: their command line, the pool they run on, and a timer.
//
// Every example starts its own local pool (a broker and --workers workers, with the examples'
// kernel plugin loaded), or uses the broker in $ZWQ_BROKER when it is set (whose workers must
// then offer the kernels it names: `zwq local --plugin .../libzwq_seed_kernels.so`).
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <zwq/client.hpp>

namespace zwq::example {

struct Args {
  int workers = 0;  // 0: one per core
  std::string plugin = ZWQ_EXAMPLE_PLUGIN;
};

// Adds --workers and --plugin to `app`.
inline void add_pool_options(CLI::App& app, Args& args) {
  app.add_option("--workers,-w", args.workers,
                 "worker processes of the local pool (0: one per core)");
  app.add_option("--plugin", args.plugin, "the examples' kernel plugin")->capture_default_str();
}

// The pool: $ZWQ_BROKER's broker, or a local one. Throws SetupError / JobError on failure.
inline Pool make_pool(const Args& args, bool needs_plugin) {
  if (std::getenv("ZWQ_BROKER") != nullptr) {
    auto pool = Pool::connect();
    if (!pool.ok()) throw JobError(pool.error());
    return std::move(pool).value();
  }
  LocalClusterOptions options;
  options.workers = args.workers;
  if (needs_plugin) options.plugins = {args.plugin};
  return Pool(options);
}

// Throws JobError for a failed Result (examples keep their happy path short).
template <typename T>
T value_or_throw(Result<T> r) {
  if (!r.ok()) throw JobError(r.error());
  return std::move(r).value();
}

class Timer {
 public:
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// The last line of every example: "time: 0.123 s (4 workers)".
inline void print_time(const Timer& t, Pool& pool) {
  std::printf("time: %.3f s (%llu workers)\n", t.seconds(),
              static_cast<unsigned long long>(pool.workers()));
}

// Runs `body`, turning zwq's exceptions into a message and exit code 1.
template <typename F>
int guarded(F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

}  // namespace zwq::example
