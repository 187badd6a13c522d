#include "zmq_io.hpp"

#include <cerrno>

namespace zwq::broker {

bool receive(zmq::socket_t& socket, Incoming& in) {
  in.parts = 0;
  try {
    zmq::message_t scratch;
    bool more = true;
    bool first = true;
    while (more) {
      zmq::message_t& target = in.parts < Incoming::kMaxParts ? in.frames[in.parts] : scratch;
      // Later frames of a multipart message arrive together with the first.
      const auto got =
          socket.recv(target, first ? zmq::recv_flags::dontwait : zmq::recv_flags::none);
      if (!got) return false;
      first = false;
      ++in.parts;
      more = target.more();
    }
    return true;
  } catch (const zmq::error_t&) {
    return false;
  }
}

SendResult send_frame(zmq::socket_t& socket, std::string_view frame, bool more) {
  try {
    auto flags = zmq::send_flags::dontwait;
    if (more) flags = flags | zmq::send_flags::sndmore;
    if (!socket.send(zmq::const_buffer(frame.data(), frame.size()), flags)) {
      return SendResult::kWouldBlock;
    }
    return SendResult::kSent;
  } catch (const zmq::error_t& e) {
    return e.num() == EHOSTUNREACH ? SendResult::kUnreachable : SendResult::kFailed;
  }
}

SendResult send_frames(zmq::socket_t& socket, std::initializer_list<std::string_view> frames) {
  std::size_t i = 0;
  for (std::string_view f : frames) {
    const SendResult r = send_frame(socket, f, ++i < frames.size());
    if (r != SendResult::kSent) return r;
  }
  return SendResult::kSent;
}

}  // namespace zwq::broker
