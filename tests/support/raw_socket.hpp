// Test helper: talk to a broker's control endpoint with hand-made frames, bypassing the client
// library, to check what the broker does with requests the library would never send.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "zwq/codec.hpp"

namespace zwq::test {

class RawControl {
 public:
  explicit RawControl(const std::string& address) : socket_(ctx_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(address);
  }
  // Sends [empty, frame] and returns the reply frame, or empty after `timeout`.
  std::optional<std::string> ask(const std::string& frame,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    post(frame);
    return reply(timeout);
  }
  // Sends [empty, frame] without waiting for the reply (several requests may be out at once).
  void post(const std::string& frame) {
    socket_.send(zmq::message_t(), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(frame), zmq::send_flags::none);
  }
  // The next reply frame, or empty after `timeout`.
  std::optional<std::string> reply(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    zmq::message_t delim, body;
    (void)socket_.recv(delim);
    if (!delim.more()) return std::nullopt;
    (void)socket_.recv(body);
    return body.to_string();
  }
  template <typename M>
  std::optional<std::string> ask(const M& m, std::uint64_t corr = 1) {
    return ask(encode(m, corr));
  }

 private:
  zmq::context_t ctx_;
  zmq::socket_t socket_;
};

// Sends one frame on a fresh socket of `type` connected to `address` (fire and forget).
inline void send_raw(const std::string& address, zmq::socket_type type, const std::string& frame) {
  zmq::context_t ctx;
  zmq::socket_t s(ctx, type);
  s.set(zmq::sockopt::linger, 2000);
  s.connect(address);
  s.send(zmq::buffer(frame), zmq::send_flags::none);
}

}  // namespace zwq::test
