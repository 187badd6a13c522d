// Endpoint planning, the private ipc directory and the ready file.
#include "endpoints.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "zwq/status.hpp"

using namespace zwq;
using namespace zwq::broker;
namespace fs = std::filesystem;

TEST_CASE("endpoints tcp PORT binds control on PORT and the rest on the next three", "[broker]") {
  BindPlan p = plan_endpoints("tcp://127.0.0.1:5550");
  CHECK(p.control == "tcp://127.0.0.1:5550");
  CHECK(p.tasks == "tcp://127.0.0.1:5551");
  CHECK(p.results == "tcp://127.0.0.1:5552");
  CHECK(p.events == "tcp://127.0.0.1:5553");
  CHECK_FALSE(p.dir.owns());
}

TEST_CASE("endpoints tcp star binds four ephemeral ports", "[broker]") {
  BindPlan p = plan_endpoints("tcp://*:*");
  CHECK(p.control == "tcp://*:*");
  CHECK(p.events == "tcp://*:*");
}

TEST_CASE("endpoints refuse malformed addresses", "[broker]") {
  for (const char* bad : {"tcp://host", "tcp://host:", "tcp://host:abc", "tcp://host:65533",
                          "tcp://host:0", "ipc:///tmp/x/ctl", "udp://x:1", "nonsense"}) {
    CHECK_THROWS_AS(plan_endpoints(bad), SetupError);
  }
}

TEST_CASE("endpoints private dir is mode 0700 and removed with its contents", "[broker]") {
  std::string path;
  {
    BindPlan p = plan_endpoints("");
    REQUIRE(p.dir.owns());
    path = p.dir.path();
    CHECK(p.control == "ipc://" + path + "/control");
    CHECK(p.tasks == "ipc://" + path + "/tasks");
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    CHECK(fs::path(path).filename().string().rfind("zwq-", 0) == 0);
    std::ofstream(path + "/control") << "stale socket";
  }
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("endpoints ipc DIR/control uses DIR and keeps a directory it did not make", "[broker]") {
  const fs::path dir =
      fs::temp_directory_path() / ("zwq-endpoints-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    BindPlan p = plan_endpoints("ipc://" + dir.string() + "/control");
    CHECK(p.control == "ipc://" + dir.string() + "/control");
    CHECK(p.results == "ipc://" + dir.string() + "/results");
    CHECK_FALSE(p.dir.owns());
  }
  CHECK(fs::exists(dir));
  fs::remove_all(dir);
  {
    BindPlan p = plan_endpoints("ipc://" + dir.string() + "/control");
    CHECK(p.dir.owns());  // made it, so removes it
  }
  CHECK_FALSE(fs::exists(dir));
}

TEST_CASE("endpoints ready file holds the control address after an atomic rename", "[broker]") {
  const fs::path file =
      fs::temp_directory_path() / ("zwq-ready-test-" + std::to_string(::getpid()));
  write_ready_file(file.string(), "tcp://h:1\n");
  std::ifstream in(file);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(content == "tcp://h:1\n");
  fs::remove(file);
  CHECK_THROWS_AS(write_ready_file("/nonexistent-dir/ready", "x"), SetupError);
}
