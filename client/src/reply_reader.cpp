#include "reply_reader.hpp"

#include <string_view>
#include <type_traits>

#include "zwq/codec.hpp"
#include "zwq/msgpack_reader.hpp"
#include "zwq/protocol.hpp"

namespace zwq::detail {
namespace {

static_assert(std::is_same_v<std::underlying_type_t<JobState>, std::uint8_t>);
static_assert(std::is_same_v<std::underlying_type_t<ErrorCode>, std::uint8_t>);
static_assert(std::is_same_v<std::underlying_type_t<Combiner>, std::uint8_t>);

// Each reads one value as decode_body converts it, or returns false (the caller falls back).
class Reader {
 public:
  Reader(const void* data, std::size_t size) : r_(static_cast<const char*>(data), size) {}

  bool done() const { return r_.left() == 0; }
  bool head(std::uint64_t& type, std::uint64_t& corr) { return read_frame_head(r_, type, corr); }
  bool partial(Partial& p) { return read_partial(r_, p); }
  bool uint(std::uint64_t& v) { return r_.uint(v); }
  bool real(double& v) { return r_.real(v); }
  // A map of exactly `fields` keys (their names are read by key()).
  bool map(std::uint32_t fields) {
    std::uint32_t n = 0;
    return r_.map(n) && n == fields;
  }
  // A map of `n` keys, for the caller to judge.
  bool map_of(std::uint32_t& n) { return r_.map(n); }
  // An array of n elements, each at least one byte: n is checked against the frame before any
  // container is sized by it.
  bool array(std::uint32_t& n) {
    return r_.array(n) && n <= proto::kMaxContainer && n <= r_.left();
  }
  bool key(std::string_view name) {
    std::string_view k;
    return r_.str(k) && k == name;
  }
  // msgpack-c converts a str or a bin into a std::string.
  bool text(std::string& s) {
    std::string_view v;
    if (!r_.str(v, true)) return false;
    s.assign(v);
    return true;
  }
  bool boolean(bool& b) {
    if (r_.left() == 0) return false;
    const unsigned char c = static_cast<unsigned char>(*r_.here());
    if (c != 0xc2 && c != 0xc3) return false;
    b = c == 0xc3;
    r_.skip(1);
    return true;
  }
  // An enum of one byte (MSGPACK_ADD_ENUM converts through its underlying type, which refuses
  // what does not fit).
  template <typename E>
  bool small_enum(E& e) {
    static_assert(sizeof(E) == 1);
    std::uint64_t v = 0;
    if (!r_.uint(v) || v > 0xff) return false;
    e = static_cast<E>(v);
    return true;
  }

 private:
  MsgpackReader r_;
};

bool read_status(Reader& r, JobStatus& s) {
  // 13 keys from a broker that predates `ahead` (which then stays 0), 14 from one that sends it.
  std::uint32_t fields = 0;
  return r.map_of(fields) && (fields == 13 || fields == 14) && r.key("job_id") &&
         r.text(s.job_id) && r.key("kernel") && r.text(s.kernel) && r.key("state") &&
         r.small_enum(s.state) && r.key("total") && r.uint(s.total) && r.key("done") &&
         r.uint(s.done) && r.key("inflight") && r.uint(s.inflight) && r.key("retried") &&
         r.uint(s.retried) && r.key("discarded") && r.uint(s.discarded) && r.key("elapsed_ms") &&
         r.uint(s.elapsed_ms) && r.key("error_code") && r.small_enum(s.error_code) &&
         r.key("error") && r.text(s.error) && r.key("lease_ms") && r.uint(s.lease_ms) &&
         r.key("waiting") && r.text(s.waiting) &&
         (fields == 13 || (r.key("ahead") && r.uint(s.ahead)));
}

bool read_result(Reader& r, JobResult& res) {
  std::uint32_t n = 0;
  if (!r.map(4) || !r.key("value") || !r.real(res.value) || !r.key("variance") ||
      !r.real(res.variance) || !r.key("merged") || !r.partial(res.merged) || !r.key("gathered") ||
      !r.array(n)) {
    return false;
  }
  res.gathered.resize(n);
  for (auto& g : res.gathered) {
    if (!r.text(g)) return false;
  }
  return true;
}

bool read_item(Reader& r, msg::WaitItem& item) {
  return r.map(5) && r.key("job_id") && r.text(item.job_id) && r.key("code") &&
         r.small_enum(item.code) && r.key("message") && r.text(item.message) && r.key("status") &&
         read_status(r, item.status) && r.key("result") && read_result(r, item.result);
}

bool read_submit_item(Reader& r, msg::SubmitItem& item) {
  return r.map(6) && r.key("job_id") && r.text(item.job_id) && r.key("code") &&
         r.small_enum(item.code) && r.key("message") && r.text(item.message) &&
         r.key("total_slices") && r.uint(item.total_slices) && r.key("slice_size") &&
         r.uint(item.slice_size) && r.key("existed") && r.boolean(item.existed);
}

// The frame's header, of `type`, then its body map of `fields` keys: true when read.
bool read_header(Reader& r, proto::MsgType type, std::uint32_t fields, std::uint64_t& corr) {
  std::uint64_t got = 0;
  return r.head(got, corr) && got == static_cast<std::uint64_t>(type) && r.map(fields);
}

// A reply whose body is {items: [...], ...}: its header, then its items, each read by
// `read_one`; `rest` reads what follows the items. Both replies are of this form.
template <typename Rep, typename ReadOne, typename ReadRest>
std::optional<ReadReply<Rep>> read_items_reply(const void* data, std::size_t size,
                                               std::uint32_t fields, ReadOne read_one,
                                               ReadRest rest) {
  if (size > proto::kMaxFrameBytes) return std::nullopt;
  Reader r(data, size);
  ReadReply<Rep> out;
  std::uint32_t n = 0;
  if (!read_header(r, Rep::kType, fields, out.corr) || !r.key("items") || !r.array(n)) {
    return std::nullopt;
  }
  out.rep.items.resize(n);
  for (auto& item : out.rep.items) {
    if (!read_one(r, item)) return std::nullopt;
  }
  if (!rest(r, out.rep) || !r.done()) return std::nullopt;
  return out;
}

}  // namespace

std::optional<ReadReply<msg::WaitManyRep>> read_wait_many_rep(const void* data, std::size_t size) {
  return read_items_reply<msg::WaitManyRep>(
      data, size, 2, read_item,
      [](Reader& r, msg::WaitManyRep& rep) { return r.key("left") && r.uint(rep.left); });
}

std::optional<ReadReply<msg::SubmitManyRep>> read_submit_many_rep(const void* data,
                                                                  std::size_t size) {
  return read_items_reply<msg::SubmitManyRep>(data, size, 1, read_submit_item,
                                              [](Reader&, msg::SubmitManyRep&) { return true; });
}

}  // namespace zwq::detail
