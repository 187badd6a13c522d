// Client and Job against a scripted fake broker (a ROUTER socket in a thread), so that timeouts,
// stale replies, errors and result streaming are tested without the real broker.
#include "zwq/client.hpp"

#include <stdlib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "zwq/codec.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using zwq::Envelope;
using zwq::ErrorCode;
using zwq::proto::MsgType;

// A broker stand-in: every request is handed to `handler`, which answers through `reply`.
class FakeBroker {
 public:
  using Reply = std::function<void(const std::string& frame)>;
  using Handler = std::function<void(const Envelope& request, const Reply& reply)>;

  explicit FakeBroker(Handler handler)
      : handler_(std::move(handler)), socket_(ctx_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:*");
    address_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeBroker() {
    stop_ = true;
    thread_.join();
  }
  const std::string& address() const { return address_; }
  int requests() const { return requests_; }
  // The routing id of the request being handled (call from the handler only).
  const std::string& current_identity() const { return identity_; }

  // Replies that a later request sends, possibly to a peer that has gone away.
  void send_later(std::string identity, std::string frame) {
    std::lock_guard<std::mutex> lock(mu_);
    later_.emplace_back(std::move(identity), std::move(frame));
  }

 private:
  void loop() {
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, 20ms) == 0) continue;
      std::vector<zmq::message_t> parts;
      if (!zmq::recv_multipart(socket_, std::back_inserter(parts))) continue;
      if (parts.size() != 3) continue;
      ++requests_;
      flush_later();
      identity_ = parts[0].to_string();
      auto env = zwq::decode_envelope(parts[2].data(), parts[2].size());
      if (!env.ok()) continue;
      handler_(env.value(), [&](const std::string& frame) { send(identity_, frame); });
    }
  }
  void flush_later() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, frame] : later_) send(id, frame);
    later_.clear();
  }
  void send(const std::string& identity, const std::string& frame) {
    socket_.send(zmq::buffer(identity), zmq::send_flags::sndmore);
    socket_.send(zmq::message_t(), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(frame), zmq::send_flags::none);
  }

  Handler handler_;
  zmq::context_t ctx_;
  zmq::socket_t socket_;
  std::string address_;
  std::string identity_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> later_;
  std::thread thread_;
};

zwq::msg::InfoRep info_rep() {
  zwq::msg::InfoRep info;
  info.epoch = 77;
  info.host = "fake";
  info.kernels = {"sum", "pi", "noop_range"};
  return info;
}

zwq::ClientOptions options_for(const FakeBroker& broker, std::chrono::milliseconds timeout = 2s) {
  zwq::ClientOptions o;
  o.broker = broker.address();
  o.request_timeout = timeout;
  return o;
}

// A client of `broker` that asks once more when an answer does not come within `timeout`.
zwq::Result<zwq::Client> connect_retrying_once(const FakeBroker& broker,
                                               std::chrono::milliseconds timeout) {
  zwq::ClientOptions o = options_for(broker, timeout);
  o.retries = 1;
  return zwq::Client::connect(o);
}

// Answers InfoReq; passes everything else to `rest`.
FakeBroker::Handler with_info(FakeBroker::Handler rest) {
  return [rest](const Envelope& env, const FakeBroker::Reply& reply) {
    if (env.type == MsgType::kInfoReq) {
      reply(zwq::encode(info_rep(), env.corr));
    } else {
      rest(env, reply);
    }
  };
}

zwq::SliceResult slice_result(std::uint64_t slice) {
  zwq::SliceResult r;
  r.slice = slice;
  r.first = slice * 10;
  r.count = 10;
  r.partial.n = 10;
  r.partial.hi = static_cast<double>(slice);
  return r;
}

zwq::JobStatus job_status(const std::string& id, zwq::JobState state, std::uint64_t done) {
  zwq::JobStatus s;
  s.job_id = id;
  s.kernel = "noop_range";
  s.state = state;
  s.total = 4;
  s.done = done;
  return s;
}

zwq::msg::SubmitRep submit_rep(const Envelope& env) {
  auto req = zwq::decode_body<zwq::msg::SubmitReq>(env);
  zwq::msg::SubmitRep rep;
  rep.job_id = req.value().job.job_id;
  rep.total_slices = 4;
  rep.slice_size = 10;
  return rep;
}

}  // namespace

TEST_CASE(
    "Client connect to an address where nothing listens is unreachable in time, and says that "
    "no socket is there",
    "[client]") {
  zwq::ClientOptions o;
  o.broker = "ipc:///tmp/zwq-test-nobody-listens-" + zwq::random_job_id();
  o.request_timeout = 300ms;
  const auto start = Clock::now();
  auto c = zwq::Client::connect(o);
  const auto took = Clock::now() - start;
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().code == ErrorCode::kUnreachable);
  CHECK_THAT(c.error().message, Catch::Contains(o.broker) && Catch::Contains("300 ms"));
  // The socket file says why: there is none.
  CHECK_THAT(c.error().message, Catch::Contains("there is no socket " + o.broker.substr(6)));
  CHECK(took >= 300ms);
  CHECK(took < 1500ms);
}

TEST_CASE("Client connect without an address names ZWQ_BROKER", "[client]") {
  const char* saved = std::getenv("ZWQ_BROKER");
  const std::string keep = saved ? saved : "";
  ::unsetenv("ZWQ_BROKER");
  auto c = zwq::Client::connect({});
  if (saved) ::setenv("ZWQ_BROKER", keep.c_str(), 1);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().code == ErrorCode::kInvalidArgument);
  CHECK_THAT(c.error().message, Catch::Contains("ZWQ_BROKER"));
}

TEST_CASE("Client connect rejects a malformed address", "[client]") {
  zwq::ClientOptions o;
  o.broker = "not-an-endpoint";
  auto c = zwq::Client::connect(o);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().code == ErrorCode::kInvalidArgument);
}

TEST_CASE("Client connect reads the broker's InfoRep", "[client]") {
  FakeBroker broker(with_info([](const Envelope&, const FakeBroker::Reply&) {}));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  CHECK(c.value().info().epoch == 77);
  CHECK(c.value().info().host == "fake");
  CHECK(c.value().address() == broker.address());
}

TEST_CASE("Client connect to a broker of another version fails with version_mismatch", "[client]") {
  FakeBroker broker([](const Envelope& env, const FakeBroker::Reply& reply) {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_array(4);
    pk.pack(zwq::proto::kVersion + 1);
    pk.pack(static_cast<std::uint8_t>(MsgType::kInfoRep));
    pk.pack(env.corr);
    pk.pack_map(0);
    reply(std::string(buf.data(), buf.size()));
  });
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().code == ErrorCode::kVersionMismatch);
}

TEST_CASE("Client discards a stale reply and takes the one with its corr", "[client]") {
  FakeBroker broker(with_info([](const Envelope& env, const FakeBroker::Reply& reply) {
    zwq::msg::WorkersRep stale;
    stale.workers.resize(5);
    reply(zwq::encode(stale, env.corr + 1000));
    zwq::msg::WorkersRep fresh;
    fresh.workers.resize(2);
    reply(zwq::encode(fresh, env.corr));
  }));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  auto w = c.value().workers();
  REQUIRE(w.ok());
  CHECK(w.value().size() == 2);
}

TEST_CASE("Client after a timeout never takes the late reply for the next request", "[client]") {
  std::atomic<int> workers_reqs{0};
  FakeBroker* self = nullptr;
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    zwq::msg::WorkersRep rep;
    if (workers_reqs++ == 0) {
      // No answer now; the reply (with 9 workers) goes out when the next request comes, to the
      // socket that asked, long after the client gave up on it.
      rep.workers.resize(9);
      self->send_later(self->current_identity(), zwq::encode(rep, env.corr));
      return;
    }
    rep.workers.resize(1);
    reply(zwq::encode(rep, env.corr));
  }));
  self = &broker;
  auto c = zwq::Client::connect(options_for(broker, 300ms));
  REQUIRE(c.ok());
  auto first = c.value().workers();
  REQUIRE_FALSE(first.ok());
  CHECK(first.error().code == ErrorCode::kUnreachable);
  auto second = c.value().workers();
  REQUIRE(second.ok());
  CHECK(second.value().size() == 1);
}

TEST_CASE("Client retries a timed-out request on a fresh socket", "[client]") {
  std::atomic<int> status_reqs{0};
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    if (status_reqs++ == 0) return;  // the first attempt is lost
    reply(zwq::encode(zwq::msg::StatusRep{}, env.corr));
  }));
  auto c = connect_retrying_once(broker, 300ms);
  REQUIRE(c.ok());
  auto s = c.value().status();
  REQUIRE(s.ok());
  CHECK(status_reqs == 2);
}

TEST_CASE("Client turns an ErrorRep into an Error with its code", "[client]") {
  FakeBroker broker(with_info([](const Envelope& env, const FakeBroker::Reply& reply) {
    zwq::msg::ErrorRep err;
    err.code = ErrorCode::kUnknownJob;
    err.message = "no job 'x'";
    reply(zwq::encode(err, env.corr));
  }));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  auto s = c.value().cancel("x");
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code == ErrorCode::kUnknownJob);
  CHECK(s.error().message == "no job 'x'");
}

TEST_CASE("Client submit refuses a kernel the broker does not list", "[client]") {
  FakeBroker broker(with_info([](const Envelope&, const FakeBroker::Reply&) {}));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  auto job = c.value().submit(zwq::JobRequest::range("primes", 0, 100));
  REQUIRE_FALSE(job.ok());
  CHECK(job.error().code == ErrorCode::kUnknownKernel);
  CHECK(broker.requests() == 1);  // only InfoReq went out
}

TEST_CASE("Job wait returns the result, or the job's error code", "[client]") {
  std::atomic<int> waits{0};
  std::atomic<zwq::JobState> final_state{zwq::JobState::kDone};
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    if (env.type == MsgType::kSubmitReq) {
      reply(zwq::encode(submit_rep(env), env.corr));
      return;
    }
    auto req = zwq::decode_body<zwq::msg::WaitReq>(env);
    if (!req.ok()) return;  // no REQUIRE here: Catch2 assertions are not thread-safe
    zwq::msg::WaitRep rep;
    const bool finished = ++waits >= 3;
    rep.finished = finished;
    rep.status =
        job_status(req.value().job_id, finished ? final_state.load() : zwq::JobState::kRunning,
                   finished ? 4 : 2);
    if (finished && final_state == zwq::JobState::kDone) rep.result.value = 42;
    if (finished && final_state == zwq::JobState::kFailed) {
      rep.status.error_code = ErrorCode::kKernelFailed;
      rep.status.error = "slice 3 failed";
    }
    reply(zwq::encode(rep, env.corr));
  }));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  SECTION("done") {
    auto job = c.value().submit(zwq::JobRequest::range("noop_range", 0, 40));
    REQUIRE(job.ok());
    CHECK(job.value().total_slices() == 4);
    int updates = 0;
    auto r = job.value().wait(std::nullopt, [&](const zwq::JobStatus& s) {
      ++updates;
      CHECK(s.done == 2);
    });
    REQUIRE(r.ok());
    CHECK(r.value().value == 42);
    CHECK(updates == 2);
  }
  SECTION("failed") {
    final_state = zwq::JobState::kFailed;
    auto job = c.value().submit(zwq::JobRequest::range("noop_range", 0, 40));
    REQUIRE(job.ok());
    auto r = job.value().wait();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kKernelFailed);
    CHECK(r.error().message == "slice 3 failed");
    CHECK_THROWS_AS(job.value().get(), zwq::JobError);
  }
  SECTION("cancelled") {
    final_state = zwq::JobState::kCancelled;
    auto job = c.value().submit(zwq::JobRequest::range("noop_range", 0, 40));
    REQUIRE(job.ok());
    auto r = job.value().wait();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kCancelled);
  }
}

TEST_CASE("Job wait with a timeout gives timeout while the job runs", "[client]") {
  FakeBroker broker(with_info([](const Envelope& env, const FakeBroker::Reply& reply) {
    if (env.type == MsgType::kSubmitReq) {
      reply(zwq::encode(submit_rep(env), env.corr));
      return;
    }
    auto req = zwq::decode_body<zwq::msg::WaitReq>(env);
    if (!req.ok()) return;
    // Hold the reply as a broker would, up to the requested time.
    std::this_thread::sleep_for(std::chrono::milliseconds(req.value().timeout_ms));
    zwq::msg::WaitRep rep;
    rep.status = job_status(req.value().job_id, zwq::JobState::kRunning, 1);
    reply(zwq::encode(rep, env.corr));
  }));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  auto job = c.value().submit(zwq::JobRequest::range("noop_range", 0, 40));
  REQUIRE(job.ok());
  const auto start = Clock::now();
  auto r = job.value().wait(250ms);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kTimeout);
  CHECK(Clock::now() - start < 2s);
  CHECK(job.value().last_status().state == zwq::JobState::kRunning);
}

TEST_CASE("Job as_completed yields every slice once, then ends", "[client]") {
  FakeBroker broker(with_info([](const Envelope& env, const FakeBroker::Reply& reply) {
    if (env.type == MsgType::kSubmitReq) {
      reply(zwq::encode(submit_rep(env), env.corr));
      return;
    }
    auto req = zwq::decode_body<zwq::msg::FetchReq>(env);
    if (!req.ok()) return;
    // Two batches: slices 2, 0 while running; then 3, 1 and done.
    zwq::msg::FetchRep rep;
    if (req.value().cursor == 0) {
      rep.items = {slice_result(2), slice_result(0)};
      rep.status = job_status(req.value().job_id, zwq::JobState::kRunning, 2);
    } else {
      rep.items = {slice_result(3), slice_result(1)};
      rep.status = job_status(req.value().job_id, zwq::JobState::kDone, 4);
    }
    rep.cursor = req.value().cursor + rep.items.size();
    reply(zwq::encode(rep, env.corr));
  }));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  auto job = c.value().submit(zwq::JobRequest::range("noop_range", 0, 40));
  REQUIRE(job.ok());
  std::vector<std::uint64_t> order;
  for (const zwq::SliceResult& r : job.value().as_completed(5s)) order.push_back(r.slice);
  CHECK(order == std::vector<std::uint64_t>{2, 0, 3, 1});
  auto after = job.value().next_result(0ms);
  REQUIRE(after.ok());
  CHECK_FALSE(after.value().has_value());
}

TEST_CASE("Job next_result returns accepted slices before the job's failure", "[client]") {
  FakeBroker broker(with_info([](const Envelope& env, const FakeBroker::Reply& reply) {
    if (env.type == MsgType::kSubmitReq) {
      reply(zwq::encode(submit_rep(env), env.corr));
      return;
    }
    auto req = zwq::decode_body<zwq::msg::FetchReq>(env);
    if (!req.ok()) return;
    zwq::msg::FetchRep rep;
    if (req.value().cursor == 0) rep.items = {slice_result(0)};
    rep.status = job_status(req.value().job_id, zwq::JobState::kFailed, 1);
    rep.status.error_code = ErrorCode::kKernelFailed;
    rep.status.error = "boom";
    rep.cursor = req.value().cursor + rep.items.size();
    reply(zwq::encode(rep, env.corr));
  }));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  auto job = c.value().submit(zwq::JobRequest::range("noop_range", 0, 40));
  REQUIRE(job.ok());
  auto first = job.value().next_result();
  REQUIRE(first.ok());
  REQUIRE(first.value().has_value());
  CHECK(first.value()->slice == 0);
  auto second = job.value().next_result();
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().code == ErrorCode::kKernelFailed);
  CHECK(second.error().message == "boom");
}

TEST_CASE("Job reports broker_restarted when the broker lost it in a restart", "[client]") {
  std::atomic<std::uint64_t> epoch{77};
  FakeBroker broker([&](const Envelope& env, const FakeBroker::Reply& reply) {
    if (env.type == MsgType::kInfoReq) {
      auto info = info_rep();
      info.epoch = epoch;
      reply(zwq::encode(info, env.corr));
    } else if (env.type == MsgType::kSubmitReq) {
      reply(zwq::encode(submit_rep(env), env.corr));
      epoch = 78;  // "restart"
    } else {
      zwq::msg::ErrorRep err;
      err.code = ErrorCode::kUnknownJob;
      err.message = "unknown job";
      reply(zwq::encode(err, env.corr));
    }
  });
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  auto job = c.value().submit(zwq::JobRequest::range("noop_range", 0, 40));
  REQUIRE(job.ok());
  auto r = job.value().progress();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kBrokerRestarted);
}

TEST_CASE("Job wait rides over a broker that stops answering for a while", "[client]") {
  // The broker goes silent for its first three Waits (as while it restarts), then answers.
  std::atomic<int> waits{0};
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    if (env.type == MsgType::kSubmitReq) return reply(zwq::encode(submit_rep(env), env.corr));
    if (env.type != MsgType::kWaitReq) return;
    if (++waits <= 3) return;  // silence
    zwq::msg::WaitRep rep;
    auto req = zwq::decode_body<zwq::msg::WaitReq>(env);
    rep.status = job_status(req.value().job_id, zwq::JobState::kDone, 4);
    rep.finished = true;
    rep.result.value = 42;
    reply(zwq::encode(rep, env.corr));
  }));
  auto options = options_for(broker, 200ms);
  options.outage_tolerance = 10s;
  auto c = zwq::Client::connect(options);
  REQUIRE(c.ok());
  auto job = c.value().submit(zwq::JobRequest::range("noop_range", 0, 40));
  REQUIRE(job.ok());
  auto r = job.value().wait(20s);
  REQUIRE(r.ok());
  CHECK(r.value().value == 42);
  CHECK(waits == 4);
}

TEST_CASE("Job wait gives unreachable, naming the outage, once the tolerance is spent",
          "[client]") {
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    if (env.type == MsgType::kSubmitReq) reply(zwq::encode(submit_rep(env), env.corr));
  }));
  auto options = options_for(broker, 100ms);
  options.outage_tolerance = 600ms;
  auto c = zwq::Client::connect(options);
  REQUIRE(c.ok());
  auto job = c.value().submit(zwq::JobRequest::range("noop_range", 0, 40));
  REQUIRE(job.ok());
  const auto start = Clock::now();
  auto r = job.value().wait();  // no timeout of its own: the tolerance ends it
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kUnreachable);
  CHECK_THAT(r.error().message, Catch::Contains("has not answered for"));
  CHECK(Clock::now() - start >= 600ms);
  CHECK(Clock::now() - start < 5s);
}

TEST_CASE("Job results stream gives each slice once across a broker that lost its order",
          "[client]") {
  // First fetch: slices 0 and 1; then silence (a restart); then the restarted broker lists
  // every slice in another order.
  std::atomic<int> fetches{0};
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    if (env.type == MsgType::kSubmitReq) return reply(zwq::encode(submit_rep(env), env.corr));
    if (env.type != MsgType::kFetchReq) return;
    const int n = ++fetches;
    if (n == 2) return;  // silence
    auto req = zwq::decode_body<zwq::msg::FetchReq>(env);
    zwq::msg::FetchRep rep;
    if (n == 1) {
      rep.items = {slice_result(0), slice_result(1)};
      rep.cursor = 2;
      rep.status = job_status(req.value().job_id, zwq::JobState::kRunning, 2);
    } else {
      CHECK(req.value().cursor == 0);  // read again from the start
      rep.items = {slice_result(3), slice_result(1), slice_result(0), slice_result(2)};
      rep.cursor = 4;
      rep.status = job_status(req.value().job_id, zwq::JobState::kDone, 4);
    }
    reply(zwq::encode(rep, env.corr));
  }));
  auto options = options_for(broker, 200ms);
  auto c = zwq::Client::connect(options);
  REQUIRE(c.ok());
  auto job = c.value().submit(zwq::JobRequest::range("noop_range", 0, 40));
  REQUIRE(job.ok());
  std::vector<std::uint64_t> got;
  for (const zwq::SliceResult& s : job.value().as_completed(20s)) got.push_back(s.slice);
  CHECK(got == std::vector<std::uint64_t>{0, 1, 3, 2});
}

namespace {

zwq::JobStatus done_status(const std::string& id) {
  zwq::JobStatus s = job_status(id, zwq::JobState::kDone, 4);
  return s;
}

std::vector<zwq::JobRequest> noop_requests(int n) {
  std::vector<zwq::JobRequest> out;
  for (int i = 0; i < n; ++i) out.push_back(zwq::JobRequest::range("noop_range", 0, 40));
  return out;
}

// A fake broker's answer to a SubmitManyReq: every job accepted. False for any other request.
bool accept_submit_many(const Envelope& env, const FakeBroker::Reply& reply) {
  if (env.type != MsgType::kSubmitManyReq) return false;
  auto req = zwq::decode_body<zwq::msg::SubmitManyReq>(env);
  zwq::msg::SubmitManyRep rep;
  for (const auto& j : req.value().jobs) rep.items.push_back({.job_id = j.job_id});
  reply(zwq::encode(rep, env.corr));
  return true;
}

// A fake broker's answer to a WaitManyReq: every listed job done with result `value`.
void answer_all_done(const zwq::msg::WaitManyReq& req, std::uint64_t corr, double value,
                     const FakeBroker::Reply& reply) {
  zwq::msg::WaitManyRep rep;
  for (const auto& id : req.job_ids) {
    zwq::msg::WaitItem item{.job_id = id};
    item.status = done_status(id);
    item.result.value = value;
    rep.items.push_back(item);
  }
  reply(zwq::encode(rep, corr));
}

}  // namespace

TEST_CASE("Client run asks the broker to hold the submit and needs one round trip", "[client]") {
  std::atomic<std::uint32_t> wait_ms{0};
  std::atomic<int> other{0};
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    auto req = zwq::decode_body<zwq::msg::SubmitReq>(env);
    if (!req.ok()) {
      ++other;
      return;
    }
    wait_ms = req.value().wait_ms;
    zwq::msg::SubmitRep rep = submit_rep(env);
    rep.finished = true;
    rep.status = done_status(rep.job_id);
    rep.result.value = 42;
    reply(zwq::encode(rep, env.corr));
  }));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  auto r = c.value().run(zwq::JobRequest::range("noop_range", 0, 40));
  REQUIRE(r.ok());
  CHECK(r.value().value == 42);
  CHECK(wait_ms > 0);
  CHECK(other == 0);              // no WaitReq
  CHECK(broker.requests() == 2);  // InfoReq, SubmitReq
}

TEST_CASE("Client run gives the job's error from a held submit", "[client]") {
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    zwq::msg::SubmitRep rep = submit_rep(env);
    rep.finished = true;
    rep.status = job_status(rep.job_id, zwq::JobState::kFailed, 1);
    rep.status.error_code = ErrorCode::kKernelFailed;
    rep.status.error = "slice 0 failed";
    reply(zwq::encode(rep, env.corr));
  }));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  auto r = c.value().run(zwq::JobRequest::range("noop_range", 0, 40));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kKernelFailed);
  CHECK(r.error().message == "slice 0 failed");
}

TEST_CASE("Client run falls back to Wait when a broker answers the submit unfinished", "[client]") {
  // As a broker that predates SubmitReq.wait_ms does: SubmitRep at once, finished = false.
  std::atomic<int> waits{0};
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    if (env.type == MsgType::kSubmitReq) {
      reply(zwq::encode(submit_rep(env), env.corr));
      return;
    }
    auto req = zwq::decode_body<zwq::msg::WaitReq>(env);
    if (!req.ok()) return;
    ++waits;
    zwq::msg::WaitRep rep;
    rep.finished = true;
    rep.status = done_status(req.value().job_id);
    rep.result.value = 7;
    reply(zwq::encode(rep, env.corr));
  }));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  auto r = c.value().run(zwq::JobRequest::range("noop_range", 0, 40));
  REQUIRE(r.ok());
  CHECK(r.value().value == 7);
  CHECK(waits == 1);
}

TEST_CASE("Client submit_many gives each job its own result in one request", "[client]") {
  std::atomic<int> batches{0};
  std::atomic<std::size_t> jobs_sent{0};
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    auto req = zwq::decode_body<zwq::msg::SubmitManyReq>(env);
    if (!req.ok()) return;
    ++batches;
    jobs_sent = req.value().jobs.size();
    zwq::msg::SubmitManyRep rep;
    for (std::size_t i = 0; i < req.value().jobs.size(); ++i) {
      zwq::msg::SubmitItem item;
      item.job_id = req.value().jobs[i].job_id;
      item.total_slices = 4;
      item.slice_size = 10;
      if (i == 1) {
        item.code = ErrorCode::kOutOfRange;
        item.message = "too far";
      }
      rep.items.push_back(item);
    }
    reply(zwq::encode(rep, env.corr));
  }));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  auto requests = noop_requests(3);
  requests.insert(requests.begin() + 1, zwq::JobRequest::range("primes", 0, 10));  // not listed
  auto jobs = c.value().submit_many(requests);
  REQUIRE(jobs.size() == 4);
  CHECK(batches == 1);
  CHECK(jobs_sent == 3);  // the one refused here never went out
  REQUIRE(jobs[0].ok());
  CHECK(jobs[0].value().total_slices() == 4);
  REQUIRE_FALSE(jobs[1].ok());
  CHECK(jobs[1].error().code == ErrorCode::kUnknownKernel);
  REQUIRE_FALSE(jobs[2].ok());
  CHECK(jobs[2].error().code == ErrorCode::kOutOfRange);
  CHECK(jobs[2].error().message == "too far");
  REQUIRE(jobs[3].ok());
  CHECK(jobs[3].value().id() != jobs[0].value().id());
}

TEST_CASE("Client submit_many retried after a lost reply reuses its job ids", "[client]") {
  std::mutex mu;
  std::vector<std::vector<std::string>> seen;
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    auto req = zwq::decode_body<zwq::msg::SubmitManyReq>(env);
    if (!req.ok()) return;
    std::vector<std::string> ids;
    for (const auto& j : req.value().jobs) ids.push_back(j.job_id);
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(ids);
    if (seen.size() == 1) return;  // the first reply is lost
    zwq::msg::SubmitManyRep rep;
    for (const auto& id : ids)
      rep.items.push_back({.job_id = id, .total_slices = 4, .existed = true});
    reply(zwq::encode(rep, env.corr));
  }));
  auto c = connect_retrying_once(broker, 300ms);
  REQUIRE(c.ok());
  auto jobs = c.value().submit_many(noop_requests(2));
  REQUIRE(jobs.size() == 2);
  REQUIRE(jobs[0].ok());
  CHECK(jobs[0].value().existed());
  std::lock_guard<std::mutex> lock(mu);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == seen[1]);
}

TEST_CASE("Client submit_many sends a big batch as requests of 512 jobs and answers in order",
          "[client]") {
  std::mutex mu;
  std::vector<std::size_t> sizes;  // jobs per SubmitManyReq, as they came
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    if (env.type != MsgType::kSubmitManyReq) return;
    auto req = zwq::decode_body<zwq::msg::SubmitManyReq>(env);
    REQUIRE(req.ok());
    {
      std::lock_guard<std::mutex> lock(mu);
      sizes.push_back(req.value().jobs.size());
    }
    accept_submit_many(env, reply);
  }));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  auto requests = noop_requests(1100);
  for (std::size_t i = 0; i < requests.size(); ++i) requests[i].job_id = "j" + std::to_string(i);
  auto jobs = c.value().submit_many(requests);
  REQUIRE(jobs.size() == 1100);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    REQUIRE(jobs[i].ok());
    CHECK(jobs[i].value().id() == requests[i].job_id);
  }
  std::lock_guard<std::mutex> lock(mu);
  CHECK(sizes == std::vector<std::size_t>{512, 512, 76});
}

// The broker makes the jobs of one request while the client prepares the next: the client sends
// its next SubmitManyReq before the answer to the last one. This broker answers the first only
// once the second has come, and answers the second first: a client that waited for each answer
// before sending on would time out and send the first again.
TEST_CASE("Client submit_many sends its next request before the last one is answered", "[client]") {
  std::mutex mu;
  std::vector<std::size_t> sizes;  // jobs per SubmitManyReq, as they came
  std::string first_reply;         // held until the second request comes
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    if (env.type != MsgType::kSubmitManyReq) return;
    std::string held;
    {
      std::lock_guard<std::mutex> lock(mu);
      sizes.push_back(zwq::decode_body<zwq::msg::SubmitManyReq>(env).value().jobs.size());
      if (sizes.size() == 1) {
        accept_submit_many(env, [&](const std::string& frame) { first_reply = frame; });
        return;
      }
      held = std::exchange(first_reply, {});
    }
    accept_submit_many(env, reply);
    if (!held.empty()) reply(held);  // the first request's answer, after the second's
  }));
  auto c = zwq::Client::connect(options_for(broker, 3s));
  REQUIRE(c.ok());
  auto requests = noop_requests(1100);
  for (std::size_t i = 0; i < requests.size(); ++i) requests[i].job_id = "p" + std::to_string(i);
  const auto start = Clock::now();
  auto jobs = c.value().submit_many(requests);
  CHECK(Clock::now() - start < 3s);  // no request waited out its timeout
  REQUIRE(jobs.size() == 1100);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    REQUIRE(jobs[i].ok());
    CHECK(jobs[i].value().id() == requests[i].job_id);
  }
  std::lock_guard<std::mutex> lock(mu);
  CHECK(sizes == std::vector<std::size_t>{512, 512, 76});  // none sent twice
}

TEST_CASE(
    "Client submit_many asks again for a request whose answer was lost, the next one answered",
    "[client]") {
  std::mutex mu;
  std::vector<std::vector<std::string>> seen;  // job ids of each SubmitManyReq, as they came
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    if (env.type != MsgType::kSubmitManyReq) return;
    auto req = zwq::decode_body<zwq::msg::SubmitManyReq>(env);
    REQUIRE(req.ok());
    std::vector<std::string> ids;
    for (const auto& j : req.value().jobs) ids.push_back(j.job_id);
    {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(ids);
      if (seen.size() == 1) return;  // the first answer is lost
    }
    accept_submit_many(env, reply);
  }));
  auto c = connect_retrying_once(broker, 300ms);
  REQUIRE(c.ok());
  auto jobs = c.value().submit_many(noop_requests(600));
  REQUIRE(jobs.size() == 600);
  for (const auto& j : jobs) REQUIRE(j.ok());
  std::lock_guard<std::mutex> lock(mu);
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].size() == 512);
  CHECK(seen[1].size() == 88);  // sent while the first was out
  CHECK(seen[2] == seen[0]);    // the first again, with the same job ids
  CHECK(jobs[0].value().id() == seen[0][0]);
  CHECK(jobs[599].value().id() == seen[1][87]);
}

// A sent SubmitMany is its first attempt: with no retries it is not sent again, and the jobs get
// kUnreachable after one request timeout, as call() would give.
TEST_CASE("Client submit_many with no retries sends an unanswered request once", "[client]") {
  std::atomic<int> submits{0};
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply&) {
    if (env.type == MsgType::kSubmitManyReq) ++submits;  // never answered
  }));
  zwq::ClientOptions o = options_for(broker, 300ms);
  o.retries = 0;
  auto c = zwq::Client::connect(o);
  REQUIRE(c.ok());
  auto jobs = c.value().submit_many(noop_requests(2));
  REQUIRE(jobs.size() == 2);
  for (const auto& j : jobs) {
    REQUIRE_FALSE(j.ok());
    CHECK(j.error().code == ErrorCode::kUnreachable);
    CHECK_THAT(j.error().message, !Catch::Contains("attempts"));
  }
  CHECK(submits == 1);
}

TEST_CASE("Client wait_all collects every job over several WaitMany rounds, in order", "[client]") {
  std::atomic<int> rounds{0};
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    if (accept_submit_many(env, reply)) return;
    auto req = zwq::decode_body<zwq::msg::WaitManyReq>(env);
    if (!req.ok()) return;
    ++rounds;
    // Each round finishes only the first job asked for; the second job asked for fails.
    zwq::msg::WaitManyRep rep;
    const auto& ids = req.value().job_ids;
    zwq::msg::WaitItem item{.job_id = ids[0]};
    item.status = done_status(ids[0]);
    if (rounds == 2) {
      item.status.state = zwq::JobState::kFailed;
      item.status.error_code = ErrorCode::kKernelFailed;
      item.status.error = "boom";
    }
    item.result.value = rounds;
    rep.items.push_back(item);
    rep.left = ids.size() - 1;
    reply(zwq::encode(rep, env.corr));
  }));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  auto submitted = c.value().submit_many(noop_requests(3));
  std::vector<zwq::Job> jobs;
  for (auto& j : submitted) jobs.push_back(std::move(j).value());
  auto results = c.value().wait_all(jobs);
  REQUIRE(results.size() == 3);
  CHECK(rounds == 3);
  REQUIRE(results[0].ok());
  CHECK(results[0].value().value == 1);
  REQUIRE_FALSE(results[1].ok());
  CHECK(results[1].error().code == ErrorCode::kKernelFailed);
  REQUIRE(results[2].ok());
  CHECK(results[2].value().value == 3);
  CHECK(jobs[2].last_status().state == zwq::JobState::kDone);
}

TEST_CASE("Client wait_all gives timeout for the jobs still running", "[client]") {
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    if (accept_submit_many(env, reply)) return;
    auto req = zwq::decode_body<zwq::msg::WaitManyReq>(env);
    if (!req.ok()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(req.value().timeout_ms));
    zwq::msg::WaitManyRep rep;
    rep.left = req.value().job_ids.size();
    reply(zwq::encode(rep, env.corr));
  }));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  auto submitted = c.value().submit_many(noop_requests(2));
  std::vector<zwq::Job> jobs;
  for (auto& j : submitted) jobs.push_back(std::move(j).value());
  const auto start = Clock::now();
  auto results = c.value().wait_all(jobs, 250ms);
  CHECK(Clock::now() - start < 2s);
  REQUIRE(results.size() == 2);
  for (const auto& r : results) {
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kTimeout);
  }
}

TEST_CASE("Client run_many windows hold 512 jobs per worker, at least 128 and at most 4096",
          "[client]") {
  CHECK(zwq::Client::run_many_window(0) == 128);
  CHECK(zwq::Client::run_many_window(2) == 1024);
  CHECK(zwq::Client::run_many_window(3) == 1536);
  CHECK(zwq::Client::run_many_window(8) == 4096);
  CHECK(zwq::Client::run_many_window(16) == 4096);
  CHECK(zwq::Client::run_many_window(1000) == 4096);
}

TEST_CASE(
    "Client run_many keeps two windows ahead, one for windows so large that three would pass 8192 "
    "open jobs",
    "[client]") {
  CHECK(zwq::Client::run_many_ahead(128) == 2);
  CHECK(zwq::Client::run_many_ahead(1024) == 2);
  CHECK(zwq::Client::run_many_ahead(2730) == 2);
  CHECK(zwq::Client::run_many_ahead(2731) == 1);
  CHECK(zwq::Client::run_many_ahead(4096) == 1);
  // Every window run_many_window() gives: the windows open at once stay within 8192 jobs.
  for (std::size_t workers = 0; workers <= 16; ++workers) {
    const std::size_t window = zwq::Client::run_many_window(workers);
    CHECK((zwq::Client::run_many_ahead(window) + 1) * window <= 8192);
  }
}

TEST_CASE("Client run_many returns one result per request, refused ones included", "[client]") {
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    if (accept_submit_many(env, reply)) return;
    if (env.type == zwq::proto::MsgType::kWorkersReq) {  // run_many sizes its windows by them
      reply(
          zwq::encode(zwq::msg::WorkersRep{{zwq::WorkerStatus{}, zwq::WorkerStatus{}}}, env.corr));
      return;
    }
    auto req = zwq::decode_body<zwq::msg::WaitManyReq>(env);
    if (req.ok()) answer_all_done(req.value(), env.corr, 5, reply);
  }));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  auto requests = noop_requests(5);
  requests[2].kernel = "primes";  // not listed by the broker: refused here
  auto results = c.value().run_many(requests, 5s);
  REQUIRE(results.size() == 5);
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (i == 2) {
      REQUIRE_FALSE(results[i].ok());
      CHECK(results[i].error().code == ErrorCode::kUnknownKernel);
    } else {
      REQUIRE(results[i].ok());
      CHECK(results[i].value().value == 5);
    }
  }
}

// A window's WaitMany goes out before the next window's SubmitManys, so that the broker answers
// it while the client submits, instead of the client asking after its submits; and two windows
// go out before the first is collected.
TEST_CASE("Client run_many asks for a window's results before it submits the next window",
          "[client]") {
  std::mutex mu;
  std::vector<std::string> order;  // "S<jobs>" per SubmitManyReq, "W<ids>" per WaitManyReq
  FakeBroker broker(with_info([&](const Envelope& env, const FakeBroker::Reply& reply) {
    if (env.type == zwq::proto::MsgType::kWorkersReq) {  // one worker: windows of 512 jobs
      reply(zwq::encode(zwq::msg::WorkersRep{{zwq::WorkerStatus{}}}, env.corr));
      return;
    }
    if (env.type == MsgType::kSubmitManyReq) {
      auto req = zwq::decode_body<zwq::msg::SubmitManyReq>(env);
      REQUIRE(req.ok());
      {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back("S" + std::to_string(req.value().jobs.size()));
      }
      accept_submit_many(env, reply);
      return;
    }
    auto req = zwq::decode_body<zwq::msg::WaitManyReq>(env);
    if (!req.ok()) return;
    {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back("W" + std::to_string(req.value().job_ids.size()));
    }
    answer_all_done(req.value(), env.corr, 7, reply);
  }));
  auto c = zwq::Client::connect(options_for(broker));
  REQUIRE(c.ok());
  REQUIRE(zwq::Client::run_many_window(1) == 512);
  // With a timeout of 0 an early WaitMany would be answered before the submits: it comes after
  // them, when the window is collected, which is after the next two windows are submitted.
  const auto timeout = GENERATE(std::chrono::milliseconds(5000), std::chrono::milliseconds(0));
  auto results = c.value().run_many(noop_requests(1100), timeout);
  REQUIRE(results.size() == 1100);
  for (const auto& r : results) {
    REQUIRE(r.ok());
    CHECK(r.value().value == 7);
  }
  std::lock_guard<std::mutex> lock(mu);
  if (timeout > 0ms) {
    CHECK(order == std::vector<std::string>{"S512", "W512", "S512", "W512", "S76", "W76"});
  } else {
    CHECK(order == std::vector<std::string>{"S512", "S512", "S76", "W512", "W512", "W76"});
  }
}
