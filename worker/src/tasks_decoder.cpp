#include "tasks_decoder.hpp"

#include <cstring>
#include <limits>
#include <msgpack.hpp>
#include <string_view>

#include "zwq/codec.hpp"
#include "zwq/msgpack_reader.hpp"
#include "zwq/protocol.hpp"

namespace zwq::worker {
namespace {

// Runs as decode_body would take them: [first_slice, count, attempt], count and attempt within
// uint32, no empty run.
bool read_runs(MsgpackReader& r, std::vector<SliceRun>& runs) {
  std::uint32_t n = 0;
  // (Each run takes four bytes at least: a bad length is refused before anything is sized by it.)
  if (!r.array(n) || n > proto::kMaxContainer || n > r.left() / 4) return false;
  runs.resize(n);
  constexpr std::uint64_t kMax32 = std::numeric_limits<std::uint32_t>::max();
  for (SliceRun& run : runs) {
    std::uint32_t fields = 0;
    std::uint64_t first = 0, count = 0, attempt = 0;
    if (!r.array(fields) || fields != 3 || !r.uint(first) || !r.uint(count) || !r.uint(attempt)) {
      return false;
    }
    if (count == 0 || count > kMax32 || attempt > kMax32) return false;
    run = SliceRun{first, static_cast<std::uint32_t>(count), static_cast<std::uint32_t>(attempt)};
  }
  return true;
}

}  // namespace

TasksFrame TasksFrame::from(msg::Tasks t) {
  if (t.by_ref()) return TasksFrame{0, nullptr, std::move(t.runs), t.ref};
  return TasksFrame{t.epoch, std::make_shared<const JobSpec>(std::move(t.job)), std::move(t.runs),
                    t.ref};
}

std::optional<TasksFrame> TasksDecoder::read(const void* data, std::size_t size) {
  if (size > proto::kMaxFrameBytes) return std::nullopt;
  const char* base = static_cast<const char*>(data);
  MsgpackReader r(base, size);
  std::uint32_t n = 0;
  std::uint64_t type = 0, corr = 0;
  if (!read_frame_head(r, type, corr) ||
      type != static_cast<std::uint64_t>(proto::MsgType::kTasks) || !r.map(n)) {
    return std::nullopt;
  }
  TasksFrame f;
  bool epoch = false, job = false, runs = false, ref = false;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!r.str(key)) return std::nullopt;
    if (key == "epoch" && !epoch) {
      if (!r.uint(f.epoch)) return std::nullopt;
      epoch = true;
    } else if (key == "ref" && !ref) {
      if (!r.uint(f.ref)) return std::nullopt;
      ref = true;
    } else if (key == "runs" && !runs) {
      if (!read_runs(r, f.runs)) return std::nullopt;
      runs = true;
    } else if (key == "job" && !job) {
      job = true;
      if (job_ && r.left() >= job_bytes_.size() &&
          std::memcmp(r.here(), job_bytes_.data(), job_bytes_.size()) == 0) {
        r.skip(job_bytes_.size());
        f.job = job_;
        ++reused_;
        continue;
      }
      // A job like the last one but for its id (one of many alike jobs): that one's JobSpec,
      // copied, with this id.
      if (job_ && !job_rest_.empty()) {
        const char* start = r.here();
        MsgpackReader after_id = r;
        std::uint32_t fields = 0;
        std::string_view id_key, id;
        if (after_id.map(fields) && fields == job_fields_ && after_id.str(id_key) &&
            id_key == "job_id" && after_id.str(id) && after_id.left() >= job_rest_.size() &&
            std::memcmp(after_id.here(), job_rest_.data(), job_rest_.size()) == 0) {
          JobSpec spec = *job_;
          spec.job_id.assign(id);
          if (!check_job_spec(spec).ok()) return std::nullopt;
          after_id.skip(job_rest_.size());
          job_bytes_.assign(start, static_cast<std::size_t>(after_id.here() - start));
          job_ = std::make_shared<const JobSpec>(std::move(spec));
          r = after_id;
          f.job = job_;
          ++copied_;
          continue;
        }
      }
      // A job not seen last: decoded as decode_body would, with the same limits and check.
      try {
        std::size_t off = static_cast<std::size_t>(r.here() - base);
        const std::size_t start = off;
        // In the frame, the job lies in the body map, in the frame's array.
        msgpack::object_handle h = unpack_limited(base, size, off, 2);
        JobSpec spec;
        h.get().convert(spec);
        if (!check_job_spec(spec).ok()) return std::nullopt;
        job_bytes_.assign(base + start, off - start);
        job_ = std::make_shared<const JobSpec>(std::move(spec));
        remember_rest();
        r.skip(off - start);
      } catch (const std::exception&) {
        return std::nullopt;
      }
      f.job = job_;
      ++decoded_;
    } else {
      return std::nullopt;  // an unknown or repeated key: the usual way reads it
    }
  }
  if (!runs || r.left() != 0) return std::nullopt;
  // Named by ref: nothing else (decode_body takes epoch 0 and an empty job the same way).
  if (!job && !epoch && ref && f.ref != 0) return f;
  if (!epoch || !job) return std::nullopt;
  return f;
}

void TasksDecoder::remember_rest() {
  job_rest_.clear();
  MsgpackReader r(job_bytes_.data(), job_bytes_.size());
  std::string_view key, id;
  if (job_->param_sets.empty() && r.map(job_fields_) && r.str(key) && key == "job_id" &&
      r.str(id) && id == job_->job_id) {
    job_rest_.assign(r.here(), r.left());
  }
}

}  // namespace zwq::worker
