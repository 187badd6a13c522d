// Server: the broker's poll loop. It owns the four sockets and moves bytes between them and the
// socket-free Scheduler (jobs, workers, leases) and HeldReplies (deferred Wait/Fetch replies),
// and drives the Journal (when there is one) and the drain on stop().
//
// Thread safety: see zwq::Broker — construct anywhere, run() on one thread, stop() from anywhere
// (including a signal handler).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>
#include <zmq.hpp>

#include "endpoints.hpp"
#include "held_replies.hpp"
#include "journal.hpp"
#include "register_asks.hpp"
#include "scheduler.hpp"
#include "time.hpp"
#include "zmq_io.hpp"
#include "zwq/broker.hpp"
#include "zwq/codec.hpp"

namespace spdlog {
class logger;
}

namespace zwq::broker {

// Messages one endpoint received and could not use.
struct EndpointCounters {
  std::uint64_t received = 0;  // messages read
  std::uint64_t bad = 0;       // undecodable, wrong type for the endpoint
  std::uint64_t dropped = 0;   // wrong envelope, unknown worker, stale epoch, refused Hello
  std::uint64_t send_failed = 0;
};

class Server {
 public:
  // Binds everything (throws SetupError). `logger` may be null.
  Server(const BrokerOptions& options, std::shared_ptr<spdlog::logger> logger);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  const BrokerEndpoints& endpoints() const { return endpoints_; }
  std::uint64_t epoch() const { return epoch_; }
  void run();
  // The first call drains (see BrokerOptions::drain_ms), the second stops at once.
  void stop() noexcept { stop_.fetch_add(1, std::memory_order_relaxed); }

 private:
  // loop
  std::chrono::milliseconds poll_timeout(TimePoint now) const;
  void drain_results(TimePoint now);
  void on_results(msg::Results& m, TimePoint now);
  void drain_tasks(TimePoint now);
  void drain_control(TimePoint now);
  // Reads the subscriptions the events socket (XPUB) passed up and sets job_events_.
  void drain_subscriptions();
  void after_changes(TimePoint now);
  void on_timers(TimePoint now);
  void dispatch_and_send(TimePoint now);
  bool spin(zmq::pollitem_t* items, int n, TimePoint due);
  bool keep_serving(TimePoint now);
  void open_journal(TimePoint now);
  void rewrite_journal(TimePoint now);
  void close() noexcept;

  // control
  void handle_control(const std::string& identity, std::string_view frame, TimePoint now);
  template <typename M, typename F>
  void serve(const Envelope& env, const ReplyTo& to, F&& handler);
  template <typename M>
  void reply(const ReplyTo& to, const M& m);
  void reply_error(const ReplyTo& to, const Error& e);
  Error refusal_while_draining() const;
  Result<msg::SubmitRep> submit_one(const JobSpec& job, TimePoint now);
  void on_submit(const msg::SubmitReq& m, const ReplyTo& to, TimePoint now);
  void on_submit_many(const msg::SubmitManyReq& m, const ReplyTo& to, TimePoint now);
  void on_wait(const msg::WaitReq& m, const ReplyTo& to, TimePoint now);
  void on_wait_many(msg::WaitManyReq& m, const ReplyTo& to, TimePoint now);
  void on_fetch(const msg::FetchReq& m, const ReplyTo& to, TimePoint now);
  void answer_wait(const HeldWait& w, TimePoint now);
  void answer_wait_many(const HeldWaitMany& w, TimePoint now);
  void answer_fetch(const HeldFetch& f, TimePoint now);
  msg::InfoRep info() const;

  // tasks, and a worker's notes on the results endpoint
  void handle_task(std::string_view identity, std::string_view frame, TimePoint now);
  void on_worker_note(const Envelope& e, TimePoint now);
  void bad_result(const Error& e);
  void send_welcome(const std::string& worker_id, TimePoint now);
  void ask_to_register(const std::string& worker_id, TimePoint now);

  // events
  template <typename M>
  void publish(std::string_view topic, const M& m);
  void publish_job(const Job& job, TimePoint now);

  void log_counters() const;

  BrokerOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  std::uint64_t epoch_ = 0;
  std::string host_;
  std::uint32_t pid_ = 0;

  BindPlan plan_;  // before the sockets: its directory goes after they are closed
  zmq::context_t ctx_;
  zmq::socket_t control_;
  zmq::socket_t tasks_;
  zmq::socket_t results_;
  zmq::socket_t events_;
  BrokerEndpoints endpoints_;

  const KernelRegistry& kernels_;
  Scheduler sched_;
  HeldReplies held_;

  std::unique_ptr<Journal> journal_;  // after sched_: flushed before the jobs it names are gone
  std::uint64_t journal_errors_ = 0;
  std::vector<const Job*> journal_jobs_;  // rewrite_journal()'s scratch
  // The rewrite under way, for the log line that ends it.
  std::uint64_t rewrite_from_ = 0;  // bytes before it
  std::size_t rewrite_jobs_ = 0;
  TimePoint rewrite_started_{};
  std::uint64_t rewrite_loop_ms_ = 0;  // what making its records took the loop

  std::atomic<int> stop_{0};  // stop() calls; async-signal-safe
  bool stop_now_ = false;     // ShutdownReq
  bool draining_ = false;     // refusing new jobs, finishing running ones
  bool submitted_ = false;    // the control request being served made a job
  bool answer_soon_ = false;  // ... one that may finish within spin_us (see drain_control)
  TimePoint drain_deadline_{};
  bool closed_ = false;

  EndpointCounters control_count_, tasks_count_, results_count_;
  std::uint64_t events_send_failed_ = 0;
  std::uint64_t spin_polls_ = 0;     // polls made spinning (--spin-us), logged at close
  std::uint64_t spins_skipped_ = 0;  // submits not followed by a spin: their jobs are long
  // Workers heard from but not registered: when each is sent RegisterAgain.
  RegisterAsks register_asks_;
  // Topics subscribed to on the events endpoint (XPUB passes each up once, and its end once).
  std::set<std::string, std::less<>> subscriptions_;
  // Some subscription takes the job topic: JobEvents are built and sent only then.
  bool job_events_ = false;

  TimePoint next_heartbeat_{};
  // Until then the loop polls without sleeping (BrokerOptions::spin_us).
  TimePoint spin_until_{};
  // Running jobs with results not yet announced, and when each was last announced.
  std::unordered_set<std::string> progress_dirty_;
  std::unordered_map<std::string, TimePoint> last_job_event_;

  // Scratch buffers reused by every iteration.
  Incoming in_;
  Changes changes_;
  std::vector<Dispatch> dispatch_;
  msgpack::sbuffer tasks_frame_;  // dispatch_and_send()'s scratch
  std::vector<bool> sent_;        // dispatch_and_send()'s scratch: which of dispatch_ went
  std::vector<HeldWait> waits_;
  std::vector<HeldFetch> fetches_;
  std::vector<HeldWaitMany> many_;
};

}  // namespace zwq::broker
