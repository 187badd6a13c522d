// Private: what this process would leave behind if it died now, and a process that removes it
// when it does.
//
// An owning ShmSegment removes its /dev/shm file in its destructor, and LocalCluster removes its
// directory in stop(); a program killed by Ctrl-C or kill -9 runs neither. So, as Python's
// multiprocessing resource tracker does, the first track() starts a tracker process, the program
// `zwq-tracker` (found beside this program, in $ZWQ_BIN_DIR or on $PATH:
// detail::zwq_program_dirs, not a LocalCluster's bin_dir, which comes later), which holds
// the far end of a socket. This process tells it what to remove (track) and what it has removed
// or kept after all (untrack). When the socket closes and this process has ended, the tracker
// removes whatever is still tracked, notes each shared array it removed on stderr, and exits.
//
// - It is a fresh program (fork + exec), in a process group of its own, and ignores SIGINT,
//   SIGTERM, SIGHUP and SIGQUIT: it holds none of this program's memory or mappings, and a
//   Ctrl-C or Ctrl-\ sent to the program's group does not reach it.
// - A process forked from this one without exec shares the socket: the tracker waits for it too,
//   and what it tracks is reported as this process's.
// - The socket closing while this process still runs (it exec'd another program, or closed the
//   descriptor): the tracker waits up to kOwnerGrace for this process to end (for it to be
//   reparented away from it), removes what is tracked if it did, and exits either way.
// - When zwq-tracker cannot be found or started, nothing is tracked (as before it existed) and
//   nothing fails; one line on stderr says it could not be found.
//
// Errors: none are returned; tracking is a safety net, never a reason for an operation to fail.
// Thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string>

namespace zwq::detail {

enum class Tracked : char {
  kShmArray = 'a',   // a file and its ".zwq-meta" sidecar
  kDirectory = 'd',  // a directory and everything in it
};

inline constexpr std::size_t kMaxTrackedPath = 4096;  // longer paths are not tracked
inline constexpr std::chrono::milliseconds kOwnerGrace{5000};

// Asks the tracker to remove `path` should this process end without untracking it first. Starts
// the tracker on first use.
void track(Tracked kind, const std::string& path);
// Forgets `path` (removed already, or to be kept). Never starts the tracker.
void untrack(Tracked kind, const std::string& path);

// The tracker's side (zwq-tracker's main): reads requests from `fd` until every holder of the
// other end has closed it, then, once `owner` has ended, removes what is still tracked. Returns
// the exit status: 0, or 1 when the socket failed (then it removes nothing).
int run_tracker(int fd, pid_t owner);

}  // namespace zwq::detail
