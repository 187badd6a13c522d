#include "endpoints.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string_view>
#include <system_error>

#include "zwq/status.hpp"

namespace zwq::broker {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kTcp = "tcp://";
constexpr std::string_view kIpc = "ipc://";
constexpr std::string_view kControlName = "/control";

BindPlan ipc_plan(const std::string& dir) {
  BindPlan plan;
  plan.control = "ipc://" + dir + "/control";
  plan.tasks = "ipc://" + dir + "/tasks";
  plan.results = "ipc://" + dir + "/results";
  plan.events = "ipc://" + dir + "/events";
  return plan;
}

BindPlan tcp_plan(const std::string& bind) {
  const std::string rest = bind.substr(kTcp.size());
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) {
    throw SetupError("--bind " + bind + ": expected tcp://HOST:PORT or tcp://HOST:*");
  }
  const std::string host = rest.substr(0, colon);
  const std::string port = rest.substr(colon + 1);
  BindPlan plan;
  if (port == "*") {
    plan.control = plan.tasks = plan.results = plan.events = "tcp://" + host + ":*";
    return plan;
  }
  char* end = nullptr;
  errno = 0;
  const unsigned long p = std::strtoul(port.c_str(), &end, 10);
  if (errno != 0 || end == nullptr || *end != '\0' || p == 0 || p + 3 > 65535) {
    throw SetupError("--bind " + bind +
                     ": the port must be * or 1..65532 (it and the next three "
                     "ports are used)");
  }
  auto at = [&](unsigned long k) { return "tcp://" + host + ":" + std::to_string(p + k); };
  plan.control = at(0);
  plan.tasks = at(1);
  plan.results = at(2);
  plan.events = at(3);
  return plan;
}

}  // namespace

PrivateDir& PrivateDir::operator=(PrivateDir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

void PrivateDir::remove() noexcept {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
  path_.clear();
}

PrivateDir PrivateDir::create_unique() {
  std::string parent = "/tmp";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg != '\0') {
    std::error_code ec;
    if (fs::is_directory(xdg, ec)) parent = xdg;
  }
  std::random_device rd;
  for (int tries = 0; tries < 16; ++tries) {
    char name[64];
    std::snprintf(name, sizeof name, "zwq-%ld-%08x", static_cast<long>(::getpid()),
                  static_cast<unsigned>(rd()));
    const std::string path = parent + "/" + name;
    if (::mkdir(path.c_str(), 0700) == 0) return PrivateDir(path);
    if (errno != EEXIST) {
      throw SetupError("cannot make the broker's ipc directory " + path + ": " +
                       std::strerror(errno));
    }
  }
  throw SetupError("cannot make a fresh ipc directory under " + parent);
}

BindPlan plan_endpoints(const std::string& bind) {
  if (bind.empty()) {
    PrivateDir dir = PrivateDir::create_unique();
    BindPlan plan = ipc_plan(dir.path());
    plan.dir = std::move(dir);
    return plan;
  }
  if (bind.rfind(kTcp, 0) == 0) return tcp_plan(bind);
  if (bind.rfind(kIpc, 0) == 0) {
    std::string path = bind.substr(kIpc.size());
    if (path.size() <= kControlName.size() ||
        path.compare(path.size() - kControlName.size(), kControlName.size(), kControlName) != 0) {
      throw SetupError("--bind " + bind + ": expected ipc://DIR/control");
    }
    const std::string dir = path.substr(0, path.size() - kControlName.size());
    BindPlan plan = ipc_plan(dir);
    std::error_code ec;
    if (!fs::exists(dir, ec)) {
      if (::mkdir(dir.c_str(), 0700) != 0) {
        throw SetupError("cannot make the ipc directory " + dir + ": " + std::strerror(errno));
      }
      plan.dir = PrivateDir(dir);
    } else if (!fs::is_directory(dir, ec)) {
      throw SetupError("--bind " + bind + ": " + dir + " is not a directory");
    }
    return plan;
  }
  throw SetupError("--bind " + bind +
                   ": expected ipc://DIR/control, tcp://HOST:PORT or "
                   "tcp://HOST:*");
}

void write_ready_file(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.flush();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw SetupError("cannot write the ready file " + tmp);
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove(tmp, ec);
    throw SetupError("cannot rename " + tmp + " to " + path + ": " + why);
  }
}

}  // namespace zwq::broker
