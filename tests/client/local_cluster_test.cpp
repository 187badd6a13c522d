// LocalCluster start-up failures, with stand-in zwq-broker / zwq-worker scripts. (Clusters of the
// real binaries are tested in tests/integration.)
#include "zwq/local_cluster.hpp"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "zwq/client.hpp"

namespace {

using namespace std::chrono_literals;

// A temporary bin directory holding scripts; removed with its files on destruction.
class FakeBinDir {
 public:
  FakeBinDir() {
    std::string tmpl = "/tmp/zwq-test-bin-XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    dir_ = tmpl;
  }
  ~FakeBinDir() {
    for (const auto& f : files_) ::unlink(f.c_str());
    ::rmdir(dir_.c_str());
  }
  // Writes an executable shell script `name` with `body`.
  void script(const std::string& name, const std::string& body) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0755);
    files_.push_back(path);
  }
  // A file the scripts may write (removed at the end).
  std::string file(const std::string& name) {
    files_.push_back(dir_ + "/" + name);
    return files_.back();
  }
  const std::string& path() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::string> files_;
};

zwq::LocalClusterOptions options_in(const FakeBinDir& bin) {
  zwq::LocalClusterOptions o;
  o.workers = 2;
  o.bin_dir = bin.path();
  o.start_timeout = 500ms;
  o.request_timeout = 200ms;
  return o;
}

pid_t read_pid(const std::string& path) {
  pid_t pid = -1;
  std::ifstream(path) >> pid;
  return pid;
}

bool pid_alive(pid_t pid) {
  return pid > 0 && ::kill(pid, 0) == 0;
}

}  // namespace

TEST_CASE("LocalCluster without its binaries throws SetupError naming them", "[client]") {
  FakeBinDir bin;
  CHECK_THROWS_WITH(zwq::LocalCluster(options_in(bin)),
                    Catch::Contains("zwq-broker") && Catch::Contains(bin.path()));
}

TEST_CASE("LocalCluster refuses a worker_nice outside 0-19 before it starts anything", "[client]") {
  FakeBinDir bin;
  const std::string started = bin.file("started");
  bin.script("zwq-broker", "touch " + started);
  bin.script("zwq-worker", "touch " + started);
  for (const int nice : {-1, 20}) {
    zwq::LocalClusterOptions o = options_in(bin);
    o.worker_nice = nice;
    CHECK_THROWS_WITH(zwq::LocalCluster(o), Catch::Contains("worker_nice"));
  }
  CHECK(::access(started.c_str(), F_OK) != 0);  // neither program ran
}

TEST_CASE("LocalCluster with a broker that exits early throws SetupError", "[client]") {
  FakeBinDir bin;
  bin.script("zwq-broker", "exit 3");
  bin.script("zwq-worker", "exit 0");
  CHECK_THROWS_WITH(zwq::LocalCluster(options_in(bin)),
                    Catch::Contains("exited with status 3") && Catch::Contains("ready"));
}

TEST_CASE("LocalCluster passes broker_args to zwq-broker after its own, and fails as it exits",
          "[client]") {
  FakeBinDir bin;
  const std::string args_file = bin.file("broker.args");
  bin.script("zwq-broker", "echo \"$@\" > " + args_file + "; exit 2");
  bin.script("zwq-worker", "exit 0");
  zwq::LocalClusterOptions o = options_in(bin);
  o.broker_args = {"--pipeline-depth=8", "--spin-us=0"};
  CHECK_THROWS_WITH(zwq::LocalCluster(o), Catch::Contains("exited with status 2"));
  std::string line;
  std::getline(std::ifstream(args_file), line);
  CHECK(line.find("--ready-file ") == 0);
  const std::string tail = " --pipeline-depth=8 --spin-us=0";
  REQUIRE(line.size() > tail.size());
  CHECK(line.compare(line.size() - tail.size(), tail.size(), tail) == 0);
}

TEST_CASE("LocalCluster with a broker that never gets ready times out and kills it", "[client]") {
  FakeBinDir bin;
  const std::string pid_file = bin.file("broker.pid");
  bin.script("zwq-broker", "echo $$ > " + pid_file + "; exec sleep 30");
  bin.script("zwq-worker", "exit 0");
  CHECK_THROWS_WITH(zwq::LocalCluster(options_in(bin)), Catch::Contains("within 500 ms"));
  CHECK_FALSE(pid_alive(read_pid(pid_file)));
}

TEST_CASE("LocalCluster whose broker does not answer throws and stops the workers", "[client]") {
  FakeBinDir bin;
  const std::string pid_file = bin.file("worker.pid");
  // The broker says it is ready at an address where nothing listens.
  bin.script("zwq-broker",
             "while [ \"$1\" != --ready-file ]; do shift; done\n"
             "echo ipc:///tmp/zwq-test-nobody-$$ > \"$2.tmp\" && mv \"$2.tmp\" \"$2\"\n"
             "exec sleep 30");
  bin.script("zwq-worker", "echo $$ > " + pid_file + "; exec sleep 30");
  CHECK_THROWS_WITH(zwq::LocalCluster(options_in(bin)), Catch::Contains("unreachable"));
  CHECK_FALSE(pid_alive(read_pid(pid_file)));
}
