// A program that the fault tests kill before its destructors can run, as Ctrl-C or kill -9 would:
//   zwq_test_killed_program READY_FILE LOG_FILE ARRAY_NAME BIN_DIR [--exec]
// It leads a process group of its own (so that a test can send SIGINT to the whole group, as a
// terminal does), sends its stderr to LOG_FILE, creates the shared array ARRAY_NAME (owned) and
// ARRAY_NAME-kept (released), starts a LocalCluster of one worker and sums the array through it.
// Then it writes the cluster's directory to READY_FILE and waits to be killed; after 60 s it
// exits with status 3 by itself. With --exec it makes only the arrays, writes READY_FILE and
// becomes `sleep 60` (execv): the program has gone, the process has not.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "zwq/client.hpp"
#include "zwq/local_cluster.hpp"
#include "zwq/shared_array.hpp"

int main(int argc, char** argv) {
  const bool exec = argc == 6 && std::string(argv[5]) == "--exec";
  if (argc != 5 && !exec) {
    std::fprintf(stderr, "usage: %s READY_FILE LOG_FILE ARRAY_NAME BIN_DIR [--exec]\n", argv[0]);
    return 2;
  }
  const std::string ready = argv[1];
  const std::string name = argv[3];
  ::setpgid(0, 0);
  const int log = ::open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log < 0 || ::dup2(log, STDERR_FILENO) < 0) return 2;
  auto owned = zwq::SharedArray<double>::create(name, 1000);
  auto kept = zwq::SharedArray<double>::create(name + "-kept", 10);
  if (!owned.ok() || !kept.ok()) return 2;
  kept.value().release();
  for (auto& x : owned.value()) x = 1.0;
  const auto ready_with = [&](const std::string& text) {
    {
      std::ofstream out(ready + ".tmp");
      out << text << "\n";
    }
    std::rename((ready + ".tmp").c_str(), ready.c_str());
  };
  if (exec) {
    ready_with("exec");
    ::execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
    return 2;
  }

  zwq::LocalClusterOptions options;
  options.workers = 1;
  options.bin_dir = argv[4];
  zwq::LocalCluster cluster(options);
  auto sum =
      cluster.client().run(zwq::JobRequest::reduce("sum", owned.value()), std::chrono::seconds(30));
  if (!sum.ok() || sum.value().value != 1000.0) return 2;

  const std::string& address = cluster.address();  // ipc://DIR/sock/control
  ready_with(address.substr(6, address.rfind("/sock/") - 6));
  ::sleep(60);
  return 3;
}
