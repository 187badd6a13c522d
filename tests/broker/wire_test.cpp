// Broker frame helpers: the pre-encoded Tasks frame and reading corr from refused frames.
#include "wire.hpp"

#include <catch2/catch.hpp>
#include <msgpack.hpp>

#include "zwq/codec.hpp"

using namespace zwq;
using namespace zwq::broker;

namespace {

// [version, type, corr, {}] with any numbers.
std::string raw_frame(std::uint64_t version, std::uint64_t type, std::uint64_t corr) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(4);
  pk.pack(version);
  pk.pack(type);
  pk.pack(corr);
  pk.pack_map(0);
  return std::string(buf.data(), buf.size());
}

msg::Tasks sample_tasks() {
  msg::Tasks expected;
  expected.epoch = 0x1234567890abcdefULL;
  expected.job.job_id = "j";
  expected.job.kernel = "sum";
  expected.job.input.uri = "shm:x";
  expected.job.input.dtype = DType::kF32;
  expected.job.count = 1000;
  expected.job.slice_size = 10;
  expected.job.params.set("k", 2.5);
  expected.runs = {SliceRun{0, 3, 1}, SliceRun{7, 2, 4}};
  return expected;
}

std::string encoded_tasks(const msg::Tasks& t) {
  msgpack::sbuffer spec, buf;
  msgpack::pack(spec, t.job);
  encode_tasks(buf, t.epoch, std::string(spec.data(), spec.size()), t.ref, t.runs);
  return std::string(buf.data(), buf.size());
}

}  // namespace

TEST_CASE("wire tasks frame with a ref is byte for byte the Tasks message", "[broker]") {
  msg::Tasks expected = sample_tasks();
  expected.ref = 0xfedcba9876543210ULL;
  const std::string frame = encoded_tasks(expected);
  CHECK(frame == encode(expected));
  auto decoded = decode<msg::Tasks>(frame.data(), frame.size());
  REQUIRE(decoded.ok());
  CHECK(decoded.value().job == expected.job);
  CHECK(decoded.value().runs == expected.runs);
  CHECK(decoded.value().epoch == expected.epoch);
  CHECK(decoded.value().ref == expected.ref);
}

TEST_CASE("wire tasks frame without a ref leaves the key out for older workers", "[broker]") {
  const msg::Tasks expected = sample_tasks();
  const std::string frame = encoded_tasks(expected);
  CHECK(frame.find("ref") == std::string::npos);
  auto decoded = decode<msg::Tasks>(frame.data(), frame.size());
  REQUIRE(decoded.ok());
  CHECK(decoded.value().job == expected.job);
  CHECK(decoded.value().runs == expected.runs);
  CHECK(decoded.value().epoch == expected.epoch);
  CHECK(decoded.value().ref == 0);
}

TEST_CASE("wire tasks frame by ref decodes with no job and fits libzmq's inline message",
          "[broker]") {
  msgpack::sbuffer buf;
  // The largest ref and a slice number just below 2^32: the longest such frame.
  const std::vector<SliceRun> runs{SliceRun{0xffffffffULL, 1, 0}};
  encode_tasks_by_ref(buf, ~std::uint64_t{0}, runs);
  // libzmq stores a message of up to 33 bytes (ZMQ_MAX_VSM_SIZE on 64-bit) in the message.
  CHECK(buf.size() <= 33);
  auto decoded = decode<msg::Tasks>(buf.data(), buf.size());
  REQUIRE(decoded.ok());
  CHECK(decoded.value().ref == ~std::uint64_t{0});
  CHECK(decoded.value().job == JobSpec{});
  CHECK(decoded.value().epoch == 0);
  CHECK(decoded.value().runs == runs);
}

TEST_CASE("wire tasks frame naming no job and carrying none is refused", "[broker]") {
  msgpack::sbuffer buf;
  encode_tasks_by_ref(buf, 0, {SliceRun{1, 1, 0}});
  CHECK_FALSE(decode<msg::Tasks>(buf.data(), buf.size()).ok());
  // A ref with part of a job (no id) is neither form.
  msg::Tasks half = sample_tasks();
  half.job.job_id.clear();
  half.ref = 5;
  const std::string frame = encode(half);
  CHECK(decode<msg::Tasks>(frame.data(), frame.size()).error().code == ErrorCode::kBadMessage);
}

TEST_CASE("wire tasks frame in a reused buffer holds only the last message", "[broker]") {
  // The first message is the longer one.
  msg::Tasks big{.epoch = 9, .job = {.job_id = std::string(40, 'j'), .kernel = "sum"}, .runs = {}};
  for (std::uint64_t i = 0; i < 50; ++i) big.runs.push_back(SliceRun{i * 10, 2, 1});
  msg::Tasks small{
      .epoch = 3, .job = {.job_id = "j", .kernel = "noop_range"}, .runs = {SliceRun{5, 1, 2}}};

  big.ref = 77;
  small.ref = 78;
  msgpack::sbuffer buf;
  for (const msg::Tasks* t : {&big, &small}) {
    msgpack::sbuffer spec;
    msgpack::pack(spec, t->job);
    encode_tasks(buf, t->epoch, std::string(spec.data(), spec.size()), t->ref, t->runs);
    CHECK(std::string(buf.data(), buf.size()) == encode(*t));
  }
}

TEST_CASE("wire peek_corr reads corr from a frame of another version", "[broker]") {
  const std::string f = raw_frame(2, 1, 4242);
  REQUIRE(decode_envelope(f.data(), f.size()).error().code == ErrorCode::kVersionMismatch);
  CHECK(peek_corr(f.data(), f.size()) == 4242);
}

TEST_CASE("wire peek_corr gives 0 for garbage", "[broker]") {
  const std::string garbage = "\xc1\xff not msgpack";
  CHECK(peek_corr(garbage.data(), garbage.size()) == 0);
  CHECK(peek_corr(nullptr, 0) == 0);
}
