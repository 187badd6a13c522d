// ComputeThread: the worker's second thread. It owns the worker's tasks DEALER: it says Hello,
// takes Welcome and Tasks straight from the broker, computes the slices and sends their Results
// on a results PUSH of its own. The Connection's thread meanwhile keeps talking to the broker on
// its own sockets (BrokerHeartbeat and events in, WorkerHeartbeat and Bye out on the results
// endpoint), so that a long slice never makes a healthy worker look dead; a hung kernel is found
// by the broker's lease instead (docs/RELIABILITY.md). A Tasks message goes from the broker to
// the thread that computes it, and its Results from that thread back: no hop through another
// thread on the way (a wake-up of a thread on the other core costs tens of µs on a VM).
// One Results per Tasks message, or fewer: see OutcomeBatch for the batching within one, and
// process() for short Tasks messages of one job sharing a Results.
//
// The threads talk over one inproc PAIR pipe (a socket lives on one thread). To the compute
// thread:
//   Session [session, tasks, results]  drop everything queued or in hand (it was the last
//                           session's), then open a tasks DEALER and a results PUSH to these
//                           broker endpoints for `session` (both empty: the session ended)
//   Hello [frame]           send this Hello on the tasks socket (see Sync: the Connection sends
//                           it once the thread is free), unless a Welcome came since the session
//                           began or the last Drop (then it is a stale repeat)
//   Cancel [job id]         drop the job's slices: the one in hand ends after its slice, queued
//                           ones are skipped, and so are its Tasks for a while (kCancelMemory)
//   Drop                    re-registering: finish the slice in hand, send what was computed,
//                           drop the rest and everything queued (the broker requeued it all),
//                           and every Tasks message until the next Welcome
//   Stop                    finish the slice in hand, send what was computed and a Bye (if
//                           welcomed), then exit
//   Sync [token]            answered with Synced once everything sent before it is done or
//                           dropped: the Connection registers (Hello) only then, so that the
//                           broker never leases slices to a worker still stuck in old work
// and back:
//   Welcome [session, frame]  the broker's Welcome, as it came on that session's tasks socket
//                             (the Connection adopts its heartbeat numbers unless its session
//                             has ended since; the thread takes Tasks of its epoch from now on)
//   Lost [session]            the session cannot deliver results (the broker takes none,
//                             kResultsHwm queued, or an endpoint is unusable): it is lost
//   Synced [token]            see Sync
//   Stopped [said bye]        the thread is about to exit; "1": it sent the Bye itself, on its
//                             results socket behind its last Results (it was welcomed)
//
// Thread safety: the public methods are for the Connection's thread only; the compute thread
// has its own sockets (its end of the pipe, the tasks DEALER, the results PUSH) and touches
// nothing else of the Connection's but the Executor (whose mappings it alone uses), the
// counters (atomics), the count of commands sent (an atomic: it reads the pipe only when that
// moved) and the logger (thread-safe).
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <zmq.hpp>

#include "counters.hpp"
#include "executor.hpp"
#include "heartbeats.hpp"
#include "outcome_batch.hpp"
#include "tasks_decoder.hpp"
#include "zwq/messages.hpp"

namespace zwq::worker {

class ComputeThread {
 public:
  // What the compute thread sent back.
  struct Output {
    bool stopped = false;                 // the Stopped message
    bool said_bye = false;                // ... and the thread sent the Bye
    std::optional<std::uint64_t> synced;  // a Synced message and its token
    std::optional<std::uint64_t> lost;    // a Lost message and its session
    std::optional<std::string> welcome;   // a Welcome frame from the broker
    std::uint64_t welcome_session = 0;    // the session whose tasks socket it came on
  };

  // Starts the thread. All references must outlive the object. Throws zmq::error_t if the
  // pipe cannot be made.
  ComputeThread(zmq::context_t& context, Executor& executor, const std::string& worker_id,
                std::uint32_t credit, spdlog::logger& log, Counters& counters);
  // Stops the thread (after the slice in hand) and joins it.
  ~ComputeThread();
  ComputeThread(const ComputeThread&) = delete;
  ComputeThread& operator=(const ComputeThread&) = delete;

  // The Connection's end of the pipe: readable when output is waiting.
  zmq::socket_t& socket() { return pipe_; }
  // Drops what the thread holds of the last session; then session `session` takes Tasks from
  // the broker's `tasks_endpoint` (a DEALER with the worker's id as routing id) and sends
  // Results to its `results_endpoint` (a PUSH). Empty endpoints: the session ended.
  void session(std::uint64_t session, const std::string& tasks_endpoint,
               const std::string& results_endpoint);
  // Sends an encoded Hello on the tasks socket of the current session.
  void hello(const std::string& frame);
  void cancel(const std::string& job_id);
  void drop_queued();
  void sync(std::uint64_t token);
  // Idempotent; nothing may be sent after it.
  void stop();
  // The next output, if one is waiting (never blocks).
  std::optional<Output> receive();

 private:
  struct Queued {
    std::uint64_t session = 0;
    TasksFrame tasks;
  };
  // Whose outcomes the batch holds: what a Results message names.
  struct Owner {
    std::uint64_t session = 0;
    std::uint64_t epoch = 0;
    std::string job_id;
  };
  // Why the Tasks message in hand stopped early.
  enum class Interrupt { kNone, kCancelled, kDropped, kAbandoned, kStopped };

  // The Connection's side: sends a command on the pipe and counts it.
  void command(std::initializer_list<std::string_view> parts);

  void run();
  bool wait_for_input();
  // Reads every command waiting in the pipe.
  void read_commands(TimePoint now);
  // The same, but only when the Connection sent one since the last read (true then): a look at
  // an empty pipe costs libzmq a system call, and a busy thread looks every kCheckEvery.
  bool check_commands(TimePoint now);
  void on_command(std::vector<zmq::message_t>& parts);
  void open_session(std::uint64_t session, const std::string& tasks_endpoint,
                    const std::string& results_endpoint);
  // Reads what the tasks socket holds (a bounded number of frames) into the queue.
  void read_tasks(TimePoint now);
  void on_tasks_frame(const zmq::message_t& frame);
  void accept(TasksFrame t);
  void drop(const char* what, const std::string& why);
  // Computes `q`'s slices; `at` is a clock reading taken just before.
  void process(const Queued& q, TimePoint at);
  // True the first time `job_id` is seen among the last kRecentJobs jobs of multi-slice Tasks.
  bool first_sight(const std::string& job_id);
  static Owner owner_of(const Queued& q);
  static bool same(const Owner& owner, const Queued& q);
  void flush(const Owner& owner, TimePoint now);
  void flush_deferred(TimePoint now);
  // True when the batch may wait for the next queued Tasks message, with at least `queued`
  // messages in the queue, its slices expected to take `took` each (see process()).
  bool may_defer(const Queued& q, std::size_t queued, TimePoint now, Clock::duration took) const;
  void emit(std::uint64_t session, const std::string& frame);
  void report_lost(std::uint64_t session);
  void forget_held_job();
  bool cancelled(const std::string& job_id, TimePoint now);

  Executor& executor_;
  const std::string worker_id_;
  spdlog::logger& log_;
  Counters& counters_;
  zmq::socket_t pipe_;  // the Connection's end
  bool stop_sent_ = false;
  std::atomic<std::uint64_t> commands_sent_{0};  // by the Connection's thread

  // The compute thread's own state.
  zmq::context_t& context_;
  std::string address_;
  std::optional<zmq::socket_t> own_;  // its end of the pipe, used on the thread only
  std::deque<Queued> queue_;
  TasksDecoder decoder_;
  // The last job prepared, kept while Tasks messages of it follow one another without the
  // thread going idle (idle, it forgets it: the next message maps its datasets afresh).
  std::shared_ptr<const JobSpec> prepared_for_;
  std::optional<PreparedJob> prepared_;
  std::map<std::string, TimePoint> cancelled_;  // job id -> when
  std::optional<zmq::socket_t> tasks_;          // from the broker of results_session_
  std::optional<zmq::socket_t> results_;        // to the broker of results_session_
  std::uint64_t results_session_ = 0;
  bool tasks_read_ = false;  // the last Tasks message's end read the tasks socket
  TimePoint last_tasks_read_{};
  TimePoint last_command_check_{};
  std::uint64_t commands_read_ = 0;  // commands_sent_ when the pipe was last read
  bool welcomed_ = false;            // a Welcome came since the session began or Drop
  std::uint64_t epoch_ = 0;          // that Welcome's: Tasks of another epoch are dropped
  // The job of the last Tasks since that Welcome that carried one with a ref: what a Tasks
  // naming that ref alone is for (docs/PROTOCOL.md). Of epoch_, as it is forgotten at a Welcome.
  std::uint64_t held_ref_ = 0;
  std::shared_ptr<const JobSpec> held_job_;
  bool lost_reported_ = false;  // Lost was sent for results_session_
  std::string current_job_;
  Interrupt interrupt_ = Interrupt::kNone;
  bool stopping_ = false;
  OutcomeBatch batch_;
  // Set when the batch holds the outcomes of a short Tasks message whose job's next Tasks
  // message is queued: they go out with that one's (or when anything else comes first).
  std::optional<Owner> deferred_;
  std::uint64_t slowest_us_ = 0;  // in the batch
  static constexpr std::size_t kRecentJobs = 16;
  std::deque<std::string> recent_jobs_;  // of multi-slice Tasks messages, newest last

  std::thread thread_;  // last: started once everything above exists
};

}  // namespace zwq::worker
