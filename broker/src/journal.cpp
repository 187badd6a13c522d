// Parts: 1. records (framing, CRC, msgpack)  2. open, replay, compaction  3. writing
#include "journal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <msgpack.hpp>
#include <optional>
#include <string_view>

namespace zwq::broker {

// ---- 1. records ----

namespace {

enum RecordType : std::uint8_t { kJobRecord = 1, kCoveredRecord = 2, kFinalRecord = 3 };

struct SliceEntry {
  std::uint64_t slice = 0;
  std::uint64_t n = 0;
  double hi = 0;
  double lo = 0;
  MSGPACK_DEFINE(slice, n, hi, lo)
};

struct CoveredRecord {
  std::string job_id;
  std::vector<SliceEntry> slices;
  std::vector<std::string> bytes;  // gather: one per slice; empty otherwise
  bool has_merged = false;
  Partial merged;
  MSGPACK_DEFINE(job_id, slices, bytes, has_merged, merged)
};

struct FinalRecord {
  std::string job_id;
  JobState state = JobState::kDone;
  ErrorCode error_code = ErrorCode::kOk;
  std::string error;
  JobResult result;
  // Written by a rewrite for a job whose per-slice results the broker had released: it has no
  // covered records, and had covered `covered` slices (both absent in older records).
  bool released = false;
  std::uint64_t covered = 0;
  MSGPACK_DEFINE(job_id, state, error_code, error, result, released, covered)
};

struct JobRecord {
  JobSpec spec;
  KernelSpec kernel;  // the definition it was accepted with (absent in older records)
  MSGPACK_DEFINE(spec, kernel)
};

// Covered records of a compacted journal hold at most this many slices, so that neither writing
// nor replaying a huge job needs one huge buffer.
constexpr std::size_t kSlicesPerRecord = 65536;
// A record longer than this is not something we wrote: the rest of the file is cut.
constexpr std::uint32_t kMaxRecordBytes = 1u << 30;

// Where the covered record of slices [begin, n) ends: after at most kSlicesPerRecord slices and,
// for gather jobs, before their bytes (bytes_of(i) for slice i) pass max_bytes, one slice at
// least (a slice's bytes are at most a frame, far below kMaxRecordBytes).
template <typename BytesOf>
std::size_t record_end(std::size_t begin, std::size_t n, bool gather, std::size_t max_bytes,
                       BytesOf&& bytes_of) {
  const std::size_t last = std::min(n, begin + kSlicesPerRecord);
  if (!gather) return last;
  std::size_t end = begin;
  for (std::size_t bytes = 0; end < last; ++end) {
    bytes += bytes_of(end);
    if (bytes > max_bytes && end > begin) break;
  }
  return end;
}

// CRC-32 (ISO-HDLC: the reflected 0x04C11DB7 of zlib, gzip and PNG), zlib's: several bytes per
// step where a byte-at-a-time table took 85 % of the time of writing a covered record (perf).
std::uint32_t crc32_of(const char* data, std::size_t n) {
  return static_cast<std::uint32_t>(
      ::crc32_z(::crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(data), n));
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}

std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

// msgpack-c's packer writes straight into the journal's output string.
struct StringStream {
  std::string& out;
  void write(const char* data, std::size_t n) { out.append(data, n); }
};
using Packer = msgpack::packer<StringStream>;

// ... or into room made for it beforehand.
struct SpanStream {
  char* at;
  void write(const char* data, std::size_t n) {
    std::memcpy(at, data, n);
    at += n;
  }
};
// The most msgpack-c makes of a SliceEntry: an array header and four 9-byte numbers.
constexpr std::size_t kMaxSliceEntryBytes = 1 + 4 * 9;

// Appends one framed record of `type` to `out`, its body packed by pack_body(Packer&) in place
// (no buffer of its own to copy from), then its length and CRC filled in before it.
template <typename F>
void frame_with(std::string& out, RecordType type, F&& pack_body) {
  const std::size_t at = out.size();
  out.append(8, '\0');
  out.push_back(static_cast<char>(type));
  StringStream stream{out};
  Packer pk(stream);
  pack_body(pk);
  const std::size_t len = out.size() - at - 8;
  std::string header;
  put_u32(header, static_cast<std::uint32_t>(len));
  put_u32(header, crc32_of(out.data() + at + 8, len));
  out.replace(at, 8, header);
}

template <typename T>
void frame(std::string& out, RecordType type, const T& body) {
  frame_with(out, type, [&](Packer& pk) { pk.pack(body); });
}

template <typename T>
bool unpack_body(const char* data, std::size_t size, T& out) {
  try {
    msgpack::object_handle h = msgpack::unpack(data, size);
    h.get().convert(out);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// Appends the covered record of slices[begin, end) of `job`: the bytes msgpack-c makes of a
// CoveredRecord, packed from the collector without building one.
void frame_covered(std::string& out, const Job& job, const std::vector<std::uint64_t>& slices,
                   std::size_t begin, std::size_t end, bool with_merged) {
  const JobCollector& c = job.collector;
  const bool gather = c.combiner() == Combiner::kGather;
  const bool merged = with_merged && !combiner_is_order_sensitive(c.combiner());
  frame_with(out, kCoveredRecord, [&](Packer& pk) {
    pk.pack_array(5);
    pk.pack(job.spec.job_id);
    pk.pack_array(static_cast<std::uint32_t>(end - begin));
    // The entries, the bulk of the record, go into room made for them at once: one resize,
    // not five appends of a few bytes each per slice.
    const std::size_t base = out.size();
    out.resize(base + (end - begin) * kMaxSliceEntryBytes);
    SpanStream span{out.data() + base};
    msgpack::packer<SpanStream> entries(span);
    for (std::size_t i = begin; i < end; ++i) {
      const CompactPartial p = c.compact(slices[i]);
      entries.pack(SliceEntry{slices[i], p.n, p.hi, p.lo});
    }
    out.resize(static_cast<std::size_t>(span.at - out.data()));
    pk.pack_array(gather ? static_cast<std::uint32_t>(end - begin) : 0);
    if (gather) {
      for (std::size_t i = begin; i < end; ++i) pk.pack(c.bytes(slices[i]));
    }
    pk.pack(merged);
    pk.pack(merged ? c.merged_so_far() : Partial{});
  });
}

// Appends the covered records of `slices` of `job`, the merged state in the last.
void append_covered(std::string& out, const Job& job, const std::vector<std::uint64_t>& slices,
                    std::size_t max_bytes) {
  const JobCollector& c = job.collector;
  const bool gather = c.combiner() == Combiner::kGather;
  auto bytes_of = [&](std::size_t i) { return c.bytes(slices[i]).size(); };
  for (std::size_t begin = 0, end = 0; begin < slices.size(); begin = end) {
    end = record_end(begin, slices.size(), gather, max_bytes, bytes_of);
    frame_covered(out, job, slices, begin, end, end == slices.size());
  }
}

}  // namespace

// ---- 2. open, replay, compaction ----

Journal::Journal(JournalOptions options) : options_(std::move(options)) {
  if (options_.dir.empty()) throw SetupError("the journal needs a directory");
  std::error_code ec;
  if (std::filesystem::create_directories(options_.dir, ec)) {
    std::filesystem::permissions(options_.dir, std::filesystem::perms::owner_all, ec);
  }
  if (ec || !std::filesystem::is_directory(options_.dir)) {
    throw SetupError("cannot create the journal directory " + options_.dir + ": " +
                     (ec ? ec.message() : std::string("not a directory")));
  }
  path_ = options_.dir + "/journal.zwq";
  for (int tries = 1;; ++tries) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw SetupError(errno_text("cannot open the journal", path_));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const std::string why = errno == EWOULDBLOCK ? "it is in use by another broker"
                                                   : std::string(std::strerror(errno));
      ::close(fd_);
      throw SetupError("cannot lock the journal " + path_ + ": " + why);
    }
    // A broker that rewrote the journal between our open and our lock renamed a new file over
    // the one we opened, and let go of it: the lock must be on the file the name is now.
    struct stat held {};
    struct stat named {};
    if (::fstat(fd_, &held) == 0 && ::stat(path_.c_str(), &named) == 0 &&
        held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
      break;
    }
    ::close(fd_);
    if (tries == 10) throw SetupError("cannot lock the journal " + path_ + ": it keeps changing");
  }
  try {
    load();
    compact();
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

Journal::~Journal() {
  if (fd_ < 0) return;
  (void)flush(Clock::now(), true);
  (void)finish_rewrite(true);  // (if it fails, the old file is whole)
  ::close(fd_);
}

void Journal::load() {
  std::string data;
  {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw SetupError(errno_text("cannot read the journal", path_));
    data.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < data.size()) {
      const ssize_t n = ::pread(fd_, data.data() + got, data.size() - got, static_cast<off_t>(got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw SetupError(errno_text("cannot read the journal", path_));
      got += static_cast<std::size_t>(n);
    }
  }
  std::unordered_map<std::string, std::size_t> index;  // the latest job of each id
  std::vector<RecoveredJob> jobs;
  std::vector<bool> replaced;  // jobs[i]'s id was taken by a later job
  std::size_t at = 0;
  while (at < data.size()) {
    if (data.size() - at < 8) break;
    const std::uint32_t len = get_u32(data.data() + at);
    const std::uint32_t crc = get_u32(data.data() + at + 4);
    if (len == 0 || len > kMaxRecordBytes || data.size() - at - 8 < len) break;
    const char* body = data.data() + at + 8;
    if (crc32_of(body, len) != crc) break;
    at += 8 + len;
    ++replay_.records;
    const auto type = static_cast<std::uint8_t>(body[0]);
    bool ok = false;
    if (type == kJobRecord) {
      JobRecord r;
      ok = unpack_body(body + 1, len - 1, r) && !r.spec.job_id.empty();
      if (ok) {
        // The broker takes an id again only once it no longer holds the job of that id
        // (forgotten, or not restorable): a later job record of an id is a new job, and the
        // records after it are that job's.
        auto [it, fresh] = index.try_emplace(r.spec.job_id, jobs.size());
        if (!fresh) {
          replaced[it->second] = true;
          it->second = jobs.size();
          ++replay_.replaced;
        }
        replaced.push_back(false);
        RecoveredJob& j = jobs.emplace_back();
        j.spec = std::move(r.spec);
        j.kernel = std::move(r.kernel);
      }
    } else if (type == kCoveredRecord) {
      CoveredRecord r;
      ok = unpack_body(body + 1, len - 1, r) && index.count(r.job_id) != 0;
      if (ok) {
        RecoveredJob& j = jobs[index[r.job_id]];
        for (std::size_t i = 0; i < r.slices.size(); ++i) {
          const SliceEntry& e = r.slices[i];
          j.covered.emplace_back(e.slice, CompactPartial{e.n, e.hi, e.lo});
          if (!r.bytes.empty()) {
            j.gathered.resize(j.covered.size() - 1);
            j.gathered.push_back(i < r.bytes.size() ? std::move(r.bytes[i]) : std::string());
          }
        }
        if (r.has_merged) j.merged = std::move(r.merged);
      }
    } else if (type == kFinalRecord) {
      FinalRecord r;
      ok = unpack_body(body + 1, len - 1, r) && index.count(r.job_id) != 0 &&
           job_state_final(r.state);
      if (ok) {
        RecoveredJob& j = jobs[index[r.job_id]];
        j.state = r.state;
        j.error_code = r.error_code;
        j.error = std::move(r.error);
        if (r.state == JobState::kDone) j.result = std::move(r.result);
        if (r.released) {
          j.covered.clear();
          j.gathered.clear();
          j.merged.reset();
          j.results_released = true;
          j.released_covered = r.covered;
        }
      }
    }
    if (!ok) ++replay_.bad_records;
  }
  replay_.torn_bytes = data.size() - at;

  // Keep every unfinished job and the newest max_finished finished ones.
  std::size_t finished = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    finished += !replaced[i] && job_state_final(jobs[i].state) ? 1 : 0;
  }
  std::size_t drop = finished > options_.max_finished ? finished - options_.max_finished : 0;
  replay_.forgotten = drop;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    RecoveredJob& j = jobs[i];
    if (replaced[i]) continue;
    if (drop > 0 && job_state_final(j.state)) {
      --drop;
      continue;
    }
    recovered_.push_back(std::move(j));
  }
}

namespace {

// The records that give back `j` as it was recovered: job, covered (cut by record_end()), final.
void append_recovered(std::string& out, const RecoveredJob& j, std::size_t max_bytes) {
  frame(out, kJobRecord, JobRecord{j.spec, j.kernel});
  const std::size_t n = j.covered.size();
  const bool gather = !j.gathered.empty();
  auto bytes_of = [&](std::size_t i) { return i < j.gathered.size() ? j.gathered[i].size() : 0; };
  for (std::size_t begin = 0, end = 0; begin < n || (begin == 0 && j.merged); begin = end) {
    end = record_end(begin, n, gather, max_bytes, bytes_of);
    CoveredRecord r;
    r.job_id = j.spec.job_id;
    for (std::size_t i = begin; i < end; ++i) {
      r.slices.push_back(SliceEntry{j.covered[i].first, j.covered[i].second.n,
                                    j.covered[i].second.hi, j.covered[i].second.lo});
      if (!j.gathered.empty()) r.bytes.push_back(i < j.gathered.size() ? j.gathered[i] : "");
    }
    if (end == n && j.merged) {
      r.has_merged = true;
      r.merged = *j.merged;
    }
    frame(out, kCoveredRecord, r);
    if (end == n) break;
  }
  if (job_state_final(j.state)) {
    frame(out, kFinalRecord,
          FinalRecord{j.spec.job_id, j.state, j.error_code, j.error, j.result.value_or(JobResult{}),
                      j.results_released, j.released_covered});
  }
}

// The records that give back `job` as the broker holds it now.
void append_live(std::string& out, const Job& job, std::size_t max_bytes) {
  const JobCollector& c = job.collector;
  frame(out, kJobRecord, JobRecord{job.spec, spec_of(*job.kernel)});
  if (!c.results_released()) append_covered(out, job, c.completion_order(), max_bytes);
  if (job.final()) {
    // (job.result has no gathered bytes: those are in the covered records.)
    frame(out, kFinalRecord,
          FinalRecord{job.spec.job_id, job.state, job.error_code, job.error, job.result,
                      c.results_released(), c.results_released() ? c.covered() : 0});
  }
}

}  // namespace

// Rewrites the journal as what load() kept.
void Journal::compact() {
  std::string out;
  for (const RecoveredJob& j : recovered_) append_recovered(out, j, options_.record_bytes);
  auto rewrite = JournalRewrite::start(paths(), std::move(out));
  if (!rewrite.ok()) throw SetupError(rewrite.error().message);
  if (Status st = adopt(*rewrite.value(), std::string()); !st.ok()) {
    throw SetupError(st.error().message);
  }
  // A directory that cannot be synced at start would refuse every job later: say so now.
  if (Status st = sync_dir_if_needed(); !st.ok()) throw SetupError(st.error().message);
}

JournalPaths Journal::paths() const {
  return JournalPaths{path_, path_ + ".tmp", options_.dir};
}

// Finishes `rewrite` with `tail` and makes its file the journal.
Status Journal::adopt(JournalRewrite& rewrite, const std::string& tail) {
  auto fd = rewrite.finish(tail);
  if (!fd.ok()) return fd.error();
  ::close(fd_);  // the old file, and its lock
  fd_ = fd.value();
  file_bytes_ = rewrite.size();
  rewritten_bytes_ = rewrite.size();
  unsynced_ = false;
  torn_ = false;  // what the old file had torn is not in the new one
  dir_unsynced_ = !rewrite.dir_synced();
  return Status::Ok();
}

// A synced record is durable only once the rename that made its file the journal is: a
// directory not synced after a rewrite is synced before the next sync of records.
Status Journal::sync_dir_if_needed() {
  if (!dir_unsynced_) return Status::Ok();
  if (!sync_dir(options_.dir)) {
    return make_error(ErrorCode::kInternal,
                      errno_text("cannot sync the journal's directory", options_.dir));
  }
  dir_unsynced_ = false;
  return Status::Ok();
}

void Journal::keep_unrestored(RecoveredJob job) {
  unrestored_.push_back(std::move(job));
}

bool Journal::wants_rewrite() const {
  return rewrite_ == nullptr && options_.rewrite_bytes > 0 &&
         file_bytes_ >= options_.rewrite_bytes && file_bytes_ >= 2 * rewritten_bytes_;
}

Status Journal::start_rewrite(const std::vector<const Job*>& jobs, TimePoint now) {
  if (rewrite_ != nullptr) return Status::Ok();
  // The buffer goes to the old file first: the new one is what memory holds now, and everything
  // written after this point reaches both (the tail).
  if (Status st = flush(now, true); !st.ok()) {
    rewritten_bytes_ = file_bytes_;  // tried again once the file has doubled
    return st;
  }
  std::string out;
  std::size_t bound = 0;  // room for the slice entries: the string seldom grows by copying
  for (const Job* job : jobs) {
    bound += 1024 + job->collector.completion_order().size() * kMaxSliceEntryBytes;
  }
  out.reserve(bound);
  // (An unrestored job whose id a new job took is gone already: submitted().)
  for (const RecoveredJob& j : unrestored_) append_recovered(out, j, options_.record_bytes);
  for (const Job* job : jobs) append_live(out, *job, options_.record_bytes);
  auto started = JournalRewrite::start(paths(), std::move(out));
  if (!started.ok()) {
    rewritten_bytes_ = file_bytes_;  // tried again once the file has doubled
    return started.error();
  }
  rewrite_ = std::move(started).value();
  tail_.clear();
  return Status::Ok();
}

std::optional<Status> Journal::finish_rewrite(bool wait) {
  if (rewrite_ == nullptr || (!wait && !rewrite_->done())) return std::nullopt;
  const std::unique_ptr<JournalRewrite> rewrite = std::move(rewrite_);
  Status st = adopt(*rewrite, tail_);
  std::string().swap(tail_);
  if (!st.ok()) rewritten_bytes_ = file_bytes_;  // tried again once the file has doubled
  return st;
}

Status Journal::rewrite(const std::vector<const Job*>& jobs, TimePoint now) {
  if (Status st = start_rewrite(jobs, now); !st.ok()) return st;
  return finish_rewrite(true).value_or(Status::Ok());
}

// ---- 3. writing ----

Status Journal::append(const std::string& bytes, bool sync) {
  if (torn_) {
    // A failed write whose bytes could not be cut: nothing may follow them (a replay stops at a
    // torn record), so nothing is written until they are.
    if (::ftruncate(fd_, static_cast<off_t>(file_bytes_)) != 0) {
      return make_error(ErrorCode::kInternal,
                        errno_text("cannot cut a failed write from the journal", path_));
    }
    torn_ = false;
  }
  if (sync) {
    if (Status st = sync_dir_if_needed(); !st.ok()) return st;
  }
  const char* failed = nullptr;
  if (!write_all(fd_, bytes)) {
    failed = "cannot write the journal";
  } else if (sync && ::fdatasync(fd_) != 0) {
    failed = "cannot sync the journal";
  }
  if (failed != nullptr) {
    Error e = make_error(ErrorCode::kInternal, errno_text(failed, path_));
    // What reached the file is cut: the caller writes the records again whole (they are not
    // there twice), or refused the job (it does not come back after a restart).
    torn_ = ::ftruncate(fd_, static_cast<off_t>(file_bytes_)) != 0;
    return e;
  }
  file_bytes_ += bytes.size();
  unsynced_ = !sync;
  if (rewrite_ != nullptr) tail_ += bytes;  // the rewritten file gets it too
  return Status::Ok();
}

Status Journal::submitted(const Job& job) {
  // What a failed write left goes first: it may be the records of a forgotten job of this id,
  // which after this job's record would be this job's on the next replay.
  std::string out = unwritten_;
  frame(out, kJobRecord, JobRecord{job.spec, spec_of(*job.kernel)});
  Status st = append(out, true);
  if (!st.ok()) {
    return make_error(ErrorCode::kInternal,
                      "job " + job.spec.job_id + " cannot be accepted: " + st.error().message);
  }
  unwritten_.clear();
  // An unrestored job of this id is replaced: a replay gives the id to this job now, and a
  // rewrite must not write the old one back once this one is forgotten.
  std::erase_if(unrestored_,
                [&](const RecoveredJob& j) { return j.spec.job_id == job.spec.job_id; });
  return st;
}

void Journal::covered(const Job& job, std::uint64_t slice) {
  auto [it, fresh] = dirty_index_.try_emplace(&job, dirty_.size());
  if (fresh) dirty_.push_back(Dirty{&job, {}});
  dirty_[it->second].slices.push_back(slice);
  ++buffered_slices_;
  buffered_bytes_ += sizeof(SliceEntry) + job.collector.bytes(slice).size();
}

void Journal::finished(const Job& job) {
  // Everything buffered goes first (this job's last slices, and other jobs' whose records would
  // otherwise name a job that may be forgotten before the next flush).
  std::string out = take_buffer();
  // Gathered bytes are in the covered records already: the result is stored without them.
  FinalRecord f{job.spec.job_id, job.state, job.error_code, job.error, job.result};
  frame(out, kFinalRecord, f);
  // A failed write here is tried again with the next flush.
  if (!append(out, true).ok()) unwritten_ = std::move(out);
}

std::string Journal::take_buffer() {
  std::string out = std::move(unwritten_);
  unwritten_.clear();
  out += encode_buffer();
  dirty_.clear();
  dirty_index_.clear();
  buffered_slices_ = 0;
  buffered_bytes_ = 0;
  return out;
}

std::string Journal::encode_buffer() const {
  std::string out;
  for (const Dirty& d : dirty_) append_covered(out, *d.job, d.slices, options_.record_bytes);
  return out;
}

Status Journal::flush(TimePoint now, bool force) {
  const bool due = force || now - last_write_ >= Millis(options_.flush_ms) ||
                   buffered_bytes_ + unwritten_.size() >= options_.flush_bytes;
  if (due) {
    if (!dirty_.empty() || !unwritten_.empty()) {
      std::string out = take_buffer();
      if (Status st = append(out, false); !st.ok()) {
        unwritten_ = std::move(out);
        return st;
      }
    }
    last_write_ = now;  // the next batch closes flush_ms from here
  }
  // (A rewrite's tail is synced in the new file, whose rename may still want its directory.)
  if ((unsynced_ || dir_unsynced_) && (force || now - last_sync_ >= Millis(options_.fsync_ms))) {
    if (Status st = sync_dir_if_needed(); !st.ok()) return st;
    if (unsynced_ && ::fdatasync(fd_) != 0) {
      return make_error(ErrorCode::kInternal, errno_text("cannot sync the journal", path_));
    }
    unsynced_ = false;
    last_sync_ = now;
  }
  return Status::Ok();
}

}  // namespace zwq::broker
