// Journal: the broker's record of accepted jobs, covered slices and finished jobs, so that a
// broker restarted with the same --journal DIR resumes its unfinished jobs (only the slices
// without a result run again) and still answers for its finished ones (docs/RELIABILITY.md).
//
// The file, DIR/journal.zwq, is a sequence of records, each [u32 length][u32 CRC-32][payload]
// (little-endian), the payload one type byte and a msgpack array:
//   1 job      [JobSpec]                                  the job as accepted
//   2 covered  [job_id, [[slice, n, hi, lo]...], [bytes...], has_merged, merged Partial]
//                                                         slices covered since the last record,
//                                                         in acceptance order; gather bytes; for
//                                                         min/max/count/histogram the merged
//                                                         state including them
//   3 final    [job_id, state, error_code, error, JobResult, released, covered]
//                                                         released (written by a rewrite): the
//                                                         job's per-slice results were given up,
//                                                         it has no covered records and had
//                                                         covered `covered` slices
// Per-slice (n, hi, lo) is what makes a resumed sum bitwise equal to an uninterrupted one: sums
// and moments are folded in slice order at the end, from exactly these numbers.
//
// Writes: a job record is written and fdatasync'ed before the job is accepted; covered slices
// are buffered and written every flush_ms (one record per job, not one write per slice); a final
// record is written at once. fdatasync runs after job and final records and at most every
// fsync_ms for covered records. So a kill -9 of the broker loses nothing write() accepted, and a
// machine crash loses at most fsync_ms of covered slices (they run again). After every rename
// (compaction, rewrite) the directory is synced; if that fails, it is synced before the next
// sync of records instead (and at open, the broker does not start).
//
// Opening replays the file (a record that is short or fails its CRC — a write torn by a crash —
// ends the replay, and the file is cut there), then compacts it: only the jobs to keep are
// rewritten, as one job record, covered records (at most 65536 slices and record_bytes of
// gathered bytes each) and a final record each, into a temporary file renamed over the old one.
// A job record of an id seen before starts a new job, which replaces the old one: the broker
// takes an id again only once it no longer holds the job of that id (forgotten, or not
// restorable). The file is locked (flock, on the file its name points to once locked): a second
// broker on the same DIR fails to start.
//
// While the broker runs, the file only grows, so once it passes rewrite_bytes and twice its size
// after the last rewrite, wants_rewrite() says so and the broker calls start_rewrite() with the
// jobs it holds: their records are made from memory, a thread writes them into the temporary
// file (JournalRewrite) while this one appends to the old file as before, and finish_rewrite()
// adds what was appended meanwhile and renames the new file over the old. A finished job whose
// per-slice results the broker released (max_finished_slices) is written as its job and final
// records alone, the final one saying so and how many slices it covered. So the file stays
// within about twice what the broker holds, plus rewrite_bytes (and while a rewrite is written,
// its new file is beside it).
//
// Error model: the constructor throws SetupError (DIR cannot be made or synced, the file cannot
// be read, written or locked). submitted() returns an error when the job record cannot be written
// and synced, behind whatever an earlier failed write left (the job is then refused); flush()
// returns an error when buffered records cannot be written (they stay buffered and are tried
// again), or when the file or the directory cannot be synced (tried again on the next flush).
// Whatever a failed write or sync left in the file is cut at once, or before anything else is
// written (if the cut fails, every write fails until it works): no record ever follows a torn one,
// and a refused job does not come back. rewrite() returns an error when the new file cannot be
// written (the old one stays, and is appended to as before).
//
// Not thread-safe: the broker's poll loop owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "job.hpp"
#include "journal_rewrite.hpp"
#include "scheduler.hpp"
#include "time.hpp"
#include "zwq/status.hpp"

namespace zwq::broker {

struct JournalOptions {
  std::string dir;  // created (mode 0700) if missing
  // Covered slices wait at most this long in memory before they are written: longer batches
  // more slices per write, shorter loses fewer results to a crash of the broker.
  std::uint32_t flush_ms = 100;
  // Covered records are fdatasync'ed at most this often (0: after every write): a machine crash
  // loses at most this much; a broker crash loses nothing written.
  std::uint32_t fsync_ms = 1000;
  // Finished jobs kept when the journal is compacted (the oldest beyond are forgotten).
  std::size_t max_finished = 10000;
  // Buffered covered records beyond this many bytes (gathered bytes included) are written
  // before flush_ms passes.
  std::size_t flush_bytes = 1u << 20;
  // A covered record carries at most this many gathered bytes (and at least one slice): far
  // below the 1 GiB a replay takes for a record.
  std::size_t record_bytes = std::size_t{64} << 20;
  // The file is rewritten from the broker's jobs once it is this large and twice its size after
  // the last rewrite (0: only when opened).
  std::uint64_t rewrite_bytes = std::uint64_t{64} << 20;
};

// What opening found.
struct JournalReplay {
  std::uint64_t records = 0;      // records read
  std::uint64_t bad_records = 0;  // records whose CRC held but whose content did not decode
  std::uint64_t torn_bytes = 0;   // bytes cut from the end (a write torn by a crash)
  std::uint64_t forgotten = 0;    // finished jobs beyond max_finished, dropped by compaction
  std::uint64_t replaced = 0;     // jobs whose id a later job took (the later one is kept)
};

class Journal final : public JobLog {
 public:
  // Opens, replays and compacts DIR/journal.zwq. Throws SetupError.
  explicit Journal(JournalOptions options);
  ~Journal() override;
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // The jobs found at open, oldest first (moved out: call once).
  std::vector<RecoveredJob> take_recovered() { return std::move(recovered_); }
  const JournalReplay& replay() const { return replay_; }
  const std::string& path() const { return path_; }

  // JobLog (called by the scheduler).
  Status submitted(const Job& job) override;
  void covered(const Job& job, std::uint64_t slice) override;
  void finished(const Job& job) override;

  // Writes buffered covered records when flush_ms passed since the last write, they grew past
  // flush_bytes, or `force`; fdatasyncs per fsync_ms (always with `force`). The jobs named in
  // the buffer must still be alive (the scheduler keeps a job until it is final, and finished()
  // writes everything first).
  Status flush(TimePoint now, bool force = false);
  // Bytes and slices waiting in memory.
  std::size_t buffered_slices() const { return buffered_slices_; }

  // A job found at open that the broker could not restore: kept, as it was found, through
  // rewrites (a later broker may restore it), until a new job takes its id.
  void keep_unrestored(RecoveredJob job);
  // True when the file has grown enough to be rewritten (see above).
  bool wants_rewrite() const;
  // Starts replacing the file with the records of `jobs` (every job the broker holds, in the
  // order they were accepted: Scheduler::jobs_in_order) and of the unrestored ones: what is
  // buffered is written to the old file first (flush), the records are made now, and a thread
  // writes them (JournalRewrite) while the old file is appended to as before. Nothing if a
  // rewrite is under way. An error (the buffer cannot be written to the old file, or the new
  // file cannot be made) leaves the old file as the journal, and wants_rewrite() false until
  // the file has doubled.
  Status start_rewrite(const std::vector<const Job*>& jobs, TimePoint now);
  // Once the thread is done (or waiting for it, with `wait`): appends what was written since
  // start_rewrite() to the new file and renames it over the old one. nullopt while no rewrite
  // is under way or done; else how it ended (on an error the old file stays the journal).
  std::optional<Status> finish_rewrite(bool wait);
  bool rewriting() const { return rewrite_ != nullptr; }
  // start_rewrite() and finish_rewrite(true).
  Status rewrite(const std::vector<const Job*>& jobs, TimePoint now);
  // The file's size as this journal wrote it.
  std::uint64_t file_bytes() const { return file_bytes_; }

 private:
  // The records of unwritten_ and dirty_, in that order, both emptied.
  std::string take_buffer();
  struct Dirty {
    const Job* job = nullptr;
    std::vector<std::uint64_t> slices;
  };
  void load();
  void compact();
  JournalPaths paths() const;
  Status adopt(JournalRewrite& rewrite, const std::string& tail);
  Status append(const std::string& bytes, bool sync);
  Status sync_dir_if_needed();
  std::string encode_buffer() const;

  JournalOptions options_;
  std::string path_;
  int fd_ = -1;
  JournalReplay replay_;
  std::vector<RecoveredJob> recovered_;
  std::vector<RecoveredJob> unrestored_;
  std::uint64_t file_bytes_ = 0;             // the file's size: what was compacted plus appends
  std::uint64_t rewritten_bytes_ = 0;        // its size after the last compaction or rewrite
  std::unique_ptr<JournalRewrite> rewrite_;  // under way
  std::string tail_;                         // what was appended since it started

  std::vector<Dirty> dirty_;  // jobs with covered slices not yet written
  std::unordered_map<const Job*, std::size_t> dirty_index_;
  std::size_t buffered_slices_ = 0;
  std::size_t buffered_bytes_ = 0;  // their entries' and gathered bytes
  // Records a failed write left (a full disk, say), written first by the next one. Bytes, not
  // dirty_ entries: the jobs those point at may be forgotten before the next write.
  std::string unwritten_;
  TimePoint last_write_{};
  TimePoint last_sync_{};
  bool unsynced_ = false;
  bool torn_ = false;          // a failed write's bytes could not be cut from the file yet
  bool dir_unsynced_ = false;  // the last rewrite's rename may not survive a machine crash yet
};

}  // namespace zwq::broker
