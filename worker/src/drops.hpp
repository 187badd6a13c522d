// What the worker does with input it cannot use: it counts every dropped message (logging a
// flood sparsely) and reads the rest of a malformed multipart message off the socket. Shared by
// the Connection's loop and the compute thread; each calls it on its own sockets only.
#pragma once

#include <spdlog/logger.h>

#include <string>
#include <zmq.hpp>

#include "counters.hpp"

namespace zwq::worker {

// Counts a dropped message and logs the first 10, then every 1000th.
inline void note_drop(Counters& counters, spdlog::logger& log, const std::string& worker_id,
                      const char* what, const std::string& why) {
  const auto n = counters.dropped_messages.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n <= 10 || n % 1000 == 0) {
    log.warn("worker {}: dropped {}: {} ({} dropped so far)", worker_id, what, why, n);
  }
}

// Receives the rest of a multipart message after `last`; true if there was any (a malformed
// envelope).
inline bool discard_more(zmq::socket_t& s, const zmq::message_t& last) {
  bool any = false;
  for (bool more = last.more(); more;) {
    zmq::message_t part;
    if (!s.recv(part, zmq::recv_flags::dontwait)) break;
    more = part.more();
    any = true;
  }
  return any;
}

}  // namespace zwq::worker
