// Private: the request/reply channel to a broker's control endpoint, shared by a Client and its
// Jobs.
//
// One DEALER socket sends [empty, frame] with corr = a request counter and waits for the reply
// with that corr; replies carrying another corr are stale and dropped. When a reply does not come
// in time the socket is closed and a fresh one connected ("lazy pirate", ZeroMQ Guide ch. 4), so
// a reply that arrives late can never be taken for the answer to a later request.
//
// Requests may also be pipelined: post() sends one without waiting and collect() takes its
// reply, so that the broker works on one request while the caller prepares the next. Replies to
// other posted requests that arrive meanwhile are kept for their own collect().
//
// Not thread-safe: one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <zmq.hpp>

#include "reply_reader.hpp"
#include "zwq/codec.hpp"
#include "zwq/messages.hpp"
#include "zwq/status.hpp"

namespace zwq::detail {

// The longest a single Wait, Fetch or waited Submit asks the broker to hold its reply: long
// enough to keep idle round trips rare, short enough that a caller's own timeout is honoured
// closely.
inline constexpr std::chrono::milliseconds kMaxHold{1000};

class Connection {
 public:
  // Creates the socket and connects it (ZeroMQ connects lazily: nothing is known about the peer
  // yet). Fails with kInvalidArgument when ZeroMQ rejects the endpoint.
  static Result<std::shared_ptr<Connection>> open(const std::string& endpoint,
                                                  std::chrono::milliseconds timeout, int retries);
  ~Connection();

  // Sends `req` and returns the decoded reply of type Rep, or the broker's ErrorRep as an Error.
  // `hold` is how long the request asks the broker to hold its reply (Wait, Fetch): the deadline
  // is request_timeout + hold. kUnreachable when no reply came (after `retries` more attempts;
  // -1 = the configured number).
  template <typename Rep, typename Req>
  Result<Rep> call(const Req& req, std::chrono::milliseconds hold = std::chrono::milliseconds(0),
                   int retries = -1) {
    const std::uint64_t corr = next_corr_++;
    return read_reply<Rep>(
        request(encode(req, corr), corr, hold, retries < 0 ? retries_ : retries));
  }

  // A request sent by post(), to be given to collect() exactly once.
  struct Posted {
    std::uint64_t corr = 0;
    std::string frame;  // kept to ask again
    bool sent = false;
    std::uint64_t socket = 0;  // the socket it was sent on (see socket_generation_)
    std::chrono::milliseconds hold{0};
  };
  // Sends `req` without waiting for its reply; `hold` as for call(). Only for requests the broker
  // may see twice (a SubmitManyReq, whose job ids make a second one answer with the same jobs; a
  // WaitManyReq), since collect() asks again when the reply is late.
  template <typename Req>
  Posted post(const Req& req, std::chrono::milliseconds hold = std::chrono::milliseconds(0)) {
    Posted p;
    p.hold = hold;
    p.corr = next_corr_++;
    p.frame = encode(req, p.corr);
    auto sent = send_request(p.frame);
    p.sent = sent.ok() && sent.value();  // else collect() makes the request as call() does
    p.socket = socket_generation_;
    posted_.emplace(p.corr, std::nullopt);
    return p;
  }
  // The reply to a posted request, as call() gives it: awaited for the request timeout plus its
  // hold, then asked for again on a fresh socket as many times as call() would retry, and
  // kUnreachable after that. A request that could not be sent, or whose socket was replaced
  // meanwhile (by another request's retry: its reply is lost with it), is made as call() makes
  // it.
  template <typename Rep>
  Result<Rep> collect(Posted& p) {
    return read_reply<Rep>(take_posted(p));
  }

  const std::string& endpoint() const { return endpoint_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  const msg::InfoRep& info() const { return info_; }
  // See ClientOptions::outage_tolerance.
  std::chrono::milliseconds outage_tolerance() const { return outage_tolerance_; }
  void set_outage_tolerance(std::chrono::milliseconds t) { outage_tolerance_ = t; }
  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }
  void set_info(msg::InfoRep info) { info_ = std::move(info); }

  // Asks for a fresh InfoRep: kBrokerRestarted when the broker's epoch changed since connect.
  Status check_epoch();

 private:
  Connection(std::string endpoint, std::chrono::milliseconds timeout, int retries);
  void open_socket();
  // Sends `frame` and awaits its reply, `retries` more times on a fresh socket each when none
  // comes; `made` attempts were made before (for the error message).
  // A reply whose header was read; its body is decoded by read_reply(), into the type the caller
  // expects.
  struct Reply {
    std::uint64_t corr = 0;
    zmq::message_t frame;
  };
  Result<Reply> request(const std::string& frame, std::uint64_t corr,
                        std::chrono::milliseconds hold, int retries, int made = 0);
  Status reopen();
  Error unreachable(std::chrono::milliseconds budget, int attempts) const;
  // One attempt: send, then wait for the reply with our corr until `deadline`.
  Result<std::optional<Reply>> attempt(const std::string& frame, std::uint64_t corr,
                                       std::chrono::steady_clock::time_point deadline);
  // Sends [empty, frame] without blocking: false if the socket would block, an error if ZeroMQ
  // fails.
  Result<bool> send_request(const std::string& frame);
  // Waits for the reply with `corr` until `deadline` (none by then: an empty optional). Replies to
  // posted requests are kept in posted_; others are stale and dropped.
  Result<std::optional<Reply>> await(std::uint64_t corr,
                                     std::chrono::steady_clock::time_point deadline);
  Result<Reply> take_posted(Posted& p);
  // The reply as Rep, the broker's ErrorRep as an Error. A WaitManyRep or SubmitManyRep is read
  // without msgpack-c's object tree when it has the layout the broker gives it (reply_reader.hpp).
  template <typename Rep>
  Result<Rep> read_reply(Result<Reply> reply) const {
    if (!reply.ok()) return reply.error();
    const zmq::message_t& frame = reply.value().frame;
    if constexpr (std::is_same_v<Rep, msg::WaitManyRep>) {
      if (auto read = read_wait_many_rep(frame.data(), frame.size())) return std::move(read->rep);
    }
    if constexpr (std::is_same_v<Rep, msg::SubmitManyRep>) {
      if (auto read = read_submit_many_rep(frame.data(), frame.size())) return std::move(read->rep);
    }
    auto env = decode_envelope(frame.data(), frame.size());
    if (!env.ok()) return reply_error(env.error());
    if (env.value().type == proto::MsgType::kErrorRep) return broker_error(env.value());
    auto rep = decode_body<Rep>(env.value());
    if (!rep.ok()) return reply_error(rep.error());
    return rep;
  }
  Error broker_error(const Envelope& env) const;
  Error reply_error(const Error& decode_error) const;

  std::string endpoint_;
  std::chrono::milliseconds timeout_;
  int retries_;
  std::chrono::milliseconds outage_tolerance_{30000};
  std::uint64_t next_corr_ = 1;
  std::uint64_t socket_generation_ = 0;  // sockets opened so far (the one in use is the last)
  // Posted requests not yet collected, with their reply once it came.
  std::unordered_map<std::uint64_t, std::optional<Reply>> posted_;
  msg::InfoRep info_;
  zmq::context_t ctx_{1};
  std::optional<zmq::socket_t> sock_;  // declared after ctx_: closed before it
};

}  // namespace zwq::detail
