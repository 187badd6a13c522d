#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli.hpp"

namespace zwq::cli {

void add_broker_option(CLI::App* cmd, std::string& address) {
  cmd->add_option("--broker", address, "Broker control endpoint (default: $ZWQ_BROKER)");
}

std::optional<Client> connect_or_report(const std::string& address, int& exit_code,
                                        const ConnectOptions& how) {
  ClientOptions options;
  options.broker = address;
  if (how.timeout) {
    // (At least 250 ms: a reachable broker answers well within it, even over tcp, and
    // `--timeout 0`, one look at the job, must not find it unreachable.)
    // (Clamped as a double first: a day is more than any wait needs, and the cast stays defined.)
    const double ms = std::clamp(*how.timeout * 1000, 250.0, 86400e3);
    const auto bound = std::chrono::milliseconds(static_cast<long>(ms));
    if (how.bounds_requests) {
      options.connect_timeout = options.request_timeout = bound;
    } else {  // the timeout is the job's; a request takes at most the usual time
      options.connect_timeout = std::min(bound, options.request_timeout);
    }
  }
  if (options.broker.empty()) {
    if (const char* env = std::getenv("ZWQ_BROKER")) options.broker = env;
  }
  if (options.broker.empty()) {
    exit_code = usage_error(
        "no broker address: pass --broker ADDR or set ZWQ_BROKER (`zwq local` starts a broker "
        "and prints it)");
    return std::nullopt;
  }
  if (options.broker.find("://") == std::string::npos) {
    exit_code = usage_error("'" + options.broker +
                            "' is not a broker address: give tcp://HOST:PORT or ipc://PATH");
    return std::nullopt;
  }
  auto client = Client::connect(options);
  if (!client.ok()) {
    if (how.on_failure) how.on_failure(client.error());
    exit_code = report(client.error());
    return std::nullopt;
  }
  return std::move(client).value();
}

int report(const Error& error) {
  std::cerr << "zwq: " << error.to_string() << "\n";
  return kExitFailed;
}

int usage_error(const std::string& message) {
  std::cerr << "zwq: " << message << "\n";
  return kExitUsage;
}

namespace {
std::string format_g(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}
}  // namespace

std::string format_exact(double v) {
  return format_g(v, 17);
}

std::string format_short(double v) {
  return format_g(v, 15);
}

std::string format_duration(double seconds) {
  char buf[64];
  if (seconds < 1) {
    std::snprintf(buf, sizeof buf, "%.0f ms", seconds * 1000);
  } else if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.2f s", seconds);
  } else {
    const long s = static_cast<long>(seconds);
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  }
  return buf;
}

void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size() && c < width.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
    }
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t c = 0; c < row.size() && c < width.size(); ++c) {
      std::string cell = row[c];
      if (c + 1 < row.size()) cell.resize(width[c] + 2, ' ');
      line += cell;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
}

std::string dataset_uri(const std::string& name) {
  if (name.find(':') != std::string::npos || name.find('/') != std::string::npos) return name;
  return "shm:" + name;
}

}  // namespace zwq::cli
