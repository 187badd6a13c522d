// The broker's poll loop with real sockets: bad input on every endpoint, a job run by a
// hand-made worker, deferred replies, shutdown and clean-up.
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <msgpack.hpp>
#include <optional>
#include <thread>
#include <zmq.hpp>

#include "raw_socket.hpp"
#include "zwq/broker.hpp"
#include "zwq/codec.hpp"

using namespace zwq;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A Broker serving on its own thread until the test ends.
class RunningBroker {
 public:
  explicit RunningBroker(BrokerOptions o = tcp_options()) : broker_(std::move(o), nullptr) {
    thread_ = std::thread([this] {
      broker_.run();
      returned_ = true;
    });
  }
  ~RunningBroker() {
    broker_.stop();  // the first stop drains,
    broker_.stop();  // the second one ends at once
    thread_.join();
  }
  // One stop(), as a SIGTERM would: the broker drains.
  void stop_once() { broker_.stop(); }
  bool returned() const { return returned_; }
  const BrokerEndpoints& endpoints() const { return broker_.endpoints(); }
  std::uint64_t epoch() const { return broker_.epoch(); }

  static BrokerOptions tcp_options() {
    BrokerOptions o;
    o.bind = "tcp://127.0.0.1:*";
    o.heartbeat_ms = 200;
    return o;
  }

 private:
  Broker broker_;
  std::atomic<bool> returned_{false};
  std::thread thread_;
};

// A worker made by hand: a DEALER on tasks and a PUSH on results.
struct HandWorker {
  zmq::context_t ctx;
  zmq::socket_t tasks{ctx, zmq::socket_type::dealer};
  zmq::socket_t results{ctx, zmq::socket_type::push};
  std::string id;
  std::uint64_t epoch = 0;

  HandWorker(const BrokerEndpoints& ep, std::string worker_id, std::uint32_t credit)
      : id(std::move(worker_id)) {
    tasks.set(zmq::sockopt::routing_id, id);
    tasks.set(zmq::sockopt::linger, 0);
    tasks.connect(ep.tasks);
    results.set(zmq::sockopt::linger, 1000);
    results.connect(ep.results);
    msg::Hello hello;
    hello.worker_id = id;
    hello.credit = credit;
    tasks.send(zmq::buffer(encode(hello)), zmq::send_flags::none);
  }
  // Answers every slice of one Tasks message with a count of 1.
  msg::Tasks answer(const msg::Tasks& t) {
    msg::Results out;
    out.epoch = t.epoch;
    out.worker_id = id;
    out.job_id = t.job.job_id;
    for (const SliceRun& r : t.runs) {
      for (std::uint64_t s = r.first_slice; s < r.first_slice + r.count; ++s) {
        SliceOutcome o;
        o.slice = s;
        o.attempt = r.attempt;
        o.partial = identity_partial(Combiner::kCount);
        o.partial.n = 1;
        o.partial.count = 1;
        out.items.push_back(o);
      }
    }
    results.send(zmq::buffer(encode(out)), zmq::send_flags::none);
    return t;
  }
};

// [version, type, corr, {}] with any numbers.
std::string raw_frame(std::uint64_t version, std::uint64_t type, std::uint64_t corr) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(4);
  pk.pack(version);
  pk.pack(type);
  pk.pack(corr);
  pk.pack_map(0);
  return std::string(buf.data(), buf.size());
}

template <typename M>
M expect(const std::optional<std::string>& frame) {
  REQUIRE(frame.has_value());
  auto m = decode<M>(frame->data(), frame->size());
  if (!m.ok()) FAIL("reply does not decode: " << m.error().to_string());
  return m.value();
}

std::optional<std::string> recv_frame(zmq::socket_t& s, std::chrono::milliseconds timeout = 5s) {
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
  zmq::message_t m;
  (void)s.recv(m);
  return m.to_string();
}

}  // namespace

TEST_CASE("server answers garbage and a wrong version on control with ErrorRep", "[broker]") {
  RunningBroker b;
  test::RawControl control(b.endpoints().control);

  auto garbage = expect<msg::ErrorRep>(control.ask(std::string("\xc1 garbage")));
  CHECK(garbage.code == ErrorCode::kBadMessage);

  const std::string v2 = raw_frame(2, 1, 7);
  auto reply = control.ask(v2);
  REQUIRE(reply.has_value());
  auto env = decode_envelope(reply->data(), reply->size());
  REQUIRE(env.ok());
  CHECK(env.value().corr == 7);  // still matched to its request
  auto version = decode_body<msg::ErrorRep>(env.value());
  REQUIRE(version.ok());
  CHECK(version.value().code == ErrorCode::kVersionMismatch);

  auto not_control = expect<msg::ErrorRep>(control.ask(raw_frame(1, 41, 8)));  // a Hello
  CHECK(not_control.code == ErrorCode::kUnknownType);

  auto wrong_field = expect<msg::ErrorRep>(control.ask(encode(msg::StatusReq{"nope"}, 9)));
  CHECK(wrong_field.code == ErrorCode::kUnknownJob);

  auto info = expect<msg::InfoRep>(control.ask(msg::InfoReq{}));
  CHECK(info.epoch == b.epoch());
  CHECK(info.tasks == b.endpoints().tasks);
}

TEST_CASE("server survives garbage on the tasks and results endpoints", "[broker]") {
  RunningBroker b;
  test::send_raw(b.endpoints().results, zmq::socket_type::push, "\xc1\xc1 not a frame");
  test::send_raw(b.endpoints().results, zmq::socket_type::push, raw_frame(1, 61, 0));
  test::send_raw(b.endpoints().tasks, zmq::socket_type::dealer, "\x93 garbage");
  test::send_raw(b.endpoints().tasks, zmq::socket_type::dealer,
                 encode(msg::WorkerHeartbeat{"ghost", 1}));
  {
    // A control message of the wrong envelope shape ([frame] without the empty delimiter
    // frame) is dropped without a reply.
    zmq::context_t ctx;
    zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 2000);
    dealer.connect(b.endpoints().control);
    dealer.send(zmq::buffer(encode(msg::InfoReq{}, 5)), zmq::send_flags::none);
    CHECK_FALSE(recv_frame(dealer, 300ms).has_value());
  }
  test::RawControl control(b.endpoints().control);
  auto info = expect<msg::InfoRep>(control.ask(msg::InfoReq{}));
  CHECK(info.version == proto::kVersion);
  CHECK_FALSE(info.kernels.empty());
}

TEST_CASE("server runs a job with a hand-made worker and answers Wait and Fetch", "[broker]") {
  RunningBroker b;
  zmq::context_t ctx;
  zmq::socket_t tasks(ctx, zmq::socket_type::dealer);
  tasks.set(zmq::sockopt::routing_id, "w1");
  tasks.set(zmq::sockopt::linger, 0);
  tasks.connect(b.endpoints().tasks);
  zmq::socket_t results(ctx, zmq::socket_type::push);
  results.set(zmq::sockopt::linger, 1000);
  results.connect(b.endpoints().results);

  msg::Hello hello;
  hello.worker_id = "w1";
  hello.credit = 4;
  tasks.send(zmq::buffer(encode(hello)), zmq::send_flags::none);
  auto welcome = expect<msg::Welcome>(recv_frame(tasks));
  CHECK(welcome.epoch == b.epoch());
  CHECK(welcome.heartbeat_ms == 200);

  test::RawControl control(b.endpoints().control);
  JobSpec spec;
  spec.job_id = "e2e";
  spec.kernel = "noop_range";
  spec.count = 10;
  spec.slice_size = 4;
  auto submitted = expect<msg::SubmitRep>(control.ask(msg::SubmitReq{spec}));
  CHECK(submitted.total_slices == 3);
  CHECK_FALSE(submitted.existed);

  msg::Results out;
  out.epoch = b.epoch();
  out.worker_id = "w1";
  out.job_id = "e2e";
  while (out.items.size() < 3) {
    auto t = expect<msg::Tasks>(recv_frame(tasks));
    CHECK(t.job.job_id == "e2e");
    CHECK(t.epoch == b.epoch());
    for (const SliceRun& r : t.runs) {
      for (std::uint64_t s = r.first_slice; s < r.first_slice + r.count; ++s) {
        SliceOutcome o;
        o.slice = s;
        o.attempt = r.attempt;
        o.partial = identity_partial(Combiner::kCount);
        o.partial.n = s < 2 ? 4 : 2;
        o.partial.count = 1;
        out.items.push_back(o);
      }
    }
  }
  results.send(zmq::buffer(encode(out)), zmq::send_flags::none);

  auto done = expect<msg::WaitRep>(control.ask(msg::WaitReq{"e2e", 10000}));
  CHECK(done.finished);
  CHECK(done.status.state == JobState::kDone);
  CHECK(done.status.done == 3);
  CHECK(done.result.merged.n == 10);

  auto page = expect<msg::FetchRep>(control.ask(msg::FetchReq{"e2e", 0, 2, 0}));
  CHECK(page.items.size() == 2);
  CHECK(page.cursor == 2);
  page = expect<msg::FetchRep>(control.ask(msg::FetchReq{"e2e", 2, 0, 1000}));
  CHECK(page.items.size() == 1);
  CHECK(page.cursor == 3);

  auto again = expect<msg::SubmitRep>(control.ask(msg::SubmitReq{spec}));
  CHECK(again.existed);

  auto workers = expect<msg::WorkersRep>(control.ask(msg::WorkersReq{}));
  REQUIRE(workers.workers.size() == 1);
  CHECK(workers.workers[0].worker_id == "w1");
  CHECK(workers.workers[0].slices_done == 3);
  CHECK(workers.workers[0].inflight == 0);
}

TEST_CASE("server holds a Wait until its timeout when the job cannot finish", "[broker]") {
  RunningBroker b;
  test::RawControl control(b.endpoints().control);
  JobSpec spec;
  spec.job_id = "stuck";
  spec.kernel = "noop_range";
  spec.count = 10;
  expect<msg::SubmitRep>(control.ask(msg::SubmitReq{spec}));
  const auto start = std::chrono::steady_clock::now();
  auto w = expect<msg::WaitRep>(control.ask(msg::WaitReq{"stuck", 300}));
  CHECK(std::chrono::steady_clock::now() - start >= 250ms);
  CHECK_FALSE(w.finished);
  CHECK(w.status.state == JobState::kQueued);

  auto c = expect<msg::CancelRep>(control.ask(msg::CancelReq{"stuck"}));
  CHECK(c.status.state == JobState::kCancelled);
  auto after = expect<msg::WaitRep>(control.ask(msg::WaitReq{"stuck", 5000}));
  CHECK(after.finished);
  CHECK(after.status.error_code == ErrorCode::kCancelled);
}

TEST_CASE("server refuses an invalid job with ErrorRep and goes on", "[broker]") {
  RunningBroker b;
  test::RawControl control(b.endpoints().control);
  JobSpec spec;
  spec.kernel = "no-such-kernel";
  spec.count = 10;
  auto e = expect<msg::ErrorRep>(control.ask(msg::SubmitReq{spec}));
  CHECK(e.code == ErrorCode::kUnknownKernel);
  CHECK_THAT(e.message, Catch::Contains("noop_range"));
  expect<msg::InfoRep>(control.ask(msg::InfoReq{}));
}

TEST_CASE("server stops on ShutdownReq and removes its private ipc directory", "[broker]") {
  const fs::path ready =
      fs::temp_directory_path() / ("zwq-server-ready-" + std::to_string(::getpid()));
  BrokerOptions o;
  o.ready_file = ready.string();
  auto broker = std::make_unique<Broker>(o, nullptr);
  const std::string control_ep = broker->endpoints().control;
  REQUIRE(control_ep.rfind("ipc://", 0) == 0);
  const fs::path dir = fs::path(control_ep.substr(6)).parent_path();
  CHECK(fs::is_directory(dir));
  {
    std::ifstream in(ready);
    std::string line;
    std::getline(in, line);
    CHECK(line == control_ep);
  }
  std::thread t([&] { broker->run(); });
  {
    test::RawControl control(control_ep);
    expect<msg::ShutdownRep>(control.ask(msg::ShutdownReq{}));
  }
  t.join();  // run() returns without stop()
  CHECK_FALSE(fs::exists(dir));
  broker.reset();
  fs::remove(ready);
}

TEST_CASE("server on stop refuses new jobs, finishes the running one, then returns", "[broker]") {
  BrokerOptions o = RunningBroker::tcp_options();
  o.drain_ms = 20000;
  RunningBroker b(o);
  HandWorker w(b.endpoints(), "w1", 100);
  REQUIRE(expect<msg::Welcome>(recv_frame(w.tasks)).epoch == b.epoch());
  test::RawControl control(b.endpoints().control);
  JobSpec spec;
  spec.job_id = "running";
  spec.kernel = "noop_range";
  spec.count = 10;
  spec.slice_size = 1;
  REQUIRE_FALSE(expect<msg::SubmitRep>(control.ask(msg::SubmitReq{spec})).existed);
  const auto tasks = expect<msg::Tasks>(recv_frame(w.tasks));

  b.stop_once();
  std::this_thread::sleep_for(300ms);  // a few loop turns: it must still be there
  CHECK_FALSE(b.returned());
  spec.job_id = "late";
  auto refused = expect<msg::ErrorRep>(control.ask(msg::SubmitReq{spec}));
  CHECK(refused.code == ErrorCode::kShuttingDown);

  // A Wait held across the end of the job is answered before the broker returns.
  auto waiting = std::async(std::launch::async, [&] {
    test::RawControl waiter(b.endpoints().control);
    return waiter.ask(msg::WaitReq{"running", 5000});
  });
  std::this_thread::sleep_for(200ms);  // the Wait is held by now
  w.answer(tasks);
  auto done = expect<msg::WaitRep>(waiting.get());
  CHECK(done.status.state == JobState::kDone);
  for (int i = 0; i < 100 && !b.returned(); ++i) std::this_thread::sleep_for(20ms);
  CHECK(b.returned());
}

TEST_CASE("server with a journal resumes an unfinished job after a restart", "[broker]") {
  const fs::path dir =
      fs::temp_directory_path() / ("zwq-server-journal-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  BrokerOptions o = RunningBroker::tcp_options();
  o.journal = (dir / "journal").string();
  o.journal_flush_ms = 10;
  std::uint64_t first_epoch = 0;
  {
    RunningBroker b(o);
    first_epoch = b.epoch();
    HandWorker w(b.endpoints(), "w1", 4);
    REQUIRE(expect<msg::Welcome>(recv_frame(w.tasks)).epoch == b.epoch());
    test::RawControl control(b.endpoints().control);
    JobSpec spec;
    spec.job_id = "resumed";
    spec.kernel = "noop_range";
    spec.count = 10;
    spec.slice_size = 1;
    REQUIRE_FALSE(expect<msg::SubmitRep>(control.ask(msg::SubmitReq{spec})).existed);
    w.answer(expect<msg::Tasks>(recv_frame(w.tasks)));  // 4 of the 10 slices
    for (int i = 0; i < 100; ++i) {
      auto st = expect<msg::StatusRep>(control.ask(msg::StatusReq{"resumed"}));
      if (st.jobs.at(0).done == 4) break;
      std::this_thread::sleep_for(10ms);
    }
    std::this_thread::sleep_for(50ms);  // a journal flush or more
  }
  RunningBroker restarted(o);
  CHECK(restarted.epoch() != first_epoch);
  test::RawControl control(restarted.endpoints().control);
  auto st = expect<msg::StatusRep>(control.ask(msg::StatusReq{"resumed"}));
  REQUIRE(st.jobs.size() == 1);
  CHECK(st.jobs[0].done == 4);
  CHECK(st.jobs[0].state == JobState::kRunning);
  HandWorker w(restarted.endpoints(), "w1", 100);
  REQUIRE(expect<msg::Welcome>(recv_frame(w.tasks)).epoch == restarted.epoch());
  const auto t = expect<msg::Tasks>(recv_frame(w.tasks));
  CHECK(t.runs == std::vector<SliceRun>{SliceRun{4, 6, 1}});  // only the uncovered slices
  w.answer(t);
  auto done = expect<msg::WaitRep>(control.ask(msg::WaitReq{"resumed", 5000}));
  CHECK(done.status.state == JobState::kDone);
  CHECK(done.result.value == 10);
  fs::remove_all(dir);
}
