// Test helper: a process that stands for one on another machine as far as memory goes. It runs
// in a mount namespace whose /dev/shm is an empty tmpfs of its own (so it sees none of this
// host's /dev/shm files, and memory_id() differs), optionally under another host name (a UTS
// namespace). Needs root and util-linux's unshare; not root, the test exits with kSkipped
// (ctest's SKIP_RETURN_CODE).
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "command.hpp"

namespace zwq::test {

struct OwnMemory {
  static constexpr int kSkipped = 77;

  std::string host;   // its host name; empty = this host's
  std::string setup;  // a shell command run there first (say, creating an array in its /dev/shm)

  static void require_root() {
    if (::geteuid() != 0) {
      std::fprintf(stderr, "skipped: a /dev/shm of its own needs a mount namespace (root)\n");
      std::_Exit(kSkipped);
    }
  }

  // The argv that runs `command` (program and arguments) there.
  std::vector<std::string> argv(const std::vector<std::string>& command) const {
    std::string script = "mount -t tmpfs zwq-own-shm /dev/shm";
    if (!host.empty()) script += " && hostname " + sh_quote(host);
    if (!setup.empty()) script += " && " + setup;
    script += " && exec \"$@\"";
    std::vector<std::string> out = {"/usr/bin/unshare", "--mount", "--propagation", "private"};
    if (!host.empty()) out.push_back("--uts");
    out.insert(out.end(), {"sh", "-c", script, "sh"});
    out.insert(out.end(), command.begin(), command.end());
    return out;
  }
};

}  // namespace zwq::test
