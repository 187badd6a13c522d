// Thin, non-throwing helpers over cppzmq for the poll loop: receive one whole multipart message,
// send a few frames. Errors other than "would block" and "no such peer" are reported as
// failures, never thrown.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <string_view>
#include <zmq.hpp>

namespace zwq::broker {

// One received message: the first kMaxParts frames are kept, `parts` counts them all.
struct Incoming {
  static constexpr std::size_t kMaxParts = 4;  // no endpoint uses more than 3 frames
  std::array<zmq::message_t, kMaxParts> frames;
  std::size_t parts = 0;

  std::string_view view(std::size_t i) const {
    return {static_cast<const char*>(frames[i].data()), frames[i].size()};
  }
};

// Receives one message without blocking. False when none is waiting (or on an error).
bool receive(zmq::socket_t& socket, Incoming& in);

enum class SendResult { kSent, kWouldBlock, kUnreachable, kFailed };

// Sends one frame without blocking, `more` of the message to follow. Same results as send_frames.
SendResult send_frame(zmq::socket_t& socket, std::string_view frame, bool more);

// Sends the frames as one message without blocking. kUnreachable: a ROUTER_MANDATORY socket
// has no peer of that identity.
SendResult send_frames(zmq::socket_t& socket, std::initializer_list<std::string_view> frames);

}  // namespace zwq::broker
