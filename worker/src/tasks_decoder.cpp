#include "tasks_decoder.hpp"

#include <cstring>
#include <limits>
#include <msgpack.hpp>
#include <string_view>

#include "zwq/codec.hpp"
#include "zwq/protocol.hpp"

namespace zwq::worker {
namespace {

// Reads msgpack values of a few kinds at `p`, moving past them; false (p unspecified) when the
// bytes there are not of that kind or run past the end.
class Reader {
 public:
  Reader(const char* data, std::size_t size)
      : p_(reinterpret_cast<const unsigned char*>(data)), end_(p_ + size) {}

  bool uint(std::uint64_t& v) {
    if (p_ == end_) return false;
    const unsigned char b = *p_++;
    if (b <= 0x7f) {
      v = b;
      return true;
    }
    if (b < 0xcc || b > 0xcf) return false;
    return big_endian(std::size_t{1} << (b - 0xcc), v);
  }
  bool array(std::uint32_t& n) { return header(0x90, 0xdc, n); }
  bool map(std::uint32_t& n) { return header(0x80, 0xde, n); }
  bool str(std::string_view& s) {
    if (p_ == end_) return false;
    const unsigned char b = *p_++;
    std::uint64_t n = 0;
    if ((b & 0xe0) == 0xa0) {
      n = b & 0x1f;
    } else if (b >= 0xd9 && b <= 0xdb) {
      if (!big_endian(std::size_t{1} << (b - 0xd9), n)) return false;
    } else {
      return false;
    }
    if (left() < n) return false;
    s = std::string_view(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }
  // The bytes left, and skipping `n` of them (n <= left()).
  std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }
  const char* here() const { return reinterpret_cast<const char*>(p_); }
  void skip(std::size_t n) { p_ += n; }

 private:
  // fix: the kind's fix-format byte (its top four bits); wide: its 16-bit format (32-bit next).
  bool header(unsigned char fix, unsigned char wide, std::uint32_t& n) {
    if (p_ == end_) return false;
    const unsigned char b = *p_++;
    std::uint64_t v = 0;
    if ((b & 0xf0) == fix) {
      v = b & 0x0f;
    } else if (b == wide || b == wide + 1) {
      if (!big_endian(b == wide ? 2 : 4, v)) return false;
    } else {
      return false;
    }
    n = static_cast<std::uint32_t>(v);
    return true;
  }
  bool big_endian(std::size_t bytes, std::uint64_t& v) {
    if (left() < bytes) return false;
    v = 0;
    for (std::size_t i = 0; i < bytes; ++i) v = v << 8 | p_[i];
    p_ += bytes;
    return true;
  }

  const unsigned char* p_;
  const unsigned char* end_;
};

// Runs as decode_body would take them: [first_slice, count, attempt], count and attempt within
// uint32, no empty run.
bool read_runs(Reader& r, std::vector<SliceRun>& runs) {
  std::uint32_t n = 0;
  if (!r.array(n) || n > proto::kMaxContainer) return false;
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
  return TasksFrame{t.epoch, std::make_shared<const JobSpec>(std::move(t.job)), std::move(t.runs)};
}

std::optional<TasksFrame> TasksDecoder::read(const void* data, std::size_t size) {
  if (size > proto::kMaxFrameBytes) return std::nullopt;
  const char* base = static_cast<const char*>(data);
  Reader r(base, size);
  std::uint32_t n = 0;
  std::uint64_t version = 0, type = 0, corr = 0;
  if (!r.array(n) || n != 4 || !r.uint(version) || version != proto::kVersion || !r.uint(type) ||
      type != static_cast<std::uint64_t>(proto::MsgType::kTasks) || !r.uint(corr) || !r.map(n)) {
    return std::nullopt;
  }
  TasksFrame f;
  bool epoch = false, job = false, runs = false;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!r.str(key)) return std::nullopt;
    if (key == "epoch" && !epoch) {
      if (!r.uint(f.epoch)) return std::nullopt;
      epoch = true;
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
      // A job not seen last: decoded as decode_body would, with the same limits and check.
      try {
        std::size_t off = static_cast<std::size_t>(r.here() - base);
        const std::size_t start = off;
        const msgpack::unpack_limit limit(proto::kMaxContainer, proto::kMaxContainer,
                                          proto::kMaxFrameBytes, proto::kMaxFrameBytes,
                                          proto::kMaxContainer, proto::kMaxDepth);
        msgpack::object_handle h = msgpack::unpack(base, size, off, nullptr, nullptr, limit);
        JobSpec spec;
        h.get().convert(spec);
        if (!check_job_spec(spec).ok()) return std::nullopt;
        job_bytes_.assign(base + start, off - start);
        job_ = std::make_shared<const JobSpec>(std::move(spec));
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
  if (!epoch || !job || !runs || r.left() != 0) return std::nullopt;
  return f;
}

}  // namespace zwq::worker
