// read_submit_many: SubmitManyReq frames read as decode<msg::SubmitManyReq> reads them, jobs that
// differ only in their ids copied from the one before, and anything else left to the usual
// decoding.
#include "submit_decoder.hpp"

#include <catch2/catch.hpp>
#include <msgpack.hpp>
#include <string>
#include <vector>

#include "hand_frame.hpp"
#include "sample_job.hpp"
#include "zwq/codec.hpp"

using namespace zwq;
using zwq::broker::read_submit_many;
using zwq::test::hand_frame;
using zwq::test::sample_sum_job;

namespace {

// The frame read both ways: the same jobs, the same corr.
broker::DecodedSubmitMany both_ways(const std::string& frame) {
  auto usual = decode<msg::SubmitManyReq>(frame.data(), frame.size());
  REQUIRE(usual.ok());
  auto fast = read_submit_many(frame.data(), frame.size());
  REQUIRE(fast.has_value());
  CHECK(fast->corr == 42);
  CHECK(fast->req.jobs == usual.value().jobs);
  return *fast;
}

}  // namespace

TEST_CASE("submit decoder copies jobs that differ only in their ids, as the usual decoding reads",
          "[broker]") {
  msg::SubmitManyReq m;
  for (const char* id : {"a", "b-with-a-longer-id", "c"}) m.jobs.push_back(sample_sum_job(id));
  const auto d = both_ways(encode(m, 42));
  CHECK(d.copied == 2);
  CHECK(d.req.jobs[1].job_id == "b-with-a-longer-id");
  CHECK(d.req.jobs[2].params.get_string("mode", "") == "fast");
}

TEST_CASE("submit decoder keeps each dataset's host, copied jobs and jobs read alone alike",
          "[broker]") {
  msg::SubmitManyReq m;
  for (const char* id : {"a", "b", "c"}) m.jobs.push_back(sample_sum_job(id));
  m.jobs[0].input.host = m.jobs[1].input.host = "node01";
  m.jobs[2].input.host = "node02";
  const auto d = both_ways(encode(m, 42));
  CHECK(d.copied == 1);
  CHECK(d.req.jobs[1].input.host == "node01");
  CHECK(d.req.jobs[2].input.host == "node02");
}

TEST_CASE("submit decoder reads a job that differs in any other field on its own", "[broker]") {
  msg::SubmitManyReq m;
  for (int i = 0; i < 6; ++i) m.jobs.push_back(sample_sum_job("j" + std::to_string(i)));
  m.jobs[1].count = 999;             // another number
  m.jobs[2].params.set("extra", 1);  // another parameter: the rest is longer
  m.jobs[3].input.uri = "shm:dat";   // another dataset: the rest is shorter
  m.jobs[4].kernel = "mean";         // another kernel
  m.jobs[5] = m.jobs[4];             // like job 4 but for its id
  m.jobs[5].job_id = "j5";
  const auto d = both_ways(encode(m, 42));
  CHECK(d.copied == 1);  // only the last
}

TEST_CASE(
    "submit decoder reads jobs written in another field order, or without an id, on their own",
    "[broker]") {
  // A job map whose first key is not job_id (another encoder), then two with no job_id at all.
  const std::string frame = hand_frame(msg::SubmitManyReq::kType, 1, [](auto& pk) {
    pk.pack(std::string("jobs"));
    pk.pack_array(3);
    pk.pack_map(3);
    pk.pack(std::string("kernel"));
    pk.pack(std::string("pi"));
    pk.pack(std::string("count"));
    pk.pack(100);
    pk.pack(std::string("job_id"));
    pk.pack(std::string("x1"));
    for (int i = 0; i < 2; ++i) {
      pk.pack_map(2);
      pk.pack(std::string("kernel"));
      pk.pack(std::string("pi"));
      pk.pack(std::string("count"));
      pk.pack(100);
    }
  });
  auto usual = decode<msg::SubmitManyReq>(frame.data(), frame.size());
  REQUIRE(usual.ok());
  auto fast = read_submit_many(frame.data(), frame.size());
  REQUIRE(fast.has_value());
  CHECK(fast->copied == 0);
  CHECK(fast->req.jobs == usual.value().jobs);
  CHECK(fast->req.jobs[0].job_id == "x1");
}

TEST_CASE("submit decoder leaves every other frame to the usual decoding", "[broker]") {
  msg::SubmitManyReq two;
  two.jobs = {sample_sum_job("a"), sample_sum_job("b")};
  const std::string good = encode(two, 42);
  REQUIRE(read_submit_many(good.data(), good.size()).has_value());

  msg::SubmitManyReq too_many;
  too_many.jobs.assign(proto::kMaxBatchJobs + 1, JobSpec{});
  const std::string over = encode(too_many, 1);
  const std::string other_type = encode(msg::WaitManyReq{.job_ids = {"a"}}, 1);
  const std::string extra_key = hand_frame(msg::SubmitManyReq::kType, 2, [&](auto& pk) {
    pk.pack(std::string("jobs"));
    pk.pack(std::vector<JobSpec>{sample_sum_job("a")});
    pk.pack(std::string("note"));
    pk.pack(1);
  });
  const std::string job_not_a_map = hand_frame(msg::SubmitManyReq::kType, 1, [](auto& pk) {
    pk.pack(std::string("jobs"));
    pk.pack_array(1);
    pk.pack(7);
  });
  const std::string id_not_a_string = hand_frame(msg::SubmitManyReq::kType, 1, [](auto& pk) {
    pk.pack(std::string("jobs"));
    pk.pack_array(1);
    pk.pack_map(1);
    pk.pack(std::string("job_id"));
    pk.pack(5);
  });
  const std::string old_version = hand_frame(
      msg::SubmitManyReq::kType, 1,
      [&](auto& pk) {
        pk.pack(std::string("jobs"));
        pk.pack(std::vector<JobSpec>{sample_sum_job("a")});
      },
      proto::kVersion + 1);
  for (const std::string& frame : {good.substr(0, good.size() - 3), good + "x", over, other_type,
                                   extra_key, job_not_a_map, id_not_a_string, old_version}) {
    CHECK_FALSE(read_submit_many(frame.data(), frame.size()).has_value());
  }
}

// A job's unknown field may hold nested arrays; the fast reading counts the frame's own nesting
// towards the codec's depth limit as the usual decoding does, so both refuse the same frames.
TEST_CASE("submit decoder refuses a job nested too deep exactly when the usual decoding does",
          "[broker]") {
  int accepted = 0;
  for (std::uint32_t nesting = 1; nesting <= proto::kMaxDepth; ++nesting) {
    INFO("arrays nested " << nesting << " deep in a job");
    const std::string frame = hand_frame(msg::SubmitManyReq::kType, 1, [&](auto& pk) {
      pk.pack(std::string("jobs"));
      pk.pack_array(1);
      test::pack_nested_job(pk, nesting);
    });
    const bool usual = decode<msg::SubmitManyReq>(frame.data(), frame.size()).ok();
    CHECK(read_submit_many(frame.data(), frame.size()).has_value() == usual);
    accepted += usual ? 1 : 0;
  }
  CHECK(accepted > 0);                                   // shallow ones are read
  CHECK(accepted < static_cast<int>(proto::kMaxDepth));  // and some are too deep
}
