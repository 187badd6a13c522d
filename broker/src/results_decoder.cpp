#include "results_decoder.hpp"

#include <limits>
#include <string_view>

#include "zwq/codec.hpp"
#include "zwq/msgpack_reader.hpp"
#include "zwq/protocol.hpp"

namespace zwq::broker {
namespace {

constexpr std::uint64_t kMax8 = std::numeric_limits<std::uint8_t>::max();
constexpr std::uint64_t kMax32 = std::numeric_limits<std::uint32_t>::max();

// An array's length is checked before anything is sized by it: at most kMaxContainer, as the
// generic codec allows, and at most the bytes left (every element takes one at least), so a
// bad length is refused without allocating for it (read_partial does the same).
bool read_items(MsgpackReader& r, std::vector<SliceOutcome>& items) {
  std::uint32_t n = 0;
  if (!r.array(n) || n > proto::kMaxContainer || n > r.left()) return false;
  items.resize(n);
  for (SliceOutcome& o : items) {
    std::uint32_t fields = 0;
    std::uint64_t attempt = 0, code = 0;
    std::string_view message;
    if (!r.array(fields) || fields != 5 || !r.uint(o.slice) || !r.uint(attempt) ||
        attempt > kMax32 || !r.uint(code) || code > kMax8 || !r.str(message, true) ||
        !read_partial(r, o.partial)) {
      return false;
    }
    o.attempt = static_cast<std::uint32_t>(attempt);
    o.code = static_cast<ErrorCode>(code);
    o.message.assign(message);
  }
  return true;
}

}  // namespace

std::optional<msg::Results> read_results(const void* data, std::size_t size) {
  if (size > proto::kMaxFrameBytes) return std::nullopt;
  MsgpackReader r(static_cast<const char*>(data), size);
  std::uint32_t n = 0;
  std::uint64_t type = 0, corr = 0;
  if (!read_frame_head(r, type, corr) ||
      type != static_cast<std::uint64_t>(proto::MsgType::kResults) || !r.map(n)) {
    return std::nullopt;
  }
  msg::Results m;
  auto text = [&r](std::string& out) {
    std::string_view v;
    if (!r.str(v, true)) return false;
    out.assign(v);
    return true;
  };
  unsigned seen = 0;  // one bit per key
  for (std::uint32_t i = 0; i < n; ++i) {
    std::string_view key;
    if (!r.str(key)) return std::nullopt;
    unsigned bit = 0;
    bool ok = false;
    if (key == "epoch") {
      bit = 1;
      ok = r.uint(m.epoch);
    } else if (key == "worker_id") {
      bit = 2;
      ok = text(m.worker_id);
    } else if (key == "job_id") {
      bit = 4;
      ok = text(m.job_id);
    } else if (key == "items") {
      bit = 8;
      ok = read_items(r, m.items);
    } else if (key == "slowest_us") {
      bit = 16;
      ok = r.uint(m.slowest_us);
    }
    if (!ok || (seen & bit) != 0) return std::nullopt;  // unknown, repeated or bad
    seen |= bit;
  }
  if (seen != 31 || r.left() != 0 || !check_message(m).ok()) return std::nullopt;
  return m;
}

}  // namespace zwq::broker
