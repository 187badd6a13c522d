// Test helper: network namespaces that stand for the hosts of a cluster on this one machine.
// The head namespace holds a bridge at kHeadAddress (10.77.0.1/24); node k (1-based) is cabled
// to it by a veth pair and has 10.77.0.(10 + k). Traffic stays inside the namespaces the test
// created. On destruction every process left in them is killed and they are deleted.
// Needs root and iproute2 (`ip netns`). Not root, the test process exits with kSkipped, which
// ctest reports as a skipped test (SKIP_RETURN_CODE); without `ip netns`, the constructor throws.
// Namespaces that a killed test process left behind are removed by the next one.
//
// The namespaces share this machine's host name and /dev/shm unless name_hosts() gives each host
// its own of both, as real hosts have.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "command.hpp"

namespace zwq::test {

class NetnsHosts {
  static constexpr const char* kPrefix = "zwq-ns-";

 public:
  static constexpr const char* kHeadAddress = "10.77.0.1";
  static constexpr int kSkipped = 77;

  NetnsHosts(const std::string& stem, int nodes) {
    if (::geteuid() != 0) {
      std::fprintf(stderr, "skipped: network namespaces need root\n");
      std::_Exit(kSkipped);
    }
    remove_stale();
    base_ = std::string(kPrefix) + stem + "-" + std::to_string(::getpid());
    head_ = base_ + "-head";
    for (int k = 1; k <= nodes; ++k) nodes_.push_back(base_ + "-n" + std::to_string(k));
    try {
      add(head_);
      ip("-n " + head_ + " link add br0 type bridge");
      ip("-n " + head_ + " addr add " + kHeadAddress + "/24 dev br0");
      ip("-n " + head_ + " link set br0 up");
      for (int k = 1; k <= nodes; ++k) {
        const std::string& n = node(k);
        // (append, not "v" + ...: GCC 12 warns about that one with -Wrestrict, wrongly)
        const std::string v = std::string("v").append(std::to_string(k));
        add(n);
        ip("-n " + head_ + " link add " + v + " type veth peer name e0 netns " + n);
        ip("-n " + head_ + " link set " + v + " master br0");
        ip("-n " + head_ + " link set " + v + " up");
        ip("-n " + n + " addr add 10.77.0." + std::to_string(10 + k) + "/24 dev e0");
        ip("-n " + n + " link set e0 up");
      }
    } catch (...) {
      remove_all();
      throw;
    }
  }
  ~NetnsHosts() { remove_all(); }
  NetnsHosts(const NetnsHosts&) = delete;
  NetnsHosts& operator=(const NetnsHosts&) = delete;

  const std::string& head() const { return head_; }
  const std::string& node(int k) const { return nodes_.at(static_cast<std::size_t>(k - 1)); }

  // `command` as run on `host` (a shell command line).
  static std::string on(const std::string& host, const std::string& command) {
    return "ip netns exec " + host + " " + command;
  }

  // Gives each host (head and nodes) its namespace's name as host name and an empty /dev/shm of
  // its own: one process per host, its anchor, holds a UTS and a mount namespace so, and named()
  // and named_run_on() enter them. The anchors are not among pids().
  void name_hosts() {
    anchors_dir_ = "/tmp/" + base_ + "-anchors";
    std::filesystem::remove_all(anchors_dir_);  // (one a crashed test of this pid left)
    std::filesystem::create_directories(anchors_dir_);
    for (const std::string& host : all()) {
      const std::string file = anchors_dir_ + "/" + host;
      const std::string script = "mount -t tmpfs zwq-own-shm /dev/shm && hostname " + host +
                                 " && echo $$ > " + file + ".tmp && mv " + file + ".tmp " + file +
                                 " && exec sleep 3600";
      (void)run_command(on(host, "unshare --mount --propagation private --uts sh -c " +
                                     sh_quote(script) + " </dev/null >/dev/null 2>&1 &"));
      pid_t pid = 0;
      for (int i = 0; i < 500 && pid == 0; ++i) {
        std::ifstream(file) >> pid;
        if (pid == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (pid == 0) throw std::runtime_error("the anchor of " + host + " did not start");
      anchors_.push_back(pid);
    }
  }
  // `command` as run on `host` under its own name and over its own /dev/shm (name_hosts()).
  std::string named(const std::string& host, const std::string& command) const {
    std::string pid;
    std::ifstream(anchors_dir_ + "/" + host) >> pid;
    return "nsenter -t " + pid + " -n -m -u " + command;
  }
  // zwq-cluster's --run-on for the same.
  std::string named_run_on() const {
    return "nsenter -t \"$(cat " + anchors_dir_ + "/{host})\" -n -m -u sh -s";
  }

  // Plugs node k's cable in or pulls it out (its end of the veth pair goes up or down).
  void set_link(int k, bool up) { ip("-n " + node(k) + " link set e0 " + (up ? "up" : "down")); }

  // The processes running in the namespaces.
  std::vector<pid_t> pids() const {
    std::vector<pid_t> out;
    for (const std::string& ns : all()) {
      std::istringstream in(run_command("ip netns pids " + ns + " 2>/dev/null").out);
      for (pid_t p; in >> p;) {
        if (std::find(anchors_.begin(), anchors_.end(), p) == anchors_.end()) out.push_back(p);
      }
    }
    return out;
  }

 private:
  std::vector<std::string> all() const {
    std::vector<std::string> v{head_};
    v.insert(v.end(), nodes_.begin(), nodes_.end());
    return v;
  }
  void add(const std::string& ns) {
    ip("netns add " + ns);
    added_.push_back(ns);
    ip("-n " + ns + " link set lo up");
  }
  static void ip(const std::string& args) {
    const CommandResult r = run_command("ip " + args + " 2>&1");
    if (r.exit_code != 0) {
      throw std::runtime_error("`ip " + args + "` failed (" + r.out +
                               "): the deploy tests need root and iproute2's `ip netns`");
    }
  }
  // Namespaces of ours ("zwq-ns-STEM-PID-...") whose test process is gone, with what runs in them.
  static void remove_stale() {
    std::istringstream list(run_command("ip netns list 2>/dev/null").out);
    for (std::string line; std::getline(list, line);) {
      const std::string ns = line.substr(0, line.find(' '));
      if (ns.rfind(kPrefix, 0) != 0) continue;
      const auto dash = ns.find('-', std::strlen(kPrefix));
      const auto end = ns.find('-', dash + 1);
      if (dash == std::string::npos || end == std::string::npos) continue;
      const pid_t owner =
          static_cast<pid_t>(std::atol(ns.substr(dash + 1, end - dash - 1).c_str()));
      if (owner <= 0 || ::kill(owner, 0) == 0 || errno != ESRCH) continue;
      std::istringstream pids(run_command("ip netns pids " + ns + " 2>/dev/null").out);
      for (pid_t p; pids >> p;) ::kill(p, SIGKILL);
      (void)run_command("ip netns del " + ns + " 2>&1");
      std::error_code ignored;
      std::filesystem::remove_all("/tmp/" + ns.substr(0, end) + "-anchors", ignored);
    }
  }
  void remove_all() {
    for (pid_t p : pids()) ::kill(p, SIGKILL);
    for (pid_t p : anchors_) ::kill(p, SIGKILL);
    anchors_.clear();
    for (const std::string& ns : added_) (void)run_command("ip netns del " + ns + " 2>&1");
    added_.clear();
    if (!anchors_dir_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(anchors_dir_, ignored);
    }
  }

  std::string base_;  // "zwq-ns-STEM-PID"
  std::string anchors_dir_;
  std::vector<pid_t> anchors_;
  std::string head_;
  std::vector<std::string> nodes_;
  std::vector<std::string> added_;
};

}  // namespace zwq::test
