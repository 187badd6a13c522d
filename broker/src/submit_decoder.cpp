#include "submit_decoder.hpp"

#include <cstring>
#include <msgpack.hpp>
#include <string_view>

#include "zwq/codec.hpp"
#include "zwq/msgpack_reader.hpp"
#include "zwq/protocol.hpp"

namespace zwq::broker {
namespace {

// One job the usual way: the msgpack object at `r`, with the codec's limits, converted as
// decode_body converts it. Moves `r` past it.
bool read_job(const char* base, std::size_t size, MsgpackReader& r, JobSpec& out) {
  try {
    std::size_t off = static_cast<std::size_t>(r.here() - base);
    const std::size_t start = off;
    // In the frame, a job lies in its array, in the body map, in the frame's array.
    msgpack::object_handle h = unpack_limited(base, size, off, 3);
    if (h.get().type != msgpack::type::MAP) return false;
    h.get().convert(out);
    r.skip(off - start);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

std::optional<DecodedSubmitMany> read_submit_many(const void* data, std::size_t size) {
  if (size > proto::kMaxFrameBytes) return std::nullopt;
  const char* base = static_cast<const char*>(data);
  MsgpackReader r(base, size);
  std::uint32_t n = 0;
  std::uint64_t type = 0;
  DecodedSubmitMany d;
  if (!read_frame_head(r, type, d.corr) ||
      type != static_cast<std::uint64_t>(proto::MsgType::kSubmitManyReq) || !r.map(n) || n != 1) {
    return std::nullopt;
  }
  std::string_view key;
  std::uint32_t jobs = 0;
  // (A job takes a byte at least: a bad count is refused before anything is sized by it.)
  if (!r.str(key) || key != "jobs" || !r.array(jobs) || jobs > proto::kMaxBatchJobs ||
      jobs > r.left()) {
    return std::nullopt;
  }
  d.req.jobs.reserve(jobs);
  // The job before, when its map started with its job_id: its field count and the bytes of its
  // fields after the id.
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::size_t prev = kNone;
  std::uint32_t prev_fields = 0;
  std::string_view prev_rest;
  for (std::uint32_t i = 0; i < jobs; ++i) {
    const MsgpackReader at_job = r;
    std::uint32_t fields = 0;
    std::string_view id;
    MsgpackReader after_id = r;
    const bool id_first = after_id.map(fields) && fields > 0 && after_id.str(key) &&
                          key == "job_id" && after_id.str(id);
    if (id_first && prev != kNone && fields == prev_fields && after_id.left() >= prev_rest.size() &&
        std::memcmp(after_id.here(), prev_rest.data(), prev_rest.size()) == 0) {
      JobSpec& copy = d.req.jobs.emplace_back(d.req.jobs[prev]);
      copy.job_id.assign(id);
      r = after_id;
      r.skip(prev_rest.size());
      ++d.copied;
      continue;
    }
    r = at_job;
    if (!read_job(base, size, r, d.req.jobs.emplace_back())) return std::nullopt;
    prev = kNone;
    if (id_first) {
      prev = d.req.jobs.size() - 1;
      prev_fields = fields;
      prev_rest =
          std::string_view(after_id.here(), static_cast<std::size_t>(r.here() - after_id.here()));
    }
  }
  if (r.left() != 0) return std::nullopt;
  return d;
}

}  // namespace zwq::broker
