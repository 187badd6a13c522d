// Worker: resolves its options and runs a Connection; the public face of the worker library.
#include "zwq/worker.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include "connection.hpp"
#include "counters.hpp"
#include "stop_signal.hpp"
#include "zwq/dataset.hpp"
#include "zwq/status.hpp"

namespace zwq {
namespace {

std::string default_worker_id() {
  const std::string host = host_name();
  std::random_device random;
  char id[320];
  std::snprintf(id, sizeof id, "%s-%d-%04x", host.c_str(), static_cast<int>(::getpid()),
                static_cast<unsigned>(random() & 0xffffu));
  return id;
}

// A ZeroMQ routing id is 1-255 bytes and must not start with a zero byte; we also keep it
// printable because it appears in logs and the broker's worker list.
bool usable_worker_id(const std::string& id) {
  if (id.empty() || id.size() > 255) return false;
  for (unsigned char c : id) {
    if (c <= ' ' || c >= 0x7f) return false;
  }
  return true;
}

WorkerOptions resolve(WorkerOptions o) {
  if (o.broker.empty()) {
    if (const char* env = std::getenv("ZWQ_BROKER")) o.broker = env;
  }
  if (o.broker.empty()) {
    throw SetupError("no broker address: pass one (--broker) or set ZWQ_BROKER");
  }
  if (o.credit == 0) throw SetupError("credit must be at least 1");
  if (o.worker_id.empty()) o.worker_id = default_worker_id();
  if (!usable_worker_id(o.worker_id)) {
    throw SetupError("worker id '" + o.worker_id + "' must be 1-255 printable characters");
  }
  if (o.max_mappings == 0) o.max_mappings = 1;
  return o;
}

}  // namespace

struct Worker::Impl {
  WorkerOptions options;
  std::shared_ptr<spdlog::logger> logger;
  worker::StopSignal stop;
  worker::Counters counters;
};

Worker::Worker(WorkerOptions options, std::shared_ptr<spdlog::logger> logger)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = resolve(std::move(options));
  impl_->logger = logger ? std::move(logger) : spdlog::default_logger();
}

Worker::~Worker() = default;

Worker::Exit Worker::run() {
  worker::Connection connection(impl_->options, *impl_->logger, impl_->stop, impl_->counters);
  const Exit exit = connection.run();
  const Stats s = stats();
  impl_->logger->info(
      "worker {}: exiting ({}): {} slices done, {} failed, {} dropped, {} bad messages, {} "
      "reconnects",
      impl_->options.worker_id, exit == Exit::kShutdown ? "broker shutdown" : "stopped",
      s.slices_done, s.slice_errors, s.slices_dropped, s.dropped_messages, s.reconnects);
  return exit;
}

void Worker::stop() noexcept {
  impl_->stop.request();
}

Worker::Stats Worker::stats() const {
  const auto& c = impl_->counters;
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  return Stats{get(c.slices_done),      get(c.slice_errors), get(c.slices_dropped),
               get(c.dropped_messages), get(c.results_sent), get(c.reconnects)};
}

const WorkerOptions& Worker::options() const {
  return impl_->options;
}

}  // namespace zwq
