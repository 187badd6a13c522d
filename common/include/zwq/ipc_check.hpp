// Why an ipc:// endpoint may not answer, as its socket file tells it: for the error a client or a
// worker gives when a broker does not reply, in place of a bare timeout.
//
// Only "ipc://PATH" endpoints over a file path are looked at; tcp://, abstract "ipc://@name" and
// anything else give kNone, as does a socket this process may connect to. Neither call blocks.
// Permissions are judged for the effective user, as connect(2) judges them (root passes every
// check, so kDenied is only ever seen by other users).
#pragma once

#include <string>

namespace zwq {

struct IpcCheck {
  enum Kind {
    kNone,       // nothing stands in the way (or the endpoint is not one this can check)
    kMissing,    // no file at the path: no broker is bound there (yet)
    kDenied,     // the file or a directory above it is not open to this user: lasting
    kNotSocket,  // the path names something other than a socket: lasting
    kRefused,    // a socket no one listens on: the file of a broker that stopped
  };
  Kind kind = kNone;
  std::string why;  // for messages: the path, and what stands in the way ("" with kNone)

  // Waiting cannot help: the endpoint is wrong for this user whatever the broker does.
  bool lasting() const { return kind == kDenied || kind == kNotSocket; }
};

// Looks at the socket file only (stat(2), faccessat(2)); never connects.
IpcCheck check_ipc_path(const std::string& endpoint);

// check_ipc_path(), and when the socket is there and open to this user, a non-blocking connect(2)
// to it, closed at once, which tells kRefused from a listener (kNone).
IpcCheck probe_ipc_endpoint(const std::string& endpoint);

}  // namespace zwq
