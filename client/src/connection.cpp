#include "connection.hpp"

#include <cerrno>
#include <iterator>
#include <vector>
#include <zmq_addon.hpp>

#include "zwq/ipc_check.hpp"

namespace zwq::detail {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The corr of a frame that starts [version, type, corr, ...] with this protocol's version.
bool read_corr(const void* data, std::size_t size, std::uint64_t& corr) {
  MsgpackReader r(static_cast<const char*>(data), size);
  std::uint64_t type = 0;
  return read_frame_head(r, type, corr);
}

}  // namespace

Connection::Connection(std::string endpoint, milliseconds timeout, int retries)
    : endpoint_(std::move(endpoint)), timeout_(timeout), retries_(retries < 0 ? 0 : retries) {}

// The socket must close before the context terminates; linger 0 means it never blocks.
Connection::~Connection() {
  sock_.reset();
}

Result<std::shared_ptr<Connection>> Connection::open(const std::string& endpoint,
                                                     milliseconds timeout, int retries) {
  std::shared_ptr<Connection> conn(new Connection(endpoint, timeout, retries));
  try {
    conn->open_socket();
  } catch (const zmq::error_t& e) {
    return make_error(ErrorCode::kInvalidArgument,
                      "cannot connect to broker address '" + endpoint + "': " + e.what());
  }
  return conn;
}

void Connection::open_socket() {
  ++socket_generation_;
  sock_.reset();
  sock_.emplace(ctx_, zmq::socket_type::dealer);
  // Requests of a dead socket must not keep the process alive at exit.
  sock_->set(zmq::sockopt::linger, 0);
  sock_->connect(endpoint_);
}

Result<Connection::Reply> Connection::request(const std::string& frame, std::uint64_t corr,
                                              milliseconds hold, int retries, int made) {
  const milliseconds budget = timeout_ + hold;
  for (int attempt_no = 0; attempt_no <= retries; ++attempt_no) {
    auto reply = attempt(frame, corr, Clock::now() + budget);
    if (!reply.ok()) return reply.error();
    if (reply.value()) return std::move(*reply.value());
    if (Status s = reopen(); !s.ok()) return s.error();
  }
  return unreachable(budget, made + retries + 1);
}

// A late reply to an unanswered request must not reach the next one: a fresh socket.
Status Connection::reopen() {
  try {
    open_socket();
  } catch (const zmq::error_t& e) {
    return make_error(ErrorCode::kInternal,
                      "cannot reopen socket to " + endpoint_ + ": " + e.what());
  }
  return Status::Ok();
}

Error Connection::unreachable(milliseconds budget, int attempts) const {
  std::string msg =
      "no reply from broker at " + endpoint_ + " within " + std::to_string(budget.count()) + " ms";
  if (attempts > 1) msg += " (" + std::to_string(attempts) + " attempts)";
  if (const IpcCheck check = probe_ipc_endpoint(endpoint_); check.kind != IpcCheck::kNone) {
    msg += ": " + check.why;
  }
  return make_error(ErrorCode::kUnreachable, msg);
}

Result<std::optional<Connection::Reply>> Connection::attempt(const std::string& frame,
                                                             std::uint64_t corr,
                                                             Clock::time_point deadline) {
  auto sent = send_request(frame);
  if (!sent.ok()) return sent.error();
  if (!sent.value()) return std::optional<Reply>();
  return await(corr, deadline);
}

Result<bool> Connection::send_request(const std::string& frame) {
  try {
    // With no peer yet, a DEALER still queues the message on the pipe it made at connect().
    return sock_->send(zmq::message_t(), zmq::send_flags::sndmore | zmq::send_flags::dontwait) &&
           sock_->send(zmq::buffer(frame), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    return make_error(ErrorCode::kInternal, "cannot send to " + endpoint_ + ": " + e.what());
  }
}

Result<std::optional<Connection::Reply>> Connection::await(std::uint64_t corr,
                                                           Clock::time_point deadline) {
  using Awaited = std::optional<Reply>;
  while (true) {
    const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
    if (left <= milliseconds(0)) return Awaited();
    std::vector<zmq::message_t> parts;
    try {
      zmq::pollitem_t item{sock_->handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, left) == 0) continue;
      if (!zmq::recv_multipart(*sock_, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
        continue;
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;  // a signal handler ran; the deadline still holds
      return make_error(ErrorCode::kInternal, "cannot receive from " + endpoint_ + ": " + e.what());
    }
    if (parts.size() != 2 || parts[0].size() != 0) continue;  // not a control reply: drop it
    // Only the header is read here: [version, type, corr, ...] of this protocol version. A frame
    // without one is decoded whole, for its error.
    Reply reply;
    if (!read_corr(parts[1].data(), parts[1].size(), reply.corr)) {
      auto env = decode_envelope(parts[1].data(), parts[1].size());
      if (!env.ok()) return reply_error(env.error());
      reply.corr = env.value().corr;
    }
    reply.frame = std::move(parts[1]);
    if (reply.corr == corr) return Awaited(std::move(reply));
    // The reply to a request posted earlier and not collected yet: kept. Others are stale.
    auto it = posted_.find(reply.corr);
    if (it != posted_.end() && !it->second) it->second = std::move(reply);
  }
}

Result<Connection::Reply> Connection::take_posted(Posted& p) {
  auto it = posted_.find(p.corr);
  if (it != posted_.end() && it->second) {
    Reply reply = std::move(*it->second);
    posted_.erase(it);
    return reply;
  }
  posted_.erase(p.corr);
  // Sent on the socket in use: that was the first attempt, and its answer is awaited as call()
  // awaits one. Not sent, or sent on a socket since replaced (its answer cannot come): the
  // request is made as call() makes it.
  if (!p.sent || p.socket != socket_generation_) return request(p.frame, p.corr, p.hold, retries_);
  const milliseconds budget = timeout_ + p.hold;
  auto reply = await(p.corr, Clock::now() + budget);
  if (!reply.ok()) return reply.error();
  if (reply.value()) return std::move(*reply.value());
  if (Status s = reopen(); !s.ok()) return s.error();
  if (retries_ == 0) return unreachable(budget, 1);
  return request(p.frame, p.corr, p.hold, retries_ - 1, 1);
}

Error Connection::broker_error(const Envelope& env) const {
  auto rep = decode_body<msg::ErrorRep>(env);
  if (!rep.ok()) return reply_error(rep.error());
  Error e{rep.value().code, rep.value().message};
  if (e.code == ErrorCode::kOk) e.code = ErrorCode::kInternal;
  if (e.message.empty()) e.message = "broker at " + endpoint_ + " refused the request";
  return e;
}

Error Connection::reply_error(const Error& decode_error) const {
  return make_error(decode_error.code, "cannot read the reply of the broker at " + endpoint_ +
                                           ": " + decode_error.message);
}

Status Connection::check_epoch() {
  auto info = call<msg::InfoRep>(msg::InfoReq{});
  if (!info.ok()) return info.error();
  if (info.value().epoch == info_.epoch) return Status::Ok();
  return make_error(ErrorCode::kBrokerRestarted,
                    "the broker at " + endpoint_ + " restarted (epoch " +
                        std::to_string(info_.epoch) + ", now " +
                        std::to_string(info.value().epoch) + "): jobs submitted before are gone");
}

}  // namespace zwq::detail
