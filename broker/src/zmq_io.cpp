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

SendResult send_frames(zmq::socket_t& socket, std::initializer_list<std::string_view> frames) {
  std::size_t i = 0;
  try {
    for (std::string_view f : frames) {
      auto flags = zmq::send_flags::dontwait;
      if (++i < frames.size()) flags = flags | zmq::send_flags::sndmore;
      if (!socket.send(zmq::const_buffer(f.data(), f.size()), flags)) {
        return SendResult::kWouldBlock;
      }
    }
    return SendResult::kSent;
  } catch (const zmq::error_t& e) {
    return e.num() == EHOSTUNREACH ? SendResult::kUnreachable : SendResult::kFailed;
  }
}

}  // namespace zwq::broker
