// The ZeroMQ limits zwq is held to (T3, T4): what libzmq itself does between two processes on
// this machine, measured with our own code rather than taken from a datasheet.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "process.hpp"
#include "sections.hpp"
#include "stats.hpp"

namespace zwq::bench {

namespace {

using std::chrono::milliseconds;

// No single receive may wait longer than this: a lost peer ends the run instead of hanging it.
constexpr int kRecvTimeoutMs = 10000;
// Round trips before the timed ones: connection set-up and the first page faults stay out.
constexpr int kReqRepWarmup = 1000;
constexpr std::size_t kMessageBytes = 32;

std::string bind_endpoint(zmq::socket_t& s, const std::string& transport, const std::string& dir) {
  s.bind(transport == "ipc" ? "ipc://" + dir + "/s" : "tcp://127.0.0.1:*");
  return s.get(zmq::sockopt::last_endpoint);
}

// One run: messages per second received from a pushing process, first to last message.
double pushpull_rate(const std::string& transport, const std::string& dir, std::uint64_t count) {
  zmq::context_t ctx(1);
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.set(zmq::sockopt::rcvtimeo, kRecvTimeoutMs);
  pull.set(zmq::sockopt::linger, 0);
  const std::string ep = bind_endpoint(pull, transport, dir);
  Child peer =
      spawn_child(self_path(), {"_push", "--endpoint", ep, "--count", std::to_string(count),
                                 "--size", std::to_string(kMessageBytes)});
  zmq::message_t m;
  if (!pull.recv(m)) throw std::runtime_error("PUSH/PULL: no first message");
  Stopwatch clock;
  for (std::uint64_t i = 1; i < count; ++i) {
    if (!pull.recv(m)) throw std::runtime_error("PUSH/PULL: timed out after " + std::to_string(i));
  }
  const double s = clock.seconds();
  peer.stop(milliseconds(1000));  // it waits for this: see peer_push
  return static_cast<double>(count - 1) / s;
}

// One run: the round-trip times of `count` REQ/REP exchanges with an echoing process, in µs.
std::vector<double> reqrep_times(const std::string& transport, const std::string& dir, int count) {
  zmq::context_t ctx(1);
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::rcvtimeo, kRecvTimeoutMs);
  req.set(zmq::sockopt::sndtimeo, kRecvTimeoutMs);
  req.set(zmq::sockopt::linger, 0);
  const std::string ep = bind_endpoint(req, transport, dir);
  Child peer = spawn_child(
      self_path(), {"_echo", "--endpoint", ep, "--count", std::to_string(count + kReqRepWarmup)});
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(count));
  std::string payload(kMessageBytes, 'x');
  zmq::message_t reply;
  for (int i = 0; i < count + kReqRepWarmup; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    req.send(zmq::buffer(payload), zmq::send_flags::none);
    if (!req.recv(reply)) throw std::runtime_error("REQ/REP: no reply");
    const auto t1 = std::chrono::steady_clock::now();
    if (i >= kReqRepWarmup)
      us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  (void)peer.wait_until(std::chrono::steady_clock::now() + milliseconds(kRecvTimeoutMs));
  return us;
}

}  // namespace

namespace {

// A private directory for one ipc endpoint, removed with it.
class EndpointDir {
 public:
  EndpointDir() {
    char tmpl[] = "/tmp/zwq-bench-zmq-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
  }
  ~EndpointDir() {
    ::unlink((dir_ + "/s").c_str());
    ::rmdir(dir_.c_str());
  }
  const std::string& path() const { return dir_; }

 private:
  std::string dir_;
};

}  // namespace

double raw_pushpull_rate(const std::string& transport, std::uint64_t messages) {
  EndpointDir dir;
  return pushpull_rate(transport, dir.path(), messages);
}

std::vector<double> raw_reqrep_us(const std::string& transport, int count) {
  EndpointDir dir;
  return reqrep_times(transport, dir.path(), count);
}

json run_zmq_limits(const BenchOptions& o) {
  json out;
  for (const std::string transport : {"ipc", "tcp"}) {
    std::vector<double> rates, p50, p99;
    for (int r = 0; r < o.runs; ++r) {
      rates.push_back(raw_pushpull_rate(transport, o.pushpull_messages));
      const auto us = raw_reqrep_us(transport, o.reqrep_samples);
      p50.push_back(percentile(us, 50));
      p99.push_back(percentile(us, 99));
    }
    out["pushpull"][transport] = {{"msgs_per_s", to_json(summarize(rates))},
                                  {"messages", o.pushpull_messages},
                                  {"message_bytes", kMessageBytes}};
    out["reqrep"][transport] = {{"p50_us", to_json(summarize(p50))},
                                {"p99_us", to_json(summarize(p99))},
                                {"round_trips", o.reqrep_samples}};
    std::fprintf(stderr, "  %s: PUSH/PULL %.0f msgs/s, REQ/REP p50 %.1f us p99 %.1f us\n",
                 transport.c_str(), summarize(rates).median, summarize(p50).median,
                 summarize(p99).median);
  }
  return out;
}

int peer_push(const std::string& endpoint, std::uint64_t count, std::size_t size) {
  zmq::context_t ctx(1);
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::sndtimeo, kRecvTimeoutMs);
  push.set(zmq::sockopt::linger, kRecvTimeoutMs);
  push.connect(endpoint);
  std::string payload(size, 'x');
  for (std::uint64_t i = 0; i < count; ++i) {
    if (!push.send(zmq::buffer(payload), zmq::send_flags::none)) return 1;
  }
  // Stay up until the receiver has everything and stops us (SIGTERM): exiting at once can lose
  // the last queued messages over ipc in spite of the linger (libzmq issue 4660), which then
  // left a run waiting for them until its receive timeout.
  std::this_thread::sleep_for(milliseconds(kRecvTimeoutMs));
  return 0;
}

int peer_echo(const std::string& endpoint, std::uint64_t count) {
  zmq::context_t ctx(1);
  zmq::socket_t rep(ctx, zmq::socket_type::rep);
  rep.set(zmq::sockopt::rcvtimeo, kRecvTimeoutMs);
  rep.set(zmq::sockopt::linger, 0);
  rep.connect(endpoint);
  zmq::message_t m;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (!rep.recv(m)) return 1;
    rep.send(m, zmq::send_flags::none);
  }
  return 0;
}

}  // namespace zwq::bench
