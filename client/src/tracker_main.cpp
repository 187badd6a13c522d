// zwq-tracker --owner PID: started by the client library (client/src/shm_tracker.hpp) with its
// socket on descriptor 3; not meant to be run by hand.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "shm_tracker.hpp"

int main(int argc, char** argv) {
  char* end = nullptr;
  const long owner =
      argc == 3 && std::strcmp(argv[1], "--owner") == 0 ? std::strtol(argv[2], &end, 10) : 0;
  if (owner <= 0 || end == nullptr || *end != '\0') {
    std::fprintf(stderr,
                 "usage: zwq-tracker --owner PID (started by zwq programs, with the socket of "
                 "that process on descriptor 3)\n");
    return 2;
  }
  return zwq::detail::run_tracker(3, static_cast<pid_t>(owner));
}
