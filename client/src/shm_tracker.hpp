// Private: what this process would leave behind if it died now, and a process that removes it
// when it does.
//
// An owning ShmSegment removes its /dev/shm file in its destructor, and LocalCluster removes its
// directory in stop(); a program killed by Ctrl-C or kill -9 runs neither. So, as Python's
// multiprocessing resource tracker does, the first registration forks a small tracker process that
// holds the far end of a socket. This process tells it what to remove (track) and what it has
// removed or kept after all (untrack). When the socket closes, because every process holding
// this end has exited or exec'd, the tracker removes whatever is still tracked, notes each
// shared array it removed on stderr, and exits.
//
// The tracker ignores SIGINT, SIGTERM and SIGHUP (a Ctrl-C reaches the whole process group) and
// is named "zwq-tracker" in ps. It tracks up to kMaxTracked paths of up to kMaxPath bytes at once;
// beyond that, or when the tracker cannot be started, nothing is tracked (as before it existed)
// and nothing fails.
//
// Errors: none are reported; tracking is a safety net, never a reason for an operation to fail.
// Thread-safe.
#pragma once

#include <cstddef>
#include <string>

namespace zwq::detail {

enum class Tracked : char {
  kShmArray = 'a',   // a file and its ".zwq-meta" sidecar
  kDirectory = 'd',  // a directory and everything in it (two levels deep)
};

inline constexpr std::size_t kMaxTracked = 4096;
inline constexpr std::size_t kMaxPath = 512;

// Asks the tracker to remove `path` should this process end without untracking it first. Starts
// the tracker on first use.
void track(Tracked kind, const std::string& path);
// Forgets `path` (removed already, or to be kept). Never starts the tracker.
void untrack(Tracked kind, const std::string& path);

}  // namespace zwq::detail
