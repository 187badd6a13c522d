// Worker against a fake broker in the test thread: registration, tasks and results, cancel,
// garbage, a lost or restarted broker, stop and shutdown, over real ipc sockets.
#include "zwq/worker.hpp"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "dataset_cache.hpp"
#include "executor.hpp"
#include "hand_frame.hpp"
#include "shm_file.hpp"
#include "zwq/codec.hpp"

using namespace std::chrono_literals;
using zwq::Worker;
using zwq::WorkerOptions;
namespace msg = zwq::msg;

namespace {

constexpr auto kWait = 10s;  // generous bound on anything the worker should do "soon"

// A broker as the worker sees it: control, tasks, results and events in a private directory.
class FakeBroker {
 public:
  std::uint64_t epoch = 42;
  std::uint32_t heartbeat_ms = 1000;
  std::uint32_t liveness = 10;
  std::string results_override;  // announced instead of the real results endpoint when set

  FakeBroker() {
    char tmpl[] = "/tmp/zwq-worker-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    for (auto* s : {&control_, &tasks_, &results_, &events_}) s->set(zmq::sockopt::linger, 0);
    tasks_.set(zmq::sockopt::router_handover, 1);  // a re-registering worker takes over its id
    tasks_.set(zmq::sockopt::sndhwm, 0);  // a test may queue more Tasks than the default 1000
    control_.bind(address("control"));
    tasks_.bind(address("tasks"));
    results_.bind(address("results"));
    events_.bind(address("events"));
  }
  ~FakeBroker() {
    for (const char* name : {"control", "tasks", "results", "events"}) {
      std::remove((dir_ + "/" + name).c_str());
    }
    ::rmdir(dir_.c_str());
  }

  std::string address(const std::string& name) const { return "ipc://" + dir_ + "/" + name; }

  // Answers one InfoReq; false if none came within kWait.
  bool answer_info() {
    zmq::pollitem_t item{control_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, kWait) == 0) return false;
    std::vector<zmq::message_t> parts = recv_all(control_);
    REQUIRE(parts.size() == 3);
    auto env = zwq::decode_envelope(parts[2].data(), parts[2].size());
    REQUIRE(env.ok());
    REQUIRE(env.value().type == zwq::proto::MsgType::kInfoReq);
    msg::InfoRep rep;
    rep.epoch = epoch;
    rep.control = address("control");
    rep.tasks = address("tasks");
    rep.results = results_override.empty() ? address("results") : results_override;
    rep.events = address("events");
    rep.heartbeat_ms = heartbeat_ms;
    rep.liveness = liveness;
    control_.send(std::move(parts[0]), zmq::send_flags::sndmore);
    control_.send(zmq::message_t(), zmq::send_flags::sndmore);
    control_.send(zmq::buffer(zwq::encode(rep, env.value().corr)), zmq::send_flags::none);
    return true;
  }

  // What a worker sent, on either endpoint: Hello on tasks; Results, WorkerHeartbeat and Bye on
  // results.
  struct FromWorker {
    zwq::proto::MsgType type{};
    std::string frame;
    std::string routing_id;  // tasks endpoint only
  };

  // The next message of type M from a worker within `wait`. Others are skipped, except Results
  // and Bye, which are kept for a later expect() of theirs.
  template <typename M>
  std::optional<M> expect(std::chrono::milliseconds wait = kWait,
                          std::string* routing_id = nullptr) {
    for (auto it = kept_.begin(); it != kept_.end(); ++it) {
      if (it->type != M::kType) continue;
      FromWorker m = std::move(*it);
      kept_.erase(it);
      return decoded<M>(m, routing_id);
    }
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left < 0ms) return std::nullopt;
      auto m = next(left);
      if (!m) return std::nullopt;
      if (m->type == M::kType) return decoded<M>(*m, routing_id);
      keep(std::move(*m));
    }
  }
  std::optional<msg::Results> expect_results(std::chrono::milliseconds wait = kWait) {
    return expect<msg::Results>(wait);
  }

  // The type of the next message from a worker within `wait`, if any (Results and Bye are kept
  // for expect()).
  std::optional<zwq::proto::MsgType> next_type(std::chrono::milliseconds wait) {
    auto m = next(wait);
    if (!m) return std::nullopt;
    const auto type = m->type;
    keep(std::move(*m));
    return type;
  }

  template <typename M>
  void send_tasks(const std::string& worker_id, const M& m) {
    send_tasks_raw(worker_id, zwq::encode(m));
  }
  void send_tasks_raw(const std::string& worker_id, const std::string& frame) {
    send_tasks_frames(worker_id, {frame});
  }
  // One message of several frames, as the broker sends what one dispatch gives a worker.
  void send_tasks_frames(const std::string& worker_id, const std::vector<std::string>& frames) {
    tasks_.send(zmq::buffer(worker_id), zmq::send_flags::sndmore);
    for (std::size_t i = 0; i < frames.size(); ++i) {
      tasks_.send(zmq::buffer(frames[i]),
                  i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  void welcome(const std::string& worker_id) {
    send_tasks(worker_id, msg::Welcome{epoch, heartbeat_ms, liveness});
  }

  void publish_raw(const std::string& topic, const std::string& frame) {
    events_.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    events_.send(zmq::buffer(frame), zmq::send_flags::none);
  }
  template <typename M>
  void publish(const std::string& topic, const M& m) {
    publish_raw(topic, zwq::encode(m));
  }
  void beat() { publish("hb", msg::BrokerHeartbeat{epoch}); }

  // The types of every message from a worker, kept ones first, then in the order the sockets
  // give them, until none comes for `quiet`.
  std::vector<zwq::proto::MsgType> drain(std::chrono::milliseconds quiet) {
    std::vector<zwq::proto::MsgType> types;
    for (const FromWorker& m : kept_) types.push_back(m.type);
    kept_.clear();
    while (auto m = next(quiet)) types.push_back(m->type);
    return types;
  }

 private:
  // One message from either endpoint within `wait`.
  std::optional<FromWorker> next(std::chrono::milliseconds wait) {
    zmq::pollitem_t items[] = {{tasks_.handle(), 0, ZMQ_POLLIN, 0},
                               {results_.handle(), 0, ZMQ_POLLIN, 0}};
    if (zmq::poll(items, 2, wait) == 0) return std::nullopt;
    FromWorker m;
    if (items[0].revents & ZMQ_POLLIN) {
      std::vector<zmq::message_t> parts = recv_all(tasks_);
      REQUIRE(parts.size() == 2);
      m.routing_id = parts[0].to_string();
      m.frame = parts[1].to_string();
    } else {
      std::vector<zmq::message_t> parts = recv_all(results_);
      REQUIRE(parts.size() == 1);
      m.frame = parts[0].to_string();
    }
    auto env = zwq::decode_envelope(m.frame.data(), m.frame.size());
    REQUIRE(env.ok());
    m.type = env.value().type;
    return m;
  }
  void keep(FromWorker m) {
    if (m.type == zwq::proto::MsgType::kResults || m.type == zwq::proto::MsgType::kBye) {
      kept_.push_back(std::move(m));
    }
  }
  template <typename M>
  static std::optional<M> decoded(const FromWorker& m, std::string* routing_id) {
    auto d = zwq::decode<M>(m.frame.data(), m.frame.size());
    REQUIRE(d.ok());
    if (routing_id) *routing_id = m.routing_id;
    return std::move(d).value();
  }

  static std::vector<zmq::message_t> recv_all(zmq::socket_t& s) {
    std::vector<zmq::message_t> parts;
    do {
      parts.emplace_back();
      REQUIRE(s.recv(parts.back()));
    } while (parts.back().more());
    return parts;
  }

  std::string dir_;
  std::deque<FromWorker> kept_;
  zmq::context_t ctx_;
  zmq::socket_t control_{ctx_, zmq::socket_type::router};
  zmq::socket_t tasks_{ctx_, zmq::socket_type::router};
  zmq::socket_t results_{ctx_, zmq::socket_type::pull};
  zmq::socket_t events_{ctx_, zmq::socket_type::pub};
};

std::shared_ptr<spdlog::logger> quiet_logger() {
  auto log = std::make_shared<spdlog::logger>("worker-test",
                                              std::make_shared<spdlog::sinks::null_sink_mt>());
  return log;
}

// A worker running run() on its own thread.
class RunningWorker {
 public:
  RunningWorker(const FakeBroker& broker, std::uint32_t credit = 8)
      : worker_(options(broker, credit), quiet_logger()),
        exit_(std::async(std::launch::async, [this] { return worker_.run(); })) {}
  ~RunningWorker() {
    worker_.stop();
    if (exit_.valid()) exit_.wait();
  }
  Worker& worker() { return worker_; }
  const std::string& id() const { return worker_.options().worker_id; }
  bool finished(std::chrono::milliseconds wait) {
    return exit_.wait_for(wait) == std::future_status::ready;
  }
  Worker::Exit exit() { return exit_.get(); }

 private:
  static WorkerOptions options(const FakeBroker& broker, std::uint32_t credit) {
    WorkerOptions o;
    o.broker = broker.address("control");
    o.credit = credit;
    o.populate = false;
    return o;
  }
  Worker worker_;
  std::future<Worker::Exit> exit_;
};

// Starts a worker and takes it through InfoReq, Hello and Welcome.
void register_worker(FakeBroker& broker, RunningWorker& worker) {
  REQUIRE(broker.answer_info());
  REQUIRE(broker.expect<msg::Hello>());
  broker.welcome(worker.id());
}

// Publishes a ShutdownEvent until the worker exits (a fresh SUB may miss the first one).
bool shut_down(FakeBroker& broker, RunningWorker& worker) {
  for (int i = 0; i < 100; ++i) {
    broker.publish("shutdown", msg::ShutdownEvent{broker.epoch});
    if (worker.finished(100ms)) return true;
  }
  return false;
}

zwq::JobSpec sum_job(const zwq::test::ShmFile& file, std::uint64_t count,
                     std::uint64_t slice_size) {
  zwq::JobSpec job;
  job.job_id = "sum-job";
  job.kernel = "sum";
  job.input = zwq::DatasetRef{file.uri(), zwq::DType::kF32, 0, count};
  job.count = count;
  job.slice_size = slice_size;
  return job;
}

// A Tasks message of `broker`'s epoch: slice 0 (attempt 1) of a sum of `count` elements of
// `file` in one slice.
msg::Tasks one_slice_sum(const FakeBroker& broker, const zwq::test::ShmFile& file,
                         std::uint64_t count) {
  msg::Tasks tasks;
  tasks.epoch = broker.epoch;
  tasks.job = sum_job(file, count, count);
  tasks.runs = {zwq::SliceRun{0, 1, 1}};
  return tasks;
}

template <typename F>
bool eventually(F&& condition) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// A Tasks message of `slices` one-element slices of the sleep kernel, `ms` each, all leased at
// attempt 1.
msg::Tasks sleep_tasks(std::uint64_t epoch, const std::string& job_id, std::int64_t ms,
                       std::uint32_t slices) {
  msg::Tasks tasks;
  tasks.epoch = epoch;
  tasks.job.job_id = job_id;
  tasks.job.kernel = "sleep";
  tasks.job.params.set("ms", ms);
  tasks.job.count = slices;
  tasks.job.slice_size = 1;
  tasks.runs = {zwq::SliceRun{0, slices, 1}};
  return tasks;
}

}  // namespace

TEST_CASE("worker registers with its credit, computes tasks and exits on shutdown", "[worker]") {
  std::vector<float> values(1000);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = 0.5f * static_cast<float>(i);
  zwq::test::ShmFile file("worker-sum");
  file.write(values);
  FakeBroker broker;
  RunningWorker worker(broker, 7);

  REQUIRE(broker.answer_info());
  std::string routing_id;
  const auto hello = broker.expect<msg::Hello>(kWait, &routing_id);
  REQUIRE(hello);
  CHECK(hello->worker_id == worker.id());
  CHECK(routing_id == worker.id());
  CHECK(hello->credit == 7);
  CHECK(hello->pid == static_cast<std::uint32_t>(::getpid()));
  CHECK(std::count(hello->kernels.begin(), hello->kernels.end(), "sum") == 1);
  broker.welcome(worker.id());

  msg::Tasks tasks;
  tasks.epoch = broker.epoch;
  tasks.job = sum_job(file, values.size(), 100);
  tasks.runs = {zwq::SliceRun{0, 4, 1}, zwq::SliceRun{6, 2, 3}};
  broker.send_tasks(worker.id(), tasks);

  zwq::worker::DatasetCache cache;
  zwq::worker::Executor reference(cache);
  const auto expected = reference.prepare(tasks.job);
  std::set<std::uint64_t> seen;
  while (seen.size() < 6) {
    const auto results = broker.expect_results();
    REQUIRE(results);
    CHECK(results->epoch == broker.epoch);
    CHECK(results->worker_id == worker.id());
    CHECK(results->job_id == "sum-job");
    for (const auto& o : results->items) {
      INFO("slice " << o.slice);
      CHECK(o.code == zwq::ErrorCode::kOk);
      CHECK(o.attempt == (o.slice < 6 ? 1u : 3u));
      CHECK(o.partial == expected.run(o.slice, o.attempt).partial);
      CHECK(seen.insert(o.slice).second);
    }
  }
  CHECK(seen == std::set<std::uint64_t>{0, 1, 2, 3, 6, 7});

  REQUIRE(shut_down(broker, worker));
  CHECK(worker.exit() == Worker::Exit::kShutdown);
  CHECK(worker.worker().stats().slices_done == 6);
  CHECK(worker.worker().stats().slice_errors == 0);
}

TEST_CASE("worker reports a failing slice as an error outcome", "[worker]") {
  zwq::test::ShmFile file("worker-missing");  // never written
  FakeBroker broker;
  RunningWorker worker(broker);
  register_worker(broker, worker);

  msg::Tasks tasks;
  tasks.epoch = broker.epoch;
  tasks.job = sum_job(file, 100, 50);
  tasks.runs = {zwq::SliceRun{0, 2, 1}};
  broker.send_tasks(worker.id(), tasks);
  std::size_t outcomes = 0;
  while (outcomes < 2) {
    const auto results = broker.expect_results();
    REQUIRE(results);
    for (const auto& o : results->items) CHECK(o.code == zwq::ErrorCode::kDatasetMissing);
    outcomes += results->items.size();
  }
  CHECK(worker.worker().stats().slice_errors == 2);
}

TEST_CASE("worker stop sends Bye and returns", "[worker]") {
  FakeBroker broker;
  RunningWorker worker(broker);
  register_worker(broker, worker);
  // The first heartbeat shows the Welcome was taken in.
  REQUIRE(broker.expect<msg::WorkerHeartbeat>());

  worker.worker().stop();
  const auto bye = broker.expect<msg::Bye>();
  REQUIRE(bye);
  CHECK(bye->worker_id == worker.id());
  CHECK(bye->epoch == broker.epoch);
  REQUIRE(worker.finished(kWait));
  CHECK(worker.exit() == Worker::Exit::kStopped);
}

TEST_CASE(
    "worker answers a broker heartbeat at once after half an interval of silence, not "
    "an interval after its last message",
    "[worker]") {
  FakeBroker broker;
  broker.heartbeat_ms = 2000;  // on its own the worker would beat 2500 ms after its Hello
  RunningWorker worker(broker);
  REQUIRE(broker.answer_info());
  REQUIRE(broker.expect<msg::Hello>());
  const auto hello_seen = std::chrono::steady_clock::now();
  broker.welcome(worker.id());
  std::this_thread::sleep_for(1100ms);  // past half an interval since the Hello
  const auto beat_sent = std::chrono::steady_clock::now();
  broker.beat();
  std::optional<zwq::proto::MsgType> type;
  do {
    type = broker.next_type(kWait);
  } while (type && *type != zwq::proto::MsgType::kWorkerHeartbeat);
  REQUIRE(type);
  const auto answered = std::chrono::steady_clock::now();
  // Answered soon after the broker's beat, well before the worker's own 2500 ms.
  CHECK(answered - beat_sent < 800ms);
  CHECK(answered - hello_seen < 2300ms);
}

TEST_CASE("worker keeps heartbeating while one slice outlasts the broker's patience", "[worker]") {
  FakeBroker broker;
  broker.heartbeat_ms = 50;
  broker.liveness = 3;  // 150 ms of silence would be death
  RunningWorker worker(broker);
  register_worker(broker, worker);
  REQUIRE(broker.expect<msg::WorkerHeartbeat>());

  const msg::Tasks tasks = sleep_tasks(broker.epoch, "long", 800, 1);
  broker.send_tasks(worker.id(), tasks);

  int beats = 0, hellos = 0;
  std::optional<msg::Results> results;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!results && std::chrono::steady_clock::now() < deadline) {
    broker.beat();
    if (auto type = broker.next_type(25ms)) {
      beats += *type == zwq::proto::MsgType::kWorkerHeartbeat;
      hellos += *type == zwq::proto::MsgType::kHello;
    }
    results = broker.expect_results(1ms);
  }
  REQUIRE(results);
  CHECK(results->items.at(0).code == zwq::ErrorCode::kOk);
  CHECK(results->slowest_us >= 800'000);  // what the broker sizes its lease by
  CHECK(beats >= 8);                      // ~16 intervals of 50 ms passed
  CHECK(hellos == 0);                     // never silent long enough to register again
}

// slowest_us 0 means "not timed" to the broker, which then paces the job by the time between
// reports: for one-slice jobs that is a round trip per slice, and it kept a worker to a few dozen
// of them in flight. A slice shorter than a microsecond reports 1.
// Results.slowest_us 0 means "not timed": the broker then paces the job by the time between
// reports alone, which for one-slice jobs is a round trip per slice, and it kept each worker to a
// few dozen of them in flight. A slice shorter than a microsecond reports 1.
TEST_CASE("worker reports no-op slices as taking 1 µs, not 0 (untimed)", "[worker]") {
  FakeBroker broker;
  RunningWorker worker(broker);
  register_worker(broker, worker);
  // 200 one-slice jobs, alternating so that no two share a Results: most compute in well under
  // a microsecond once the worker is warm.
  constexpr std::uint32_t kJobs = 200;
  msg::Tasks t;
  t.epoch = broker.epoch;
  t.job.kernel = "noop_range";
  t.job.count = kJobs;
  t.job.slice_size = 1;
  for (std::uint32_t i = 0; i < kJobs; ++i) {
    t.job.job_id = i % 2 == 0 ? "even" : "odd";
    t.runs = {zwq::SliceRun{i, 1, 1}};
    broker.send_tasks(worker.id(), t);
  }
  std::uint64_t reported = 0, untimed = 0;
  while (reported < kJobs) {
    const auto results = broker.expect_results();
    REQUIRE(results);
    reported += results->items.size();
    untimed += results->slowest_us == 0;
    CHECK(results->slowest_us < 1'000'000);
  }
  CHECK(reported == kJobs);
  CHECK(untimed == 0);
}

TEST_CASE("worker stop finishes the slice in hand, sends it, then says Bye", "[worker]") {
  FakeBroker broker;
  RunningWorker worker(broker);
  register_worker(broker, worker);
  REQUIRE(broker.expect<msg::WorkerHeartbeat>());

  const msg::Tasks tasks = sleep_tasks(broker.epoch, "slow", 300, 10);
  broker.send_tasks(worker.id(), tasks);
  REQUIRE(broker.expect_results());  // slice 0 done: slice 1 is in hand
  worker.worker().stop();
  const auto last = broker.expect_results();
  REQUIRE(last);
  REQUIRE(last->items.size() == 1);
  CHECK(last->items[0].slice == 1);
  const auto bye = broker.expect<msg::Bye>();
  REQUIRE(bye);
  REQUIRE(worker.finished(kWait));
  CHECK(worker.worker().stats().slices_done == 2);
  CHECK(worker.worker().stats().slices_dropped == 8);  // handed back with the Bye
}

// The broker requeues a leaving worker's slices when its Bye arrives: a Results behind the Bye
// would be discarded and its slices computed again. Results come from the compute thread's
// socket; a Bye from another socket into the same PULL could be read first.
TEST_CASE("worker stop sends its Bye behind every Results, even to a broker that reads late",
          "[worker]") {
  FakeBroker broker;
  RunningWorker worker(broker);
  register_worker(broker, worker);
  REQUIRE(broker.expect<msg::WorkerHeartbeat>());

  broker.send_tasks(worker.id(), sleep_tasks(broker.epoch, "slow", 40, 8));
  // The broker reads nothing meanwhile: the worker's messages queue up at its PULL, as at a
  // busy broker, and it reads them only once the worker has gone.
  REQUIRE(eventually([&] { return worker.worker().stats().slices_done >= 3; }));
  worker.worker().stop();
  REQUIRE(worker.finished(kWait));
  const auto types = broker.drain(300ms);
  const auto bye = std::find(types.begin(), types.end(), zwq::proto::MsgType::kBye);
  REQUIRE(bye != types.end());
  const auto results_before = std::count(types.begin(), bye, zwq::proto::MsgType::kResults);
  const auto results_after = std::count(bye, types.end(), zwq::proto::MsgType::kResults);
  CHECK(results_before >= 2);  // several Results were queued, not one
  CHECK(results_after == 0);
  CHECK(std::count(types.begin(), types.end(), zwq::proto::MsgType::kBye) == 1);
}

// A slice in hand longer than the stop grace (2 s) is not waited for: the worker's own loop
// says Bye at the end of the grace, before that slice's outcome (the broker requeues it).
TEST_CASE("worker stop hands back a slice in hand that outlasts the grace with a Bye before it",
          "[worker]") {
  FakeBroker broker;
  RunningWorker worker(broker);
  register_worker(broker, worker);
  REQUIRE(broker.expect<msg::WorkerHeartbeat>());

  broker.send_tasks(worker.id(), sleep_tasks(broker.epoch, "long", 2300, 2));
  REQUIRE(broker.expect_results(5000ms));  // slice 0 done: slice 1 is in hand, 2.3 s of it
  worker.worker().stop();
  std::optional<zwq::proto::MsgType> type;
  do {
    type = broker.next_type(5000ms);
    REQUIRE(type);
  } while (*type != zwq::proto::MsgType::kBye && *type != zwq::proto::MsgType::kResults);
  CHECK(*type == zwq::proto::MsgType::kBye);  // the Bye first, not slice 1's Results
  REQUIRE(worker.finished(kWait));
}

TEST_CASE("worker computes every Tasks frame of one message and drops a bad frame alone",
          "[worker]") {
  zwq::test::ShmFile file("worker-frames");
  file.write(std::vector<float>(100, 1.0f));
  FakeBroker broker;
  RunningWorker worker(broker);
  register_worker(broker, worker);

  msg::Tasks a = one_slice_sum(broker, file, 100);
  a.job.job_id = "frame-a";
  msg::Tasks b = one_slice_sum(broker, file, 50);
  b.job.job_id = "frame-b";
  broker.send_tasks_frames(worker.id(), {zwq::encode(a), "not msgpack at all", zwq::encode(b)});

  std::map<std::string, double> sums;
  while (sums.size() < 2) {
    const auto results = broker.expect_results();
    REQUIRE(results);
    REQUIRE(results->items.size() == 1);
    sums[results->job_id] = results->items[0].partial.hi;
  }
  CHECK(sums == std::map<std::string, double>{{"frame-a", 100.0}, {"frame-b", 50.0}});
  CHECK(worker.worker().stats().dropped_messages == 1);
  CHECK(worker.worker().stats().slices_done == 2);
}

TEST_CASE("worker drops garbage and stale messages and keeps serving", "[worker]") {
  zwq::test::ShmFile file("worker-garbage");
  file.write(std::vector<float>(100, 1.0f));
  FakeBroker broker;
  RunningWorker worker(broker);
  register_worker(broker, worker);

  const msg::Tasks tasks = one_slice_sum(broker, file, 100);
  broker.send_tasks(worker.id(), tasks);
  REQUIRE(broker.expect_results());  // the worker is up, its subscriptions too

  broker.send_tasks_raw(worker.id(), "not msgpack at all");
  broker.send_tasks_raw(worker.id(), zwq::encode(msg::InfoReq{}));  // wrong socket
  msg::Tasks stale = tasks;
  stale.epoch = broker.epoch + 1;
  broker.send_tasks(worker.id(), stale);
  broker.publish_raw("hb", "\xc1");
  broker.publish_raw("cancel", zwq::encode(msg::BrokerHeartbeat{broker.epoch}));
  // A Tasks message of the right epoch whose job is not a JobSpec: the loop reads only the
  // epoch, the compute thread finds the rest bad and drops it.
  msgpack::sbuffer bad_job;
  msgpack::packer<msgpack::sbuffer> pk(bad_job);
  pk.pack_array(4);
  pk.pack(zwq::proto::kVersion);
  pk.pack(static_cast<int>(zwq::proto::MsgType::kTasks));
  pk.pack(0);
  pk.pack_map(3);
  pk.pack(std::string("epoch"));
  pk.pack(broker.epoch);
  pk.pack(std::string("job"));
  pk.pack(5);
  pk.pack(std::string("runs"));
  pk.pack_array(0);
  broker.send_tasks_raw(worker.id(), std::string(bad_job.data(), bad_job.size()));
  CHECK(eventually([&] { return worker.worker().stats().dropped_messages >= 6; }));

  broker.send_tasks(worker.id(), tasks);
  const auto results = broker.expect_results();
  REQUIRE(results);
  CHECK(results->items.at(0).partial.hi == 100.0);
  CHECK(worker.worker().stats().slices_done == 2);
}

TEST_CASE(
    "worker told an unusable results endpoint starts another session, then computes "
    "once the endpoint is usable",
    "[worker]") {
  zwq::test::ShmFile file("worker-bad-results");
  file.write(std::vector<float>(100, 1.0f));
  FakeBroker broker;
  // Longer than an ipc path may be: the compute thread cannot connect its results socket.
  broker.results_override = "ipc:///tmp/" + std::string(200, 'x');
  RunningWorker worker(broker);
  REQUIRE(broker.answer_info());
  broker.results_override.clear();
  REQUIRE(broker.answer_info());  // the worker gave that session up and asked again
  REQUIRE(broker.expect<msg::Hello>());
  broker.welcome(worker.id());

  msg::Tasks tasks;
  tasks.epoch = broker.epoch;
  tasks.job = sum_job(file, 100, 100);
  tasks.runs = {zwq::SliceRun{0, 1, 1}};
  broker.send_tasks(worker.id(), tasks);
  const auto results = broker.expect_results();
  REQUIRE(results);
  CHECK(results->items.at(0).partial.hi == 100.0);
}

TEST_CASE(
    "worker answers queued one-slice Tasks messages of a job with fewer Results, every "
    "outcome once",
    "[worker]") {
  FakeBroker broker;
  RunningWorker worker(broker, 64);
  register_worker(broker, worker);
  // A slow slice of another job first, so that the 20 one-slice messages queue up behind it.
  broker.send_tasks(worker.id(), sleep_tasks(broker.epoch, "block", 150, 1));
  msg::Tasks one = sleep_tasks(broker.epoch, "quick", 0, 20);
  for (std::uint32_t i = 0; i < 20; ++i) {
    one.runs = {zwq::SliceRun{i, 1, 1}};
    broker.send_tasks(worker.id(), one);
  }
  std::map<std::uint64_t, int> seen;
  int quick_messages = 0, outcomes = 0;
  while (outcomes < 20) {
    const auto r = broker.expect_results();
    REQUIRE(r);  // nothing stays held back: all 20 arrive
    if (r->job_id != "quick") continue;
    ++quick_messages;
    for (const auto& item : r->items) ++seen[item.slice], ++outcomes;
  }
  CHECK(outcomes == 20);
  CHECK(seen.size() == 20);
  for (const auto& [slice, times] : seen) CHECK(times == 1);
  CHECK(quick_messages < 10);                 // one per message would be 20
  CHECK_FALSE(broker.expect_results(100ms));  // and nothing more
}

// A Tasks message's outcomes wait for the next queued message of their job only while that
// one, expected to take as long, ends within the batch's delay (OutcomeBatch::kMaxDelay, 8 ms).
// 1 ms messages share Results; 5 ms ones each send theirs at their end: held for the next one,
// the broker would hear of them 5 ms late and hand the job's last slices to other workers.
TEST_CASE(
    "worker sends the outcomes of short Tasks messages with the next queued one of their job, "
    "and those of 5 ms messages at their end",
    "[worker]") {
  FakeBroker broker;
  RunningWorker worker(broker, 64);
  register_worker(broker, worker);
  constexpr std::uint32_t kMessages = 12;
  auto results_for = [&](const std::string& job, std::int64_t ms) {
    msg::Tasks one = sleep_tasks(broker.epoch, job, ms, kMessages);
    for (std::uint32_t i = 0; i < kMessages; ++i) {
      one.runs = {zwq::SliceRun{i, 1, 1}};
      broker.send_tasks(worker.id(), one);
    }
    std::map<std::uint64_t, int> seen;
    std::uint32_t messages = 0, outcomes = 0;
    while (outcomes < kMessages) {
      const auto r = broker.expect_results();
      REQUIRE(r);
      ++messages;
      for (const auto& item : r->items) ++seen[item.slice], ++outcomes;
    }
    CHECK(seen.size() == kMessages);
    for (const auto& [slice, times] : seen) CHECK(times == 1);
    CHECK_FALSE(broker.expect_results(100ms));
    return messages;
  };
  CHECK(results_for("short", 1) < kMessages);
  CHECK(results_for("long", 5) == kMessages);
}

// The broker leases more only as outcomes come back: outcomes of long Tasks messages held until
// the last queued one ended would leave the worker idle for a round trip. Three 2 ms messages
// queued: the outcomes of the first two leave while the third computes, not all three after it
// (well inside the batch's 8 ms delay, which would otherwise send them).
TEST_CASE(
    "worker sends the outcomes of long Tasks messages while its last queued one computes, "
    "not after it",
    "[worker]") {
  FakeBroker broker;
  RunningWorker worker(broker);
  register_worker(broker, worker);
  // A first Results, so that the batch's delay counts from it (a worker's very first batch
  // finds it due at once).
  broker.send_tasks(worker.id(), sleep_tasks(broker.epoch, "warm-up", 0, 1));
  REQUIRE(broker.expect_results());
  msg::Tasks one = sleep_tasks(broker.epoch, "long", 2, 3);
  for (std::uint32_t i = 0; i < 3; ++i) {
    one.runs = {zwq::SliceRun{i, 1, 1}};
    broker.send_tasks(worker.id(), one);
  }
  const auto first = broker.expect_results();
  REQUIRE(first);
  std::vector<std::uint64_t> slices;
  for (const auto& item : first->items) slices.push_back(item.slice);
  CHECK(slices == std::vector<std::uint64_t>{0, 1});  // without: {0, 1, 2}, after the last
  const auto last = broker.expect_results();
  REQUIRE(last);
  REQUIRE(last->items.size() == 1);
  CHECK(last->items[0].slice == 2);
}

// Until a job's first report the broker lets a worker hold one small batch of it: the worker
// reports the first slice of a job new to it at once, so that the next batches come while the
// rest of that batch computes. A job it has seen gets no such early report.
TEST_CASE("worker reports the first slice of a new job at once, and only of a new job",
          "[worker]") {
  FakeBroker broker;
  RunningWorker worker(broker);
  register_worker(broker, worker);
  // Each Tasks message of "fresh" follows one of another job sent with it, whose Results leave
  // just before: the batch's delay (OutcomeBatch::kMaxDelay) then cannot be what sends the
  // first slice of "fresh" alone.
  auto send_after_other = [&](const msg::Tasks& tasks) {
    broker.send_tasks(worker.id(), sleep_tasks(broker.epoch, "other", 0, 1));
    broker.send_tasks(worker.id(), tasks);
    const auto other = broker.expect_results();
    REQUIRE(other);
    CHECK(other->job_id == "other");
  };
  msg::Tasks tasks = sleep_tasks(broker.epoch, "fresh", 0, 8);
  tasks.runs = {zwq::SliceRun{0, 4, 1}};
  send_after_other(tasks);
  const auto first = broker.expect_results();
  REQUIRE(first);
  CHECK(first->job_id == "fresh");
  REQUIRE(first->items.size() == 1);  // without the early report: all 4 in one Results
  CHECK(first->items[0].slice == 0);
  std::set<std::uint64_t> seen{first->items[0].slice};
  while (seen.size() < 4) {
    const auto more = broker.expect_results();
    REQUIRE(more);
    for (const auto& item : more->items) CHECK(seen.insert(item.slice).second);
  }

  // Its next Tasks message: no early report (its 4 zero-length slices leave together).
  tasks.runs = {zwq::SliceRun{4, 4, 1}};
  send_after_other(tasks);
  const auto next = broker.expect_results();
  REQUIRE(next);
  CHECK(next->job_id == "fresh");
  CHECK(next->items.size() == 4);
}

// A worker's very first slice also finds the batch's delay due (nothing was sent yet): the early
// report must still be that slice alone, and the rest of the message then go together.
TEST_CASE("worker's first job reports its first slice alone and the rest together", "[worker]") {
  FakeBroker broker;
  RunningWorker worker(broker);
  register_worker(broker, worker);
  broker.send_tasks(worker.id(), sleep_tasks(broker.epoch, "first", 0, 4));
  const auto one = broker.expect_results();
  REQUIRE(one);
  CHECK(one->items.size() == 1);
  const auto rest = broker.expect_results();
  REQUIRE(rest);
  CHECK(rest->items.size() == 3);  // not the second slice alone, then two
}

TEST_CASE("worker drops the rest of a cancelled job", "[worker]") {
  FakeBroker broker;
  RunningWorker worker(broker);
  register_worker(broker, worker);
  REQUIRE(broker.expect<msg::WorkerHeartbeat>());  // subscribed by now

  const msg::Tasks tasks = sleep_tasks(broker.epoch, "slow", 20, 100);  // 2 s of work
  broker.send_tasks(worker.id(), tasks);
  REQUIRE(broker.expect_results());
  broker.publish("cancel", msg::CancelEvent{"slow"});

  std::size_t received = 1;
  while (auto more = broker.expect_results(300ms)) received += more->items.size();
  CHECK(received < 50);
  CHECK(eventually([&] { return worker.worker().stats().slices_dropped > 50; }));

  // Tasks of that job still on their way are skipped too.
  const auto dropped = worker.worker().stats().slices_dropped;
  broker.send_tasks(worker.id(), tasks);
  CHECK_FALSE(broker.expect_results(300ms));
  CHECK(eventually([&] { return worker.worker().stats().slices_dropped == dropped + 100; }));
}

// A broker that reads no Results would keep the worker's leases for ever: once kResultsHwm
// (10,000) Results wait on the results socket, the session is lost and the worker starts another.
TEST_CASE("worker whose broker takes no Results gives up the session and registers again",
          "[worker]") {
  FakeBroker broker;
  RunningWorker worker(broker, 64);
  register_worker(broker, worker);
  // 25,000 one-slice no-op messages of two alternating jobs (so that no two share a Results):
  // more Results than the worker's queue, libzmq's pipes and the socket buffers hold together.
  msg::Tasks t;
  t.epoch = broker.epoch;
  t.job.kernel = "noop_range";
  t.job.count = 25000;
  t.job.slice_size = 1;
  for (std::uint32_t i = 0; i < 25000; ++i) {
    t.job.job_id = i % 2 == 0 ? "even" : "odd";
    t.runs = {zwq::SliceRun{i, 1, 1}};
    broker.send_tasks(worker.id(), t);
  }
  REQUIRE(broker.answer_info());  // the results endpoint is never read: a new session
  REQUIRE(broker.expect<msg::Hello>());
  CHECK(worker.worker().stats().reconnects == 1);
  CHECK(worker.worker().stats().results_sent >= 10000);
}

TEST_CASE("worker computes Tasks naming their job by ref with the job the Tasks before carried",
          "[worker]") {
  zwq::test::ShmFile file("worker-ref");
  std::vector<float> values(300);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
  file.write(values);
  FakeBroker broker;
  RunningWorker worker(broker);
  REQUIRE(broker.answer_info());
  const auto hello = broker.expect<msg::Hello>();
  REQUIRE(hello);
  CHECK(hello->job_refs);
  broker.welcome(worker.id());

  msg::Tasks full;
  full.epoch = broker.epoch;
  full.job = sum_job(file, values.size(), 100);
  full.runs = {zwq::SliceRun{0, 1, 1}};
  full.ref = 777;
  // The carrying Tasks, then two naming it, all in one message and in messages of their own.
  broker.send_tasks_frames(worker.id(),
                           {zwq::encode(full), zwq::test::tasks_by_ref(777, {{1, 1, 1}})});
  broker.send_tasks_raw(worker.id(), zwq::test::tasks_by_ref(777, {{2, 1, 2}}));

  std::map<std::uint64_t, double> sums;
  while (sums.size() < 3) {
    const auto results = broker.expect_results();
    REQUIRE(results);
    CHECK(results->job_id == "sum-job");
    CHECK(results->epoch == broker.epoch);
    for (const auto& o : results->items) {
      CHECK(o.code == zwq::ErrorCode::kOk);
      CHECK(o.attempt == (o.slice == 2 ? 2u : 1u));
      sums[o.slice] = o.partial.hi;
    }
  }
  // Slice k sums 100k .. 100k + 99.
  CHECK(sums == std::map<std::uint64_t, double>{{0, 4950.0}, {1, 14950.0}, {2, 24950.0}});
  CHECK(worker.worker().stats().dropped_messages == 0);
  CHECK(worker.worker().stats().reconnects == 0);
}

TEST_CASE("worker given a Tasks naming a job it does not hold registers again", "[worker]") {
  zwq::test::ShmFile file("worker-ref-miss");
  file.write(std::vector<float>(100, 1.0f));
  FakeBroker broker;
  RunningWorker worker(broker);
  register_worker(broker, worker);

  msg::Tasks full = one_slice_sum(broker, file, 100);
  full.ref = 5;
  broker.send_tasks(worker.id(), full);
  REQUIRE(broker.expect_results());
  // A new Welcome: what was held before it is no longer known to be the broker's view, so the
  // ref it named is forgotten too; and a ref never sent at all.
  broker.welcome(worker.id());
  broker.send_tasks_raw(worker.id(), zwq::test::tasks_by_ref(5, {{0, 1, 2}}));
  REQUIRE(broker.answer_info());         // a new session...
  REQUIRE(broker.expect<msg::Hello>());  // ...and a new registration
  CHECK(worker.worker().stats().reconnects == 1);
  CHECK(worker.worker().stats().dropped_messages == 1);
  CHECK_FALSE(broker.expect_results(200ms));  // the slice named by ref was not computed

  broker.welcome(worker.id());
  broker.send_tasks_raw(worker.id(), zwq::test::tasks_by_ref(6, {{0, 1, 1}}));
  REQUIRE(broker.answer_info());
  REQUIRE(broker.expect<msg::Hello>());
  CHECK(worker.worker().stats().reconnects == 2);
}

TEST_CASE("worker asked to register again starts a new session, unless not yet welcomed",
          "[worker]") {
  zwq::test::ShmFile file("worker-register-again");
  file.write(std::vector<float>(100, 1.0f));
  FakeBroker broker;
  RunningWorker worker(broker);
  REQUIRE(broker.answer_info());
  REQUIRE(broker.expect<msg::Hello>());
  // Before the Welcome it crossed the Hello: ignored, and the worker goes on to serve.
  broker.send_tasks(worker.id(), msg::RegisterAgain{broker.epoch});
  broker.welcome(worker.id());
  broker.send_tasks(worker.id(), one_slice_sum(broker, file, 100));
  REQUIRE(broker.expect_results());
  CHECK(worker.worker().stats().reconnects == 0);

  // Once welcomed: a new session, and a new Hello.
  broker.send_tasks(worker.id(), msg::RegisterAgain{broker.epoch});
  REQUIRE(broker.answer_info());
  REQUIRE(broker.expect<msg::Hello>());
  CHECK(worker.worker().stats().reconnects == 1);
}

TEST_CASE("worker reconnects when the broker's heartbeats stop", "[worker]") {
  FakeBroker broker;
  broker.heartbeat_ms = 100;
  broker.liveness = 3;
  RunningWorker worker(broker);
  register_worker(broker, worker);
  // No BrokerHeartbeat: after 300 ms the worker asks the control endpoint again.
  REQUIRE(broker.answer_info());
  REQUIRE(broker.expect<msg::Hello>());
  CHECK(worker.worker().stats().reconnects == 1);
}

TEST_CASE("worker registers again when the broker's epoch changes", "[worker]") {
  FakeBroker broker;
  RunningWorker worker(broker);
  register_worker(broker, worker);
  REQUIRE(broker.expect<msg::WorkerHeartbeat>());

  broker.epoch = 43;  // "restarted"
  for (int i = 0; i < 100 && worker.worker().stats().reconnects == 0; ++i) {
    broker.beat();
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE(worker.worker().stats().reconnects == 1);
  REQUIRE(broker.answer_info());
  const auto hello = broker.expect<msg::Hello>();
  REQUIRE(hello);
  broker.welcome(worker.id());
  const auto beat = broker.expect<msg::WorkerHeartbeat>();
  REQUIRE(beat);
  CHECK(beat->epoch == 43);
}

TEST_CASE("worker fails set-up when no broker answers in time", "[worker]") {
  WorkerOptions o;
  o.broker = "ipc:///tmp/zwq-worker-test-nobody-" + std::to_string(::getpid());
  o.connect_timeout_ms = 300;
  Worker worker(o, quiet_logger());
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(worker.run(), zwq::SetupError);
  CHECK(std::chrono::steady_clock::now() - start < 3s);
}

TEST_CASE("worker refuses options without a broker or credit", "[worker]") {
  ::unsetenv("ZWQ_BROKER");
  CHECK_THROWS_AS(Worker(WorkerOptions{}, quiet_logger()), zwq::SetupError);
  WorkerOptions o;
  o.broker = "ipc:///tmp/x";
  o.credit = 0;
  CHECK_THROWS_AS(Worker(o, quiet_logger()), zwq::SetupError);
  o.credit = 1;
  o.worker_id = "has space";
  CHECK_THROWS_AS(Worker(o, quiet_logger()), zwq::SetupError);
}

TEST_CASE("worker takes the broker from ZWQ_BROKER and makes up an id", "[worker]") {
  ::setenv("ZWQ_BROKER", "ipc:///tmp/from-env", 1);
  Worker worker(WorkerOptions{}, quiet_logger());
  ::unsetenv("ZWQ_BROKER");
  CHECK(worker.options().broker == "ipc:///tmp/from-env");
  CHECK(worker.options().worker_id.find("-" + std::to_string(::getpid()) + "-") !=
        std::string::npos);
}

TEST_CASE("worker stopped before it reaches a broker returns at once", "[worker]") {
  WorkerOptions o;
  o.broker = "ipc:///tmp/zwq-worker-test-nobody-" + std::to_string(::getpid());
  o.connect_timeout_ms = 0;  // would wait forever
  Worker worker(o, quiet_logger());
  auto exit = std::async(std::launch::async, [&] { return worker.run(); });
  std::this_thread::sleep_for(50ms);
  worker.stop();
  REQUIRE(exit.wait_for(kWait) == std::future_status::ready);
  CHECK(exit.get() == Worker::Exit::kStopped);
}
