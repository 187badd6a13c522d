// The broker's poll loop with real sockets: bad input on every endpoint, a job run by a
// hand-made worker, deferred replies, shutdown and clean-up.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <msgpack.hpp>
#include <optional>
#include <set>
#include <sstream>
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
  explicit RunningBroker(BrokerOptions o = tcp_options(),
                         std::shared_ptr<spdlog::logger> log = nullptr)
      : broker_(std::move(o), std::move(log)) {
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

  HandWorker(const BrokerEndpoints& ep, std::string worker_id, std::uint32_t credit,
             bool tasks_frames = false, bool job_refs = false)
      : id(std::move(worker_id)) {
    tasks.set(zmq::sockopt::routing_id, id);
    tasks.set(zmq::sockopt::linger, 0);
    tasks.connect(ep.tasks);
    results.set(zmq::sockopt::linger, 1000);
    results.connect(ep.results);
    msg::Hello hello;
    hello.worker_id = id;
    hello.credit = credit;
    hello.tasks_frames = tasks_frames;
    hello.job_refs = job_refs;
    tasks.send(zmq::buffer(encode(hello)), zmq::send_flags::none);
  }
  // Answers every slice of one Tasks message with a count of 1, taking `per_slice` over each
  // (and saying so in slowest_us).
  msg::Tasks answer(const msg::Tasks& t, std::chrono::microseconds per_slice = {}) {
    msg::Results out;
    out.epoch = t.epoch;
    out.worker_id = id;
    out.job_id = t.job.job_id;
    out.slowest_us = static_cast<std::uint64_t>(per_slice.count());
    for (const SliceRun& r : t.runs) {
      for (std::uint64_t s = r.first_slice; s < r.first_slice + r.count; ++s) {
        std::this_thread::sleep_for(per_slice);
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
  // Answers Tasks messages as they come until `slices` slices are answered.
  void answer_slices(std::uint64_t slices, std::chrono::microseconds per_slice = {});
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

// A job of `count` no-op slices of one element each.
void HandWorker::answer_slices(std::uint64_t slices, std::chrono::microseconds per_slice) {
  for (std::uint64_t answered = 0; answered < slices;) {
    for (const SliceRun& r : answer(expect<msg::Tasks>(recv_frame(tasks)), per_slice).runs) {
      answered += r.count;
    }
  }
}

JobSpec noop_job(std::string id, std::uint64_t count = 1) {
  JobSpec spec;
  spec.job_id = std::move(id);
  spec.kernel = "noop_range";
  spec.count = count;
  spec.slice_size = 1;
  return spec;
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

TEST_CASE("server escapes the bytes of a peer's string that are not UTF-8 when it quotes them",
          "[broker]") {
  RunningBroker b;
  test::RawControl control(b.endpoints().control);
  const std::string id("bad\xff\xfeid", 7);
  auto status = expect<msg::ErrorRep>(control.ask(encode(msg::StatusReq{id}, 3)));
  CHECK(status.code == ErrorCode::kUnknownJob);
  CHECK(status.message == "no job 'bad\\xff\\xfeid'");
  msg::WaitManyReq many;
  many.job_ids = {id};
  auto items = expect<msg::WaitManyRep>(control.ask(encode(many, 4)));
  REQUIRE(items.items.size() == 1);
  CHECK(items.items[0].message == status.message);
  CHECK(items.items[0].job_id == "bad\\xff\\xfeid");
  msg::SubmitManyReq submit;
  submit.jobs = {noop_job(id)};
  auto refused = expect<msg::SubmitManyRep>(control.ask(encode(submit, 5)));
  REQUIRE(refused.items.size() == 1);
  CHECK(refused.items[0].code == ErrorCode::kInvalidArgument);
  CHECK(refused.items[0].job_id == "bad\\xff\\xfeid");
  CHECK(refused.items[0].message.find("\xff") == std::string::npos);
}

// After a control request the broker keeps polling instead of sleeping for spin_us, so that what
// answers it (a Results, the client's next request) finds it awake; with 0 it sleeps at once.
// Seen in the count of such polls the broker logs as it closes. (Not in CPU time: a thread that
// yields at every turn gets a millisecond of a 200 ms spin beside busy processes.)
TEST_CASE("server polls without sleeping for spin_us after a request, and not with 0", "[broker]") {
  auto spin_polls_after_one_request = [&](std::uint32_t spin_us) {
    std::ostringstream logged;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(logged);
    auto log = std::make_shared<spdlog::logger>("spin-test", sink);
    log->set_pattern("%v");
    {
      BrokerOptions o = RunningBroker::tcp_options();
      o.heartbeat_ms = 60000;  // no heartbeat, hence no other reason to poll, in the window
      o.spin_us = spin_us;
      RunningBroker b(o, log);
      test::RawControl control(b.endpoints().control);
      (void)expect<msg::InfoRep>(control.ask(msg::InfoReq{}));
      std::this_thread::sleep_for(100ms);
    }  // the broker closes and logs its counters
    const std::string text = logged.str();
    const std::string label = "loop: ";
    const auto at = text.find(label);
    REQUIRE(at != std::string::npos);
    return std::stoull(text.substr(at + label.size()));
  };
  CHECK(spin_polls_after_one_request(200000) > 0);
  CHECK(spin_polls_after_one_request(0) == 0);
}

// After a submit, the spin waits for the job's Results: for a job whose shape's pace says it takes
// longer than the spin, the broker sleeps instead (its workers need the cores). A job of unknown
// pace still gets the spin. Counted in the line the broker logs as it closes.
TEST_CASE("server skips its spin after submitting a job expected to outlast it, and only then",
          "[broker]") {
  std::ostringstream logged;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(logged);
  auto log = std::make_shared<spdlog::logger>("spin-skip-test", sink);
  log->set_pattern("%v");
  {
    BrokerOptions o = RunningBroker::tcp_options();
    o.spin_us = 5000;  // 5 ms
    RunningBroker b(o, log);
    HandWorker w(b.endpoints(), "w1", 4);
    (void)expect<msg::Welcome>(recv_frame(w.tasks));
    test::RawControl control(b.endpoints().control);
    // Job a, of a shape not seen yet: spun for. Its worker takes 50 ms a slice (said in
    // slowest_us, and as long on the broker's clock), which the shape remembers.
    (void)expect<msg::SubmitRep>(control.ask(msg::SubmitReq{noop_job("a", 2)}));
    w.answer_slices(2, 50ms);
    CHECK(expect<msg::WaitRep>(control.ask(msg::WaitReq{"a", 10000})).finished);
    // Job b, of a's shape: 2 slices at ~50 ms on one worker, far beyond the 5 ms spin.
    (void)expect<msg::SubmitRep>(control.ask(msg::SubmitReq{noop_job("b", 2)}));
    // Job c, of another shape (another slice size): unknown pace, spun for as before.
    JobSpec c = noop_job("c", 2);
    c.slice_size = 2;
    (void)expect<msg::SubmitRep>(control.ask(msg::SubmitReq{c}));
  }  // the broker closes and logs its counters
  const std::string text = logged.str();
  const auto at = text.find("spins skipped");
  REQUIRE(at != std::string::npos);
  const auto start = text.rfind(", ", at);
  REQUIRE(start != std::string::npos);
  CHECK(std::stoull(text.substr(start + 2)) == 1);  // b's submit, not a's or c's
}

// A spin ends at the loop's next timer: however long spin_us, the broker's heartbeats go on
// (a broker spinning past them would look dead to its workers).
TEST_CASE("server keeps publishing heartbeats while it spins", "[broker]") {
  BrokerOptions o = RunningBroker::tcp_options();
  o.heartbeat_ms = 50;
  o.spin_us = 5'000'000;  // 5 s of polling after a request (the CLI allows at most 0.1 s)
  RunningBroker b(o);
  zmq::context_t ctx;
  zmq::socket_t events(ctx, zmq::socket_type::sub);
  events.set(zmq::sockopt::linger, 0);
  events.set(zmq::sockopt::subscribe, proto::kTopicHeartbeat);
  events.connect(b.endpoints().events);
  REQUIRE(recv_frame(events, 2s));  // subscribed: the first heartbeat arrives
  test::RawControl control(b.endpoints().control);
  (void)expect<msg::InfoRep>(control.ask(msg::InfoReq{}));  // the spin starts
  int beats = 0;
  const auto until = std::chrono::steady_clock::now() + 600ms;
  while (std::chrono::steady_clock::now() < until) {
    if (recv_frame(events, 100ms)) ++beats;  // each heartbeat is [topic, body]: two frames
  }
  CHECK(beats >= 6);  // ~12 frames in 600 ms at 50 ms; none if the spin held back the timers
}

TEST_CASE("server survives garbage on the tasks and results endpoints", "[broker]") {
  RunningBroker b;
  test::send_raw(b.endpoints().results, zmq::socket_type::push, "\xc1\xc1 not a frame");
  test::send_raw(b.endpoints().results, zmq::socket_type::push, raw_frame(1, 61, 0));
  test::send_raw(b.endpoints().results, zmq::socket_type::push,
                 encode(msg::Hello{}));  // a type that does not belong there
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

// A worker's loop sends WorkerHeartbeat and Bye on the results endpoint (its tasks socket is its
// compute thread's): without them there, a worker busy in a long slice would be declared dead.
TEST_CASE(
    "server takes WorkerHeartbeat and Bye on the results endpoint, and ignores them from "
    "another epoch",
    "[broker]") {
  RunningBroker b;  // heartbeat 200 ms, liveness 5: silent for 1 s is dead
  test::RawControl control(b.endpoints().control);
  auto registered = [&](const std::string& id) {
    auto rep = expect<msg::WorkersRep>(control.ask(msg::WorkersReq{}));
    return std::any_of(rep.workers.begin(), rep.workers.end(),
                       [&](const WorkerStatus& w) { return w.worker_id == id; });
  };
  HandWorker w1(b.endpoints(), "w1", 1);
  (void)expect<msg::Welcome>(recv_frame(w1.tasks));
  // 1.6 s of heartbeats on the results endpoint only, the last one stale.
  for (int i = 0; i < 16; ++i) {
    w1.results.send(zmq::buffer(encode(msg::WorkerHeartbeat{"w1", b.epoch()})),
                    zmq::send_flags::none);
    std::this_thread::sleep_for(100ms);
  }
  CHECK(registered("w1"));

  auto submitted = expect<msg::SubmitRep>(control.ask(msg::SubmitReq{noop_job("held")}));
  CHECK(submitted.total_slices == 1);
  auto leased = expect<msg::Tasks>(recv_frame(w1.tasks));
  CHECK(leased.job.job_id == "held");

  w1.results.send(zmq::buffer(encode(msg::Bye{"w1", b.epoch() + 1})), zmq::send_flags::none);
  w1.results.send(zmq::buffer(encode(msg::WorkerHeartbeat{"w1", b.epoch()})),
                  zmq::send_flags::none);  // after the stale Bye: it was read and ignored
  std::this_thread::sleep_for(100ms);
  CHECK(registered("w1"));

  // A Bye of this epoch hands the slice back: the next worker gets it, as a new lease.
  w1.results.send(zmq::buffer(encode(msg::Bye{"w1", b.epoch()})), zmq::send_flags::none);
  HandWorker w2(b.endpoints(), "w2", 1);
  (void)expect<msg::Welcome>(recv_frame(w2.tasks));
  auto again = expect<msg::Tasks>(recv_frame(w2.tasks));
  CHECK(again.job.job_id == "held");
  REQUIRE(again.runs.size() == 1);
  CHECK(again.runs[0].attempt > leased.runs[0].attempt);
  CHECK_FALSE(registered("w1"));
}

TEST_CASE("server publishes a job's final JobEvent to a subscriber of the job topic", "[broker]") {
  BrokerOptions o = RunningBroker::tcp_options();
  o.heartbeat_ms = 50;
  RunningBroker b(o);
  zmq::context_t ctx;
  zmq::socket_t events(ctx, zmq::socket_type::sub);
  events.set(zmq::sockopt::linger, 0);
  // The job subscription travels before the heartbeat one: a heartbeat means both arrived.
  events.set(zmq::sockopt::subscribe, proto::kTopicJob);
  events.set(zmq::sockopt::subscribe, proto::kTopicHeartbeat);
  events.connect(b.endpoints().events);
  REQUIRE(recv_frame(events, 2s));
  events.set(zmq::sockopt::unsubscribe, proto::kTopicHeartbeat);

  HandWorker w(b.endpoints(), "w1", 8);
  (void)expect<msg::Welcome>(recv_frame(w.tasks));
  test::RawControl control(b.endpoints().control);
  (void)expect<msg::SubmitRep>(control.ask(msg::SubmitReq{noop_job("announced", 3)}));
  w.answer_slices(3);
  // [topic, JobEvent] pairs (heartbeats already queued may come first) until the final one.
  std::optional<msg::JobEvent> final_event;
  for (int frames = 0; frames < 200 && !final_event; ++frames) {
    auto topic = recv_frame(events, 2s);
    REQUIRE(topic);
    if (*topic != proto::kTopicJob) continue;
    auto e = expect<msg::JobEvent>(recv_frame(events, 2s));
    if (e.status.job_id == "announced" && job_state_final(e.status.state)) final_event = e;
  }
  REQUIRE(final_event);
  CHECK(final_event->status.state == JobState::kDone);
  CHECK(final_event->status.done == 3);
}

// The frames of the next message on `s` within 5 s (none: nothing came).
std::vector<std::string> recv_message(zmq::socket_t& s) {
  std::vector<std::string> frames;
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, 5s) == 0) return frames;
  zmq::message_t m;
  do {
    REQUIRE(s.recv(m));
    frames.push_back(m.to_string());
  } while (m.more());
  return frames;
}

TEST_CASE("server sends the Tasks of several jobs for one worker as one message of frames",
          "[broker]") {
  const std::uint32_t max_batch = GENERATE(0u, 1u);
  // A worker that does not say it takes frames (an older one) gets one Tasks per message.
  const bool announces = GENERATE(true, false);
  BrokerOptions o = RunningBroker::tcp_options();
  o.max_batch = max_batch;
  RunningBroker b(o);
  test::RawControl control(b.endpoints().control);
  for (const char* id : {"one", "two", "three"}) {
    (void)expect<msg::SubmitRep>(control.ask(msg::SubmitReq{noop_job(id)}));
  }
  HandWorker w(b.endpoints(), "w1", 8, announces);
  (void)expect<msg::Welcome>(recv_frame(w.tasks));
  // Queued before the worker came: one dispatch hands it all three jobs.
  std::vector<std::string> jobs;
  std::size_t messages = 0;
  while (jobs.size() < 3) {
    const auto frames = recv_message(w.tasks);
    REQUIRE_FALSE(frames.empty());
    ++messages;
    for (const std::string& f : frames) jobs.push_back(expect<msg::Tasks>(f).job.job_id);
  }
  CHECK(jobs == std::vector<std::string>{"one", "two", "three"});
  // --max-batch keeps a message per Tasks, as the users' pyzmq programs send them.
  CHECK(messages == (max_batch == 0 && announces ? 1u : 3u));
}

TEST_CASE("server names a job by ref in the Tasks after the one that carried it, in 33 bytes",
          "[broker]") {
  BrokerOptions o = RunningBroker::tcp_options();
  o.max_batch = 1;
  RunningBroker b(o);
  test::RawControl control(b.endpoints().control);
  (void)expect<msg::SubmitRep>(control.ask(msg::SubmitReq{noop_job("refs", 3)}));
  HandWorker w(b.endpoints(), "w1", 8, true, true);
  (void)expect<msg::Welcome>(recv_frame(w.tasks));
  // Unknown pace: the first batch, 3 slices, goes out one per message.
  const auto carrying = recv_frame(w.tasks);
  REQUIRE(carrying);
  CHECK(carrying->size() > 200);  // the whole JobSpec, even of a job with no datasets
  const msg::Tasks first = expect<msg::Tasks>(carrying);
  CHECK(first.job.job_id == "refs");
  CHECK(first.ref != 0);
  CHECK(first.epoch == b.epoch());
  std::vector<std::uint64_t> slices{first.runs.at(0).first_slice};
  for (int i = 0; i < 2; ++i) {
    const auto f = recv_frame(w.tasks);
    REQUIRE(f);
    CHECK(f->size() <= 33);
    const msg::Tasks named = expect<msg::Tasks>(f);
    CHECK(named.job.job_id.empty());
    CHECK(named.ref == first.ref);
    slices.push_back(named.runs.at(0).first_slice);
  }
  CHECK(slices == std::vector<std::uint64_t>{0, 1, 2});
}

// A worker the broker forgot (as unreachable) while its connection came back hears the broker's
// heartbeats and would wait for work for ever; RegisterAgain sends it through Hello again.
TEST_CASE("server asks a worker it does not know to register again, and not once registered",
          "[broker]") {
  RunningBroker b;
  zmq::context_t ctx;
  zmq::socket_t tasks{ctx, zmq::socket_type::dealer};
  zmq::socket_t results{ctx, zmq::socket_type::push};
  for (auto* s : {&tasks, &results}) s->set(zmq::sockopt::linger, 0);
  tasks.set(zmq::sockopt::routing_id, "ghost");
  tasks.connect(b.endpoints().tasks);
  results.connect(b.endpoints().results);
  // Its heartbeats go to the results endpoint, and nothing registered it.
  auto beat = [&] {
    results.send(zmq::buffer(encode(msg::WorkerHeartbeat{"ghost", b.epoch()})),
                 zmq::send_flags::none);
  };
  std::optional<std::string> asked;
  for (int i = 0; i < 50 && !asked; ++i) {  // the tasks connection may come up after a beat
    beat();
    asked = recv_frame(tasks, 100ms);
  }
  REQUIRE(asked);
  CHECK(expect<msg::RegisterAgain>(asked).epoch == b.epoch());

  msg::Hello hello;
  hello.worker_id = "ghost";
  hello.credit = 1;
  tasks.send(zmq::buffer(encode(hello)), zmq::send_flags::none);
  // A slow loop may have drawn a second RegisterAgain from an earlier beat; any such comes
  // before the Welcome, as the broker handled that beat before the Hello.
  std::optional<std::string> reply = recv_frame(tasks);
  while (reply && decode_envelope(reply->data(), reply->size()).value().type ==
                      proto::MsgType::kRegisterAgain) {
    reply = recv_frame(tasks);
  }
  (void)expect<msg::Welcome>(reply);
  // Registered: its heartbeats are taken, and nothing more comes (heartbeat_ms is 200 here).
  for (int i = 0; i < 3; ++i) {
    beat();
    CHECK_FALSE(recv_frame(tasks, 250ms));
  }
}

// A client may send its next SubmitMany while the broker makes the jobs of the last (the client
// library does). The broker then dispatches the jobs it made before it serves the next request,
// so that the workers are not left idle while it makes those of the next one.
TEST_CASE("server dispatches a SubmitMany's jobs before it serves the request behind it",
          "[broker]") {
  RunningBroker b;
  HandWorker w(b.endpoints(), "w1", 4096, true);
  (void)expect<msg::Welcome>(recv_frame(w.tasks));
  test::RawControl control(b.endpoints().control);
  // The first request holds one job and 5000 it refuses (ids with a space): reading and refusing
  // them takes the broker milliseconds, so the next two requests are queued behind it by then.
  msg::SubmitManyReq first, second, third;
  first.jobs.push_back(noop_job("c0"));
  for (int i = 0; i < 5000; ++i) first.jobs.push_back(noop_job("refused " + std::to_string(i)));
  for (int i = 0; i < 3; ++i) second.jobs.push_back(noop_job("a" + std::to_string(i)));
  for (int i = 0; i < 3; ++i) third.jobs.push_back(noop_job("b" + std::to_string(i)));
  control.post(encode(first, 1));
  control.post(encode(second, 2));
  control.post(encode(third, 3));
  for (int i = 0; i < 3; ++i) (void)expect<msg::SubmitManyRep>(control.reply());

  const auto frames = recv_message(w.tasks);
  REQUIRE_FALSE(frames.empty());
  std::set<char> made_by;  // which request the jobs of the first Tasks message came in
  for (const std::string& f : frames) made_by.insert(expect<msg::Tasks>(f).job.job_id[0]);
  CHECK(made_by == std::set<char>{'c'});
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

  // Each Tasks message is answered as it comes (however the broker batches the slices).
  std::uint64_t answered = 0;
  while (answered < 3) {
    auto t = expect<msg::Tasks>(recv_frame(tasks));
    CHECK(t.job.job_id == "e2e");
    CHECK(t.epoch == b.epoch());
    msg::Results out;
    out.epoch = b.epoch();
    out.worker_id = "w1";
    out.job_id = "e2e";
    for (const SliceRun& r : t.runs) {
      for (std::uint64_t s = r.first_slice; s < r.first_slice + r.count; ++s) {
        SliceOutcome o;
        o.slice = s;
        o.attempt = r.attempt;
        o.partial = identity_partial(Combiner::kCount);
        o.partial.n = s < 2 ? 4 : 2;
        o.partial.count = 1;
        out.items.push_back(o);
        ++answered;
      }
    }
    results.send(zmq::buffer(encode(out)), zmq::send_flags::none);
  }

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
  JobSpec spec = noop_job("running", 10);
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
  // The rest of the job's slices, in whatever batches the broker sends them.
  while (waiting.wait_for(0ms) != std::future_status::ready) {
    if (auto more = recv_frame(w.tasks, 50ms)) w.answer(expect<msg::Tasks>(more));
  }
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
  std::set<std::uint64_t> covered;  // slices answered before the restart
  {
    RunningBroker b(o);
    first_epoch = b.epoch();
    HandWorker w(b.endpoints(), "w1", 4);
    REQUIRE(expect<msg::Welcome>(recv_frame(w.tasks)).epoch == b.epoch());
    test::RawControl control(b.endpoints().control);
    JobSpec spec = noop_job("resumed", 10);
    REQUIRE_FALSE(expect<msg::SubmitRep>(control.ask(msg::SubmitReq{spec})).existed);
    // Some of the 10 slices (credit 4: never all), in whatever batches the broker sends.
    const auto t = expect<msg::Tasks>(recv_frame(w.tasks));
    for (const SliceRun& r : t.runs) {
      for (std::uint64_t s = r.first_slice; s < r.first_slice + r.count; ++s) covered.insert(s);
    }
    w.answer(t);
    for (int i = 0; i < 100; ++i) {
      auto st = expect<msg::StatusRep>(control.ask(msg::StatusReq{"resumed"}));
      if (st.jobs.at(0).done == covered.size()) break;
      std::this_thread::sleep_for(10ms);
    }
    std::this_thread::sleep_for(50ms);  // a journal flush or more
  }
  REQUIRE_FALSE(covered.empty());
  REQUIRE(covered.size() < 10);
  RunningBroker restarted(o);
  CHECK(restarted.epoch() != first_epoch);
  test::RawControl control(restarted.endpoints().control);
  auto st = expect<msg::StatusRep>(control.ask(msg::StatusReq{"resumed"}));
  REQUIRE(st.jobs.size() == 1);
  CHECK(st.jobs[0].done == covered.size());
  CHECK(st.jobs[0].state == JobState::kRunning);
  HandWorker w(restarted.endpoints(), "w1", 100);
  REQUIRE(expect<msg::Welcome>(recv_frame(w.tasks)).epoch == restarted.epoch());
  // Only the uncovered slices run again, each once, in the first attempt.
  std::set<std::uint64_t> rerun;
  auto waiting = std::async(std::launch::async, [&] {
    test::RawControl waiter(restarted.endpoints().control);
    return waiter.ask(msg::WaitReq{"resumed", 5000});
  });
  while (waiting.wait_for(0ms) != std::future_status::ready) {
    auto frame = recv_frame(w.tasks, 50ms);
    if (!frame) continue;
    const auto t = expect<msg::Tasks>(frame);
    for (const SliceRun& r : t.runs) {
      CHECK(r.attempt == 1);
      for (std::uint64_t s = r.first_slice; s < r.first_slice + r.count; ++s) {
        CHECK(covered.count(s) == 0);
        CHECK(rerun.insert(s).second);
      }
    }
    w.answer(t);
  }
  CHECK(rerun.size() + covered.size() == 10);
  auto done = expect<msg::WaitRep>(waiting.get());
  CHECK(done.status.state == JobState::kDone);
  CHECK(done.result.value == 10);
  fs::remove_all(dir);
}

TEST_CASE("server holds a waited SubmitReq until its job is done, in one round trip", "[broker]") {
  RunningBroker b;
  HandWorker w(b.endpoints(), "w1", 4);
  REQUIRE(expect<msg::Welcome>(recv_frame(w.tasks)).epoch == b.epoch());
  auto submitting = std::async(std::launch::async, [&] {
    test::RawControl control(b.endpoints().control);
    return control.ask(msg::SubmitReq{noop_job("waited"), 5000});
  });
  // The slice is dispatched in the turn that accepted the submit, without a timer.
  const auto t = expect<msg::Tasks>(recv_frame(w.tasks, 2s));
  CHECK(t.job.job_id == "waited");
  CHECK(submitting.wait_for(100ms) == std::future_status::timeout);  // held, not answered
  w.answer(t);
  auto rep = expect<msg::SubmitRep>(submitting.get());
  CHECK(rep.job_id == "waited");
  CHECK(rep.total_slices == 1);
  CHECK_FALSE(rep.existed);
  CHECK(rep.finished);
  CHECK(rep.status.state == JobState::kDone);
  CHECK(rep.result.merged.count == 1);

  // A retry of the same submit finds the job and answers at once with its result.
  test::RawControl control(b.endpoints().control);
  auto again = expect<msg::SubmitRep>(control.ask(msg::SubmitReq{noop_job("waited"), 5000}));
  CHECK(again.existed);
  CHECK(again.finished);
  CHECK(again.result.merged.count == 1);
}

TEST_CASE("server answers a waited SubmitReq unfinished when wait_ms passes", "[broker]") {
  RunningBroker b;  // no worker: the job cannot run
  test::RawControl control(b.endpoints().control);
  const auto start = std::chrono::steady_clock::now();
  auto rep = expect<msg::SubmitRep>(control.ask(msg::SubmitReq{noop_job("stuck"), 300}));
  CHECK(std::chrono::steady_clock::now() - start >= 250ms);
  CHECK_FALSE(rep.finished);
  CHECK(rep.status.state == JobState::kQueued);
  CHECK(rep.total_slices == 1);
  // Without wait_ms the reply comes at once and says nothing of the job's end.
  auto now = expect<msg::SubmitRep>(control.ask(msg::SubmitReq{noop_job("stuck2")}));
  CHECK_FALSE(now.finished);
}

TEST_CASE("server SubmitMany refuses a bad job without failing the others", "[broker]") {
  RunningBroker b;
  test::RawControl control(b.endpoints().control);
  JobSpec unknown = noop_job("bad-kernel");
  unknown.kernel = "no-such-kernel";
  msg::SubmitManyReq m{.jobs = {noop_job("m1", 3), unknown, noop_job("has space"), noop_job("m2")}};
  auto rep = expect<msg::SubmitManyRep>(control.ask(m));
  REQUIRE(rep.items.size() == 4);
  CHECK(rep.items[0].code == ErrorCode::kOk);
  CHECK(rep.items[0].job_id == "m1");
  CHECK(rep.items[0].total_slices == 3);
  CHECK(rep.items[1].code == ErrorCode::kUnknownKernel);
  CHECK_THAT(rep.items[1].message, Catch::Contains("no-such-kernel"));
  CHECK(rep.items[2].code == ErrorCode::kInvalidArgument);
  CHECK(rep.items[3].code == ErrorCode::kOk);
  auto status = expect<msg::StatusRep>(control.ask(msg::StatusReq{}));
  CHECK(status.jobs.size() == 2);

  // A retried batch reuses the ids: the jobs are found, nothing new is queued.
  auto retry = expect<msg::SubmitManyRep>(control.ask(m));
  REQUIRE(retry.items.size() == 4);
  CHECK(retry.items[0].existed);
  CHECK(retry.items[3].existed);
  CHECK(expect<msg::StatusRep>(control.ask(msg::StatusReq{})).jobs.size() == 2);
}

TEST_CASE("server WaitMany answers once every listed job is final", "[broker]") {
  RunningBroker b;
  HandWorker w(b.endpoints(), "w1", 100);
  REQUIRE(expect<msg::Welcome>(recv_frame(w.tasks)).epoch == b.epoch());
  test::RawControl control(b.endpoints().control);
  auto rep = expect<msg::SubmitManyRep>(
      control.ask(msg::SubmitManyReq{.jobs = {noop_job("a"), noop_job("b")}}));
  REQUIRE(rep.items.size() == 2);
  auto waiting = std::async(std::launch::async, [&] {
    test::RawControl waiter(b.endpoints().control);
    return waiter.ask(msg::WaitManyReq{.job_ids = {"a", "b", "ghost"}, .timeout_ms = 5000});
  });
  w.answer(expect<msg::Tasks>(recv_frame(w.tasks)));
  CHECK(waiting.wait_for(200ms) == std::future_status::timeout);  // one of two: still held
  w.answer(expect<msg::Tasks>(recv_frame(w.tasks)));
  auto done = expect<msg::WaitManyRep>(waiting.get());
  CHECK(done.left == 0);
  REQUIRE(done.items.size() == 3);
  for (const auto& item : done.items) {
    if (item.job_id == "ghost") {
      CHECK(item.code == ErrorCode::kUnknownJob);
    } else {
      CHECK(item.code == ErrorCode::kOk);
      CHECK(item.status.state == JobState::kDone);
      CHECK(item.result.merged.count == 1);
    }
  }
}

TEST_CASE("server WaitMany with min_finished answers with what is final and counts the rest",
          "[broker]") {
  RunningBroker b;
  HandWorker w(b.endpoints(), "w1", 1);  // one slice at a time: "b" waits for "a"
  REQUIRE(expect<msg::Welcome>(recv_frame(w.tasks)).epoch == b.epoch());
  test::RawControl control(b.endpoints().control);
  expect<msg::SubmitManyRep>(
      control.ask(msg::SubmitManyReq{.jobs = {noop_job("a"), noop_job("b")}}));
  auto waiting = std::async(std::launch::async, [&] {
    test::RawControl waiter(b.endpoints().control);
    return waiter.ask(
        msg::WaitManyReq{.job_ids = {"a", "b"}, .timeout_ms = 5000, .min_finished = 1});
  });
  std::this_thread::sleep_for(100ms);  // held by now
  w.answer(expect<msg::Tasks>(recv_frame(w.tasks)));
  auto rep = expect<msg::WaitManyRep>(waiting.get());
  REQUIRE(rep.items.size() == 1);
  CHECK(rep.items[0].job_id == "a");
  CHECK(rep.left == 1);

  // A timeout with nothing more finishing answers with the job still left.
  auto later =
      expect<msg::WaitManyRep>(control.ask(msg::WaitManyReq{.job_ids = {"b"}, .timeout_ms = 200}));
  CHECK(later.items.empty());
  CHECK(later.left == 1);
}

TEST_CASE("server refuses an oversized or malformed batch with ErrorRep and goes on", "[broker]") {
  RunningBroker b;
  test::RawControl control(b.endpoints().control);
  msg::SubmitManyReq big;
  big.jobs.resize(proto::kMaxBatchJobs + 1, noop_job("x"));
  auto e = expect<msg::ErrorRep>(control.ask(big));
  CHECK(e.code == ErrorCode::kInvalidArgument);
  CHECK_THAT(e.message, Catch::Contains(std::to_string(proto::kMaxBatchJobs)));
  CHECK(expect<msg::StatusRep>(control.ask(msg::StatusReq{})).jobs.empty());  // nothing submitted

  msg::WaitManyReq many;
  many.job_ids.resize(proto::kMaxBatchJobs + 1, "x");
  CHECK(expect<msg::ErrorRep>(control.ask(many)).code == ErrorCode::kInvalidArgument);

  // `jobs` as a string instead of an array of JobSpec maps.
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(4);
  pk.pack(proto::kVersion);
  pk.pack(static_cast<std::uint8_t>(proto::MsgType::kSubmitManyReq));
  pk.pack(std::uint64_t{9});
  pk.pack_map(1);
  pk.pack(std::string("jobs"));
  pk.pack(std::string("garbage"));
  auto malformed = expect<msg::ErrorRep>(control.ask(std::string(buf.data(), buf.size())));
  CHECK(malformed.code == ErrorCode::kBadMessage);

  auto info = expect<msg::InfoRep>(control.ask(msg::InfoReq{}));
  CHECK(info.epoch == b.epoch());
}

// Past --max-finished-slices an older job's slices are refused by name, but only those it had:
// a reader that already has them all (cursor at done) gets the usual final page.
TEST_CASE("server refuses a Fetch of released slice results, and only below the job's done count",
          "[broker]") {
  BrokerOptions o = RunningBroker::tcp_options();
  o.max_finished_slices = 3;
  RunningBroker b(o);
  HandWorker w(b.endpoints(), "w1", 8);
  (void)expect<msg::Welcome>(recv_frame(w.tasks));
  test::RawControl control(b.endpoints().control);
  for (const char* id : {"a", "b"}) {  // 2 + 2 slices held: "a" gives up its own
    (void)expect<msg::SubmitRep>(control.ask(msg::SubmitReq{noop_job(id, 2)}));
    w.answer_slices(2);
    REQUIRE(expect<msg::WaitRep>(control.ask(msg::WaitReq{id, 10000})).finished);
  }
  auto refused = expect<msg::ErrorRep>(control.ask(msg::FetchReq{"a", 0, 0, 0}));
  CHECK(refused.code == ErrorCode::kOutOfRange);
  CHECK(refused.message.find("--max-finished-slices 3") != std::string::npos);
  auto at_end = expect<msg::FetchRep>(control.ask(msg::FetchReq{"a", 2, 0, 0}));
  CHECK(at_end.items.empty());
  CHECK(at_end.cursor == 2);
  CHECK(at_end.status.state == JobState::kDone);
  auto kept = expect<msg::FetchRep>(control.ask(msg::FetchReq{"b", 0, 0, 0}));
  CHECK(kept.items.size() == 2);
  auto waited = expect<msg::WaitRep>(control.ask(msg::WaitReq{"a", 0}));
  CHECK(waited.finished);
  CHECK(waited.result.merged.n == 2);
}
