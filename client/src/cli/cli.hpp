// Private to the `zwq` command: how its subcommands are registered, and what they share.
//
// Each command group (submit.cpp, wait.cpp, status.cpp, array.cpp, local.cpp, kernels.cpp) adds
// its subcommands to the CLI11 app and a function that runs one once the command line is parsed.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "zwq/client.hpp"

namespace zwq::cli {

// Exit codes of every zwq command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the job or the request failed (message on stderr)
inline constexpr int kExitUsage = 2;   // bad command line or missing broker address
inline constexpr int kExitTimeout = 3;  // --timeout passed first: the job keeps running

struct Command {
  CLI::App* app;             // the (leaf) subcommand
  std::function<int()> run;  // runs it; returns the exit code
};
using Commands = std::vector<Command>;

void add_submit_command(CLI::App& app, Commands& commands);
void add_wait_commands(CLI::App& app, Commands& commands);    // wait stream
void add_status_commands(CLI::App& app, Commands& commands);  // status workers cancel shutdown
void add_kernels_command(CLI::App& app, Commands& commands);
void add_array_commands(CLI::App& app, Commands& commands);
void add_local_command(CLI::App& app, Commands& commands);

// Adds --broker ADDR to `cmd`, bound to `address`.
void add_broker_option(CLI::App* cmd, std::string& address);
// How a command connects: within `timeout` seconds when it has one (--timeout; at least 250 ms,
// and at most the usual request timeout unless it bounds requests too), and what else it prints
// when the broker cannot be reached (the JSON object of a --json command).
struct ConnectOptions {
  std::optional<double> timeout;
  // The timeout bounds each request too (status, workers, cancel, shutdown, kernels: --timeout
  // is how long the command may take), not only reaching the broker (submit, wait: it is the
  // job's).
  bool bounds_requests = false;
  std::function<void(const Error&)> on_failure;
};
// Connects to --broker or $ZWQ_BROKER. On failure prints why and sets `exit_code` (usage when
// no address is known, failure otherwise, after calling on_failure).
std::optional<Client> connect_or_report(const std::string& address, int& exit_code,
                                        const ConnectOptions& options = {});

// Prints "zwq: <code name>: <message>" on stderr; returns kExitFailed.
int report(const Error& error);
// Prints "zwq: <message>" on stderr; returns kExitUsage.
int usage_error(const std::string& message);

// For options that take a count, a size or seconds: "-5" is refused, not read as 2^64 - 5.
inline const CLI::Validator kNotNegative(
    [](std::string& text) {
      const auto first = text.find_first_not_of(' ');
      if (first != std::string::npos && text[first] == '-')
        return std::string("must not be negative");
      // (inf and nan parse as doubles; no timeout or count is either.)
      if (text.find_first_of("iInN") != std::string::npos)
        return std::string("must be a finite number");
      return std::string();
    },
    "NOT NEGATIVE");

// %.17g: enough digits to read back the same double.
std::string format_exact(double v);
// %.15g: a number as a person wrote it (1e39, not 9.9999999999999994e+38), for messages.
std::string format_short(double v);
// "1.23 s", "850 ms", "2m03s".
std::string format_duration(double seconds);

// A plain text table: a header row, then rows; columns padded to their widest cell.
void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);

// "shm:NAME" for a bare name; anything with ':' or '/' is taken as a URI or path already.
std::string dataset_uri(const std::string& name);

}  // namespace zwq::cli
