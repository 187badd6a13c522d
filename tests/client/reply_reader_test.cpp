// read_wait_many_rep and read_submit_many_rep: replies as the broker writes them read as
// decode<Rep> reads them, and anything else left to the usual decoding.
#include "reply_reader.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <msgpack.hpp>
#include <string>

#include "hand_frame.hpp"
#include "zwq/codec.hpp"

using namespace zwq;
using zwq::detail::read_submit_many_rep;
using zwq::detail::read_wait_many_rep;
using zwq::test::hand_frame;

namespace {

msg::WaitItem done_item(const std::string& id, double value) {
  msg::WaitItem item;
  item.job_id = id;
  item.status.job_id = id;
  item.status.kernel = "sum";
  item.status.state = JobState::kDone;
  item.status.total = 1024;
  item.status.done = 1024;
  item.status.retried = 3;
  item.status.discarded = 1;
  item.status.elapsed_ms = 70000;
  item.result.value = value;
  item.result.merged.combiner = Combiner::kSum;
  item.result.merged.n = 1u << 28;
  item.result.merged.hi = value;
  item.result.merged.lo = -1.5e-17;
  return item;
}

// A reply of every kind of item: results of several combiners, a failed job, an unknown one,
// a status that says why its job waits, one behind older jobs.
msg::WaitManyRep varied_reply() {
  msg::WaitManyRep rep;
  rep.items.push_back(done_item("a", 268435456.0));  // a double that holds an integer
  rep.items.push_back(done_item("b-with-an-identifier-longer-than-31-characters", -0.1));
  msg::WaitItem moments = done_item("m", 2.5);
  moments.result.variance = 1.25;
  moments.result.merged.combiner = Combiner::kMoments;
  moments.result.merged.hi = std::numeric_limits<double>::quiet_NaN();
  rep.items.push_back(moments);
  msg::WaitItem histogram = done_item("h", 3);
  histogram.result.merged.combiner = Combiner::kHistogram;
  histogram.result.merged.bins = {0, 1, 2, 300, 70000, 5000000000ull, 7};
  rep.items.push_back(histogram);
  msg::WaitItem gather = done_item("g", 0);
  gather.result.merged.combiner = Combiner::kGather;
  gather.result.gathered = {std::string("\0\1\2", 3), "", std::string(300, 'x')};
  rep.items.push_back(gather);
  msg::WaitItem failed = done_item("f", 0);
  failed.status.state = JobState::kFailed;
  failed.status.error_code = ErrorCode::kKernelFailed;
  failed.status.error = std::string(70000, 'e');  // a str 32
  rep.items.push_back(failed);
  msg::WaitItem unknown;
  unknown.job_id = "gone";
  unknown.code = ErrorCode::kUnknownJob;
  unknown.message = "job 'gone' is not known";
  rep.items.push_back(unknown);
  msg::WaitItem waiting = done_item("w", 0);  // a status as a job that waits has it
  waiting.status.state = JobState::kQueued;
  waiting.status.done = 0;
  waiting.status.waiting = "no registered worker has kernel 'sum'";
  rep.items.push_back(waiting);
  msg::WaitItem behind = done_item("q", 0);  // one that a worker could take, behind older jobs
  behind.status.state = JobState::kQueued;
  behind.status.done = 0;
  behind.status.ahead = 300;
  rep.items.push_back(behind);
  msg::WaitItem exact = done_item("x", 1.0);  // an exact sum, its components in terms
  exact.result.merged.combiner = Combiner::kExactSum;
  exact.result.merged.hi = exact.result.merged.lo = 0;
  exact.result.merged.terms = {0x1p-200, 1.0, 0x1p200, -0x1p200};
  rep.items.push_back(exact);
  rep.left = 12;
  return rep;
}

// A WaitManyRep of one item packed by hand: `job_id(pk)` and `status(pk)` pack those two values,
// the rest is packed as the broker packs it.
template <typename PackJobId, typename PackStatus>
std::string one_item_reply(const msg::WaitItem& item, PackJobId job_id, PackStatus status) {
  return hand_frame(msg::WaitManyRep::kType, 2, [&](auto& pk) {
    pk.pack(std::string("items"));
    pk.pack_array(1);
    pk.pack_map(5);
    pk.pack(std::string("job_id"));
    job_id(pk);
    pk.pack(std::string("code"));
    pk.pack(item.code);
    pk.pack(std::string("message"));
    pk.pack(item.message);
    pk.pack(std::string("status"));
    status(pk);
    pk.pack(std::string("result"));
    pk.pack(item.result);
    pk.pack(std::string("left"));
    pk.pack(0);
  });
}

// `frame` as the usual decoding reads it, after checking that the fast reader reads it too (it
// does not leave it to the slower decoding) and reads the same.
msg::WaitManyRep read_both_ways(const std::string& frame) {
  auto usual = decode<msg::WaitManyRep>(frame.data(), frame.size());
  REQUIRE(usual.ok());
  auto fast = read_wait_many_rep(frame.data(), frame.size());
  REQUIRE(fast.has_value());
  CHECK(encode(fast->rep) == encode(usual.value()));
  return fast->rep;
}

}  // namespace

TEST_CASE("wait many reader reads a broker's reply as the usual decoding reads it", "[client]") {
  const msg::WaitManyRep sent = varied_reply();
  const std::string frame = encode(sent, 77);
  auto usual = decode<msg::WaitManyRep>(frame.data(), frame.size());
  REQUIRE(usual.ok());
  auto fast = read_wait_many_rep(frame.data(), frame.size());
  REQUIRE(fast.has_value());
  CHECK(fast->corr == 77);
  // Both read the same fields: they encode to the same bytes (NaN included), the frame's own.
  CHECK(encode(fast->rep, 77) == encode(usual.value(), 77));
  CHECK(encode(fast->rep, 77) == frame);
  REQUIRE(fast->rep.items.size() == sent.items.size());
  CHECK(fast->rep.items[1].job_id == sent.items[1].job_id);
  CHECK(std::isnan(fast->rep.items[2].result.merged.hi));
  CHECK(fast->rep.items[3].result.merged.bins == sent.items[3].result.merged.bins);
  CHECK(fast->rep.items[4].result.gathered == sent.items[4].result.gathered);
  CHECK(fast->rep.items[5].status.error_code == ErrorCode::kKernelFailed);
  CHECK(fast->rep.items[6].code == ErrorCode::kUnknownJob);
  CHECK(fast->rep.items[7].status.waiting == sent.items[7].status.waiting);
  CHECK(fast->rep.items[8].status.ahead == 300);
  CHECK(fast->rep.left == 12);

  const std::string empty = encode(msg::WaitManyRep{}, 3);
  auto none = read_wait_many_rep(empty.data(), empty.size());
  REQUIRE(none.has_value());
  CHECK(none->rep.items.empty());
}

TEST_CASE("wait many reader reads bin where a string goes, as msgpack-c converts it", "[client]") {
  const msg::WaitItem item = done_item("a", 1);
  const std::string frame = one_item_reply(
      item,
      [](auto& pk) {
        pk.pack_bin(1);
        pk.pack_bin_body("a", 1);
      },
      [&](auto& pk) { pk.pack(item.status); });
  CHECK(read_both_ways(frame).items.at(0).job_id == "a");
}

TEST_CASE("wait many reader leaves every other frame to the usual decoding", "[client]") {
  const msg::WaitManyRep rep = varied_reply();
  const std::string good = encode(rep, 1);
  REQUIRE(read_wait_many_rep(good.data(), good.size()).has_value());

  const std::string other_type = encode(msg::WaitManyReq{.job_ids = {"a"}}, 1);
  const std::string other_version = hand_frame(
      msg::WaitManyRep::kType, 2,
      [&](auto& pk) {
        pk.pack(std::string("items"));
        pk.pack(rep.items);
        pk.pack(std::string("left"));
        pk.pack(0);
      },
      proto::kVersion + 1);
  // Another encoder's order: left first.
  const std::string reordered = hand_frame(msg::WaitManyRep::kType, 2, [&](auto& pk) {
    pk.pack(std::string("left"));
    pk.pack(0);
    pk.pack(std::string("items"));
    pk.pack(rep.items);
  });
  const std::string extra_key = hand_frame(msg::WaitManyRep::kType, 3, [&](auto& pk) {
    pk.pack(std::string("items"));
    pk.pack(rep.items);
    pk.pack(std::string("left"));
    pk.pack(0);
    pk.pack(std::string("note"));
    pk.pack(1);
  });
  // An item without its status and result (decode leaves them default; the reader does not).
  const std::string short_item = hand_frame(msg::WaitManyRep::kType, 2, [&](auto& pk) {
    pk.pack(std::string("items"));
    pk.pack_array(1);
    pk.pack_map(1);
    pk.pack(std::string("job_id"));
    pk.pack(std::string("a"));
    pk.pack(std::string("left"));
    pk.pack(0);
  });
  // A state that does not fit its enum's byte: the usual decoding refuses it too. The frame is
  // packed by hand around the status, which goes in as raw bytes.
  msgpack::sbuffer status_buf;
  msgpack::pack(status_buf, rep.items[0].status);
  const std::string status_bytes(status_buf.data(), status_buf.size());
  const auto with_status = [&](const std::string& raw_status) {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_array(4);
    pk.pack(proto::kVersion);
    pk.pack(static_cast<unsigned>(msg::WaitManyRep::kType));
    pk.pack(0u);
    pk.pack_map(2);
    pk.pack(std::string("items"));
    pk.pack_array(1);
    pk.pack_map(5);
    pk.pack(std::string("job_id"));
    pk.pack(std::string("a"));
    pk.pack(std::string("code"));
    pk.pack(0);
    pk.pack(std::string("message"));
    pk.pack(std::string());
    pk.pack(std::string("status"));
    buf.write(raw_status.data(), raw_status.size());
    pk.pack(std::string("result"));
    pk.pack(rep.items[0].result);
    pk.pack(std::string("left"));
    pk.pack(0);
    return std::string(buf.data(), buf.size());
  };
  const std::string in_range = with_status(status_bytes);
  REQUIRE(read_wait_many_rep(in_range.data(), in_range.size()).has_value());
  std::string wide_status = status_bytes;
  const std::string state_key = "\xa5state";
  const auto at = wide_status.find(state_key);
  REQUIRE(at != std::string::npos);
  wide_status.replace(at + state_key.size(), 1, "\xcd\x01\x2c");  // uint 16: 300
  const std::string wide = with_status(wide_status);
  CHECK_FALSE(decode<msg::WaitManyRep>(wide.data(), wide.size()).ok());
  // An array count beyond what the frame holds.
  const std::string huge_count = hand_frame(msg::WaitManyRep::kType, 2, [&](auto& pk) {
    pk.pack(std::string("items"));
    pk.pack_array(1u << 30);
  });

  for (const std::string& frame :
       {good.substr(0, good.size() - 1), good + "x", other_type, other_version, reordered,
        extra_key, short_item, wide, huge_count}) {
    CHECK_FALSE(read_wait_many_rep(frame.data(), frame.size()).has_value());
  }
  // The usual decoding reads what the reader leaves to it when it is well formed.
  for (const std::string& frame : {reordered, extra_key, short_item}) {
    CHECK(decode<msg::WaitManyRep>(frame.data(), frame.size()).ok());
  }
}

TEST_CASE("submit many reader reads a broker's reply as the usual decoding reads it", "[client]") {
  msg::SubmitManyRep sent;
  sent.items.push_back(msg::SubmitItem{.job_id = "a", .total_slices = 1, .slice_size = 1});
  sent.items.push_back(msg::SubmitItem{.job_id = "an-id-longer-than-thirty-one-characters",
                                       .total_slices = 5000000000ull,
                                       .slice_size = 65536,
                                       .existed = true});
  sent.items.push_back(msg::SubmitItem{
      .job_id = "bad", .code = ErrorCode::kUnknownKernel, .message = std::string(300, 'm')});
  const std::string frame = encode(sent, 5);
  auto usual = decode<msg::SubmitManyRep>(frame.data(), frame.size());
  REQUIRE(usual.ok());
  auto fast = read_submit_many_rep(frame.data(), frame.size());
  REQUIRE(fast.has_value());
  CHECK(fast->corr == 5);
  CHECK(encode(fast->rep, 5) == encode(usual.value(), 5));
  CHECK(encode(fast->rep, 5) == frame);
  REQUIRE(fast->rep.items.size() == 3);
  CHECK(fast->rep.items[1].existed);
  CHECK_FALSE(fast->rep.items[0].existed);
  CHECK(fast->rep.items[1].total_slices == 5000000000ull);
  CHECK(fast->rep.items[2].code == ErrorCode::kUnknownKernel);
}

TEST_CASE("submit many reader leaves every other frame to the usual decoding", "[client]") {
  msg::SubmitManyRep rep;
  rep.items.push_back(msg::SubmitItem{.job_id = "a", .total_slices = 1, .slice_size = 1});
  const std::string good = encode(rep, 1);
  REQUIRE(read_submit_many_rep(good.data(), good.size()).has_value());
  const msg::SubmitItem& item = rep.items[0];
  // The item's first five fields as the broker writes them, then `existed` as `last` packs it
  // (nothing: a map of five).
  const auto item_frame = [&](std::uint32_t fields, auto last) {
    return hand_frame(msg::SubmitManyRep::kType, 1, [&](auto& pk) {
      pk.pack(std::string("items"));
      pk.pack_array(1);
      pk.pack_map(fields);
      pk.pack(std::string("job_id"));
      pk.pack(item.job_id);
      pk.pack(std::string("code"));
      pk.pack(item.code);
      pk.pack(std::string("message"));
      pk.pack(item.message);
      pk.pack(std::string("total_slices"));
      pk.pack(item.total_slices);
      pk.pack(std::string("slice_size"));
      pk.pack(item.slice_size);
      last(pk);
    });
  };
  // existed as 1, not true: msgpack-c refuses an integer for a bool.
  const std::string int_bool = item_frame(6, [](auto& pk) {
    pk.pack(std::string("existed"));
    pk.pack(1);
  });
  CHECK_FALSE(decode<msg::SubmitManyRep>(int_bool.data(), int_bool.size()).ok());
  // Without its existed key: the usual decoding leaves it false.
  const std::string five_keys = item_frame(5, [](auto&) {});
  CHECK(decode<msg::SubmitManyRep>(five_keys.data(), five_keys.size()).ok());
  const std::string wait_reply = encode(msg::WaitManyRep{}, 1);
  for (const std::string& frame :
       {good.substr(0, good.size() - 1), good + "x", int_bool, five_keys, wait_reply}) {
    CHECK_FALSE(read_submit_many_rep(frame.data(), frame.size()).has_value());
  }
}

TEST_CASE("wait many reader reads a status without ahead, as a broker that predates it sends",
          "[client]") {
  const msg::WaitItem item = done_item("old", 7.0);
  const JobStatus& st = item.status;
  const auto old_status = [&](auto& pk) {
    pk.pack_map(13);  // every key but `ahead`, in the order the broker writes them
    pk.pack(std::string("job_id"));
    pk.pack(st.job_id);
    pk.pack(std::string("kernel"));
    pk.pack(st.kernel);
    pk.pack(std::string("state"));
    pk.pack(st.state);
    for (const auto& [key, value] : {std::pair<const char*, std::uint64_t>{"total", st.total},
                                     {"done", st.done},
                                     {"inflight", st.inflight},
                                     {"retried", st.retried},
                                     {"discarded", st.discarded},
                                     {"elapsed_ms", st.elapsed_ms}}) {
      pk.pack(std::string(key));
      pk.pack(value);
    }
    pk.pack(std::string("error_code"));
    pk.pack(st.error_code);
    pk.pack(std::string("error"));
    pk.pack(st.error);
    pk.pack(std::string("lease_ms"));
    pk.pack(st.lease_ms);
    pk.pack(std::string("waiting"));
    pk.pack(st.waiting);
  };
  const std::string frame = one_item_reply(
      item, [&](auto& pk) { pk.pack(item.job_id); }, old_status);
  const msg::WaitManyRep rep = read_both_ways(frame);
  CHECK(rep.items.at(0).status.retried == 3);
  CHECK(rep.items.at(0).status.ahead == 0);
}
