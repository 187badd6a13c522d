// Connection: the worker's poll loop. It owns the ZeroMQ context, the events SUB and a PUSH for
// WorkerHeartbeat and Bye, and keeps the session alive; the Tasks, the computing and the Results
// are the ComputeThread's (a second thread, so that heartbeats go on during a long slice), the
// timing the Heartbeats'.
//
// Thread safety: run() on one thread only. `stop` and `counters` are shared with other threads.
#pragma once

#include <spdlog/logger.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "compute.hpp"
#include "counters.hpp"
#include "dataset_cache.hpp"
#include "executor.hpp"
#include "heartbeats.hpp"
#include "outcome_batch.hpp"
#include "stop_signal.hpp"
#include "zwq/messages.hpp"
#include "zwq/worker.hpp"

namespace zwq::worker {

class Connection {
 public:
  // `options` must be resolved (broker and worker_id set). All references must outlive run().
  Connection(const WorkerOptions& options, spdlog::logger& log, const StopSignal& stop,
             Counters& counters);

  // See Worker::run(). Throws SetupError on a fatal set-up error; never on peer input.
  Worker::Exit run();

 private:
  // How a session (one registration with one broker incarnation) or a Tasks message ended.
  enum class End { kNone, kLost, kShutdown, kStopped };

  // 1. control
  std::optional<msg::InfoRep> resolve(bool first);
  std::optional<msg::InfoRep> ask_info(Ms wait, bool first);
  // 2. session
  End serve(const msg::InfoRep& info);
  void open_sockets(const msg::InfoRep& info);
  void close_sockets();
  End poll_once();
  // 3. events, and what the compute thread reports
  End drain_events();
  End on_event(const zmq::message_t& topic, const zmq::message_t& frame);
  void on_welcome(const std::string& frame);
  void drop(const char* what, const std::string& why);
  // 4. output
  End keep_alive(TimePoint now);
  void send_hello();
  void register_when_ready();
  void send_to_broker(const std::string& frame);
  End forward_results();
  void finish_and_say_bye();
  void say_bye();

  const WorkerOptions& options_;
  spdlog::logger& log_;
  const StopSignal& stop_;
  Counters& counters_;
  DatasetCache cache_;
  Executor executor_;
  zmq::context_t context_;
  ComputeThread compute_;  // after the executor and context it uses
  bool compute_stopped_ = false;
  bool compute_said_bye_ = false;  // its Stopped said it sent the Bye
  // Hello waits until the compute thread has finished or dropped earlier work (Sync/Synced).
  std::uint64_t sync_sent_ = 0;
  std::uint64_t sync_seen_ = 0;

  // Per session.
  std::optional<zmq::socket_t> to_broker_, events_;  // tasks: the compute thread's
  Heartbeats beats_;
  bool beat_asked_ = false;    // a BrokerHeartbeat came that our WorkerHeartbeat answers
  std::uint64_t session_ = 0;  // counts sessions; the compute thread's results carry theirs
  std::uint64_t epoch_ = 0;    // the broker's, from InfoRep, then Welcome
  bool welcomed_ = false;
  bool session_welcomed_ = false;  // a Welcome came in this session (resets the backoff)
  std::uint64_t corr_ = 0;
};

}  // namespace zwq::worker
