// TasksDecoder: Tasks messages read as decode<msg::Tasks> reads them, the job decoded once for
// the messages that repeat it, and anything else left to the usual decoding.
#include "tasks_decoder.hpp"

#include <catch2/catch.hpp>
#include <msgpack.hpp>

#include "hand_frame.hpp"
#include "sample_job.hpp"
#include "zwq/codec.hpp"

using namespace zwq;
using zwq::test::hand_frame;
using zwq::test::sample_sum_job;
using zwq::test::tasks_by_ref;
using zwq::worker::TasksDecoder;

namespace {

std::string tasks_frame(const JobSpec& job, std::vector<SliceRun> runs, std::uint64_t epoch = 7) {
  return encode(msg::Tasks{.epoch = epoch, .job = job, .runs = std::move(runs)});
}

}  // namespace

TEST_CASE("tasks decoder reads a Tasks message as decode does", "[worker]") {
  TasksDecoder d;
  const std::string f = tasks_frame(sample_sum_job("j1"), {{0, 4, 1}, {10, 2, 3}}, 99);
  auto fast = d.read(f.data(), f.size());
  auto slow = decode<msg::Tasks>(f.data(), f.size());
  REQUIRE(fast);
  REQUIRE(slow.ok());
  CHECK(fast->epoch == slow.value().epoch);
  CHECK(fast->runs == slow.value().runs);
  CHECK(*fast->job == slow.value().job);
}

TEST_CASE("tasks decoder reads a Tasks naming its job by ref as decode does", "[worker]") {
  TasksDecoder d;
  const std::string f = tasks_by_ref(0xabcdef0123456789ULL, {{5, 1, 2}});
  auto fast = d.read(f.data(), f.size());
  auto slow = decode<msg::Tasks>(f.data(), f.size());
  REQUIRE(fast);
  REQUIRE(slow.ok());
  CHECK(fast->named());
  CHECK(fast->ref == 0xabcdef0123456789ULL);
  CHECK(fast->runs == std::vector<SliceRun>{{5, 1, 2}});
  const worker::TasksFrame usual = worker::TasksFrame::from(slow.value());
  CHECK(usual.named());
  CHECK(usual.ref == fast->ref);
  CHECK(usual.runs == fast->runs);
  // A Tasks that carries its job keeps its ref alongside.
  msg::Tasks full{.epoch = 3, .job = sample_sum_job("j1"), .runs = {{0, 1, 1}}, .ref = 9};
  const std::string g = encode(full);
  auto with_job = d.read(g.data(), g.size());
  REQUIRE(with_job);
  CHECK_FALSE(with_job->named());
  CHECK(with_job->ref == 9);
  CHECK(*with_job->job == full.job);
}

TEST_CASE("tasks decoder decodes a job once for the messages that repeat it", "[worker]") {
  TasksDecoder d;
  const std::string a = tasks_frame(sample_sum_job("j1"), {{0, 1, 1}});
  const std::string b = tasks_frame(sample_sum_job("j1"), {{1, 1, 1}});
  auto first = d.read(a.data(), a.size());
  auto second = d.read(b.data(), b.size());
  REQUIRE(first);
  REQUIRE(second);
  CHECK(first->job == second->job);  // the same JobSpec, shared
  CHECK(second->runs == std::vector<SliceRun>{{1, 1, 1}});
  CHECK(d.decoded() == 1);
  CHECK(d.reused() == 1);
}

TEST_CASE("tasks decoder decodes again a job that differs from the last one", "[worker]") {
  TasksDecoder d;
  JobSpec longer = sample_sum_job("j1");
  longer.params.set("zz", std::int64_t{1});  // the last job's bytes are a prefix of its bytes
  for (const JobSpec& j :
       {sample_sum_job("j1"), sample_sum_job("j2"), longer, sample_sum_job("j1")}) {
    const std::string f = tasks_frame(j, {{0, 1, 1}});
    auto t = d.read(f.data(), f.size());
    REQUIRE(t);
    CHECK(*t->job == j);
  }
  // j2 differs from j1 only in its id: copied. The last j1 follows `longer`: decoded.
  CHECK(d.decoded() == 3);
  CHECK(d.copied() == 1);
  CHECK(d.reused() == 0);
}

TEST_CASE("tasks decoder copies the last job for one that differs only in its id", "[worker]") {
  TasksDecoder d;
  std::vector<std::shared_ptr<const JobSpec>> seen;
  for (const char* id : {"j1", "j2", "a-much-longer-job-id.0123456789", "j2"}) {
    const std::string f = tasks_frame(sample_sum_job(id), {{0, 1, 1}});
    auto t = d.read(f.data(), f.size());
    REQUIRE(t);
    auto slow = decode<msg::Tasks>(f.data(), f.size());
    REQUIRE(slow.ok());
    CHECK(*t->job == slow.value().job);
    CHECK(t->job->job_id == id);
    seen.push_back(t->job);
  }
  CHECK(d.decoded() == 1);
  CHECK(d.copied() == 3);
  // Each is a JobSpec of its own: the jobs before keep their ids.
  CHECK(seen[0]->job_id == "j1");
  CHECK(seen[1]->job_id == "j2");
  // And the copy is the job now repeated: its next message reuses it.
  const std::string again = tasks_frame(sample_sum_job("j2"), {{1, 1, 1}});
  auto t = d.read(again.data(), again.size());
  REQUIRE(t);
  CHECK(t->job == seen[3]);
  CHECK(d.reused() == 1);
}

TEST_CASE("tasks decoder refuses a copied job with a bad id as decode does", "[worker]") {
  TasksDecoder d;
  const std::string good = tasks_frame(sample_sum_job("j1"), {{0, 1, 1}});
  REQUIRE(d.read(good.data(), good.size()));
  // Alike but for an id that the spec check refuses: the decoder leaves it, decode gives the
  // error.
  const std::string bad = tasks_frame(sample_sum_job("no spaces allowed"), {{0, 1, 1}});
  CHECK_FALSE(d.read(bad.data(), bad.size()));
  CHECK_FALSE(decode<msg::Tasks>(bad.data(), bad.size()).ok());
  CHECK(d.copied() == 0);
  // The job it knew is still the one it compares with.
  const std::string next = tasks_frame(sample_sum_job("j3"), {{0, 1, 1}});
  auto t = d.read(next.data(), next.size());
  REQUIRE(t);
  CHECK(t->job->job_id == "j3");
  CHECK(d.copied() == 1);
}

TEST_CASE("tasks decoder leaves to decode what it cannot take", "[worker]") {
  TasksDecoder d;
  const JobSpec job = sample_sum_job("j1");
  const std::string good = tasks_frame(job, {{0, 1, 1}});
  REQUIRE(d.read(good.data(), good.size()));  // the job is now the cached one

  auto pack_job = [&](msgpack::packer<msgpack::sbuffer>& pk) {
    pk.pack(std::string("job"));
    pk.pack(job);
  };
  auto pack_epoch = [](msgpack::packer<msgpack::sbuffer>& pk) {
    pk.pack(std::string("epoch"));
    pk.pack(7u);
  };
  // epoch, the job, and runs as `pack_runs` packs them; with `extra_key`, one key more.
  auto with_runs = [&](auto pack_runs, bool extra_key = false,
                       std::uint32_t version = proto::kVersion) {
    return hand_frame(
        proto::MsgType::kTasks, extra_key ? 4 : 3,
        [&](auto& pk) {
          pack_epoch(pk);
          pack_job(pk);
          pk.pack(std::string("runs"));
          pack_runs(pk);
          if (extra_key) {
            pk.pack(std::string("extra"));
            pk.pack(1u);
          }
        },
        version);
  };
  auto one_run = [](auto& pk) { pk.pack(std::vector<SliceRun>{{0, 1, 1}}); };
  // One run of the three values packed as given.
  auto run_of = [](auto first, auto count, auto attempt) {
    return [=](auto& pk) {
      pk.pack_array(1);
      pk.pack_array(3);
      pk.pack(first);
      pk.pack(count);
      pk.pack(attempt);
    };
  };
  struct Case {
    const char* what;
    std::string frame;
    bool decode_accepts;  // what decode<msg::Tasks> says of it
  };
  const std::vector<Case> cases = {
      {"another message type", encode(msg::Welcome{.epoch = 7}), false},
      {"an unknown key", with_runs(one_run, true), true},
      {"a missing key",
       hand_frame(proto::MsgType::kTasks, 2,
                  [&](auto& pk) {
                    pack_epoch(pk);
                    pack_job(pk);
                  }),
       true},
      {"an empty run", tasks_frame(job, {{0, 0, 1}}), false},
      {"a run of two fields", with_runs([](auto& pk) {
         pk.pack_array(1);
         pk.pack_array(2);
         pk.pack(0u);
         pk.pack(1u);
       }),
       true},
      {"a count beyond 32 bits", with_runs(run_of(0u, std::uint64_t{1} << 32, 1u)), false},
      {"more runs than the frame has bytes",
       with_runs([](auto& pk) { pk.pack_array(std::uint32_t{1} << 20); }), false},
      {"a job with a bad id", tasks_frame(sample_sum_job("no spaces"), {{0, 1, 1}}), false},
      {"a job that is not a map",
       hand_frame(proto::MsgType::kTasks, 3,
                  [&](auto& pk) {
                    pack_epoch(pk);
                    pk.pack(std::string("job"));
                    pk.pack(3u);
                    pk.pack(std::string("runs"));
                    one_run(pk);
                  }),
       false},
      {"another version", with_runs(one_run, false, 2), false},
      {"a ref with an epoch but no job",
       hand_frame(proto::MsgType::kTasks, 3,
                  [&](auto& pk) {
                    pack_epoch(pk);
                    pk.pack(std::string("ref"));
                    pk.pack(5u);
                    pk.pack(std::string("runs"));
                    one_run(pk);
                  }),
       true},
      {"no job and ref 0", tasks_by_ref(0, {{0, 1, 1}}), false},
      {"trailing bytes", good + std::string(1, '\0'), false},
      {"a cut frame", good.substr(0, good.size() - 1), false},
      {"a cut frame within the job", good.substr(0, 20), false},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    CHECK_FALSE(d.read(c.frame.data(), c.frame.size()));
    CHECK(decode<msg::Tasks>(c.frame.data(), c.frame.size()).ok() == c.decode_accepts);
  }
}

// A job's unknown field may hold nested arrays; the fast reading counts the frame's own nesting
// towards the codec's depth limit as decode does, so both refuse the same frames.
TEST_CASE("tasks decoder refuses a job nested too deep exactly when decode does", "[worker]") {
  int accepted = 0;
  for (std::uint32_t nesting = 1; nesting <= proto::kMaxDepth; ++nesting) {
    INFO("arrays nested " << nesting << " deep in the job");
    const std::string frame = hand_frame(msg::Tasks::kType, 3, [&](auto& pk) {
      pk.pack(std::string("epoch"));
      pk.pack(7);
      pk.pack(std::string("runs"));
      pk.pack(std::vector<SliceRun>{{0, 1, 1}});
      pk.pack(std::string("job"));
      test::pack_nested_job(pk, nesting);
    });
    TasksDecoder d;
    const bool usual = decode<msg::Tasks>(frame.data(), frame.size()).ok();
    CHECK(d.read(frame.data(), frame.size()).has_value() == usual);
    accepted += usual ? 1 : 0;
  }
  CHECK(accepted > 0);
  CHECK(accepted < static_cast<int>(proto::kMaxDepth));
}
