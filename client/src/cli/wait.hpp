// Private to `zwq`: waiting for a job (submit, wait) and streaming its results (stream).
#pragma once

#include <chrono>
#include <optional>

#include "cli.hpp"
#include "submit_output.hpp"

namespace zwq::cli {

struct WaitOptions {
  bool json = false;              // no progress bar
  std::optional<double> timeout;  // seconds; none: as long as it takes
  // Ctrl-C (or SIGTERM) cancels the job, as for `zwq submit`; `zwq wait` only stops waiting.
  bool cancel_on_interrupt = true;
};

// Waits for `job` in short steps, drawing a progress bar on a terminal. Fills o.result or
// o.error, o.status and o.seconds (since `start`); returns the exit code: kExitOk,
// kExitFailed (the job failed), kExitTimeout (it keeps running) or, stopped by a signal, 128 + it
// (130 for Ctrl-C, 143 for SIGTERM), as shells report a command a signal ended.
int wait_for(Job& job, const WaitOptions& w, Outcome& o,
             std::chrono::steady_clock::time_point start);

}  // namespace zwq::cli
