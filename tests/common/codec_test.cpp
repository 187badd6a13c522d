#include "zwq/codec.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "sample_job.hpp"

using namespace zwq;

namespace {

// The shared sample, with parameters of every kind.
JobSpec sample_job() {
  JobSpec j = test::sample_sum_job("job-1");
  j.params.set("a", std::int64_t{-3});
  j.params.set("b", 2.5);
  return j;
}

template <typename M>
M round_trip(const M& m, std::uint64_t corr = 7) {
  const std::string frame = encode(m, corr);
  auto env = decode_envelope(frame.data(), frame.size());
  REQUIRE(env.ok());
  CHECK(env.value().corr == corr);
  CHECK(env.value().type == M::kType);
  auto back = decode_body<M>(env.value());
  REQUIRE(back.ok());
  return back.value();
}

// Packs an arbitrary msgpack value into a frame (for building malformed messages).
template <typename... Ts>
std::string pack_array(const Ts&... parts) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(sizeof...(parts));
  (pk.pack(parts), ...);
  return std::string(buf.data(), buf.size());
}

}  // namespace

TEST_CASE("codec round-trips a SubmitReq with every field", "[common][codec]") {
  msg::SubmitReq m{.job = sample_job()};
  CHECK(round_trip(m).job == m.job);
}

TEST_CASE("codec round-trips Tasks and Results with partials", "[common][codec]") {
  msg::Tasks t{.epoch = 99, .job = sample_job(), .runs = {{0, 4, 1}, {10, 2, 3}}};
  auto t2 = round_trip(t, 0);
  CHECK(t2.epoch == 99);
  CHECK(t2.runs == t.runs);
  CHECK(t2.job == t.job);

  Partial hist = identity_partial(Combiner::kHistogram, 3);
  hist.bins = {1, 2, 3, 4, 5};
  hist.n = 15;
  Partial sum{.combiner = Combiner::kSum, .n = 10, .hi = 1e16, .lo = 1.5};
  msg::Results r{.epoch = 5, .worker_id = "w1", .job_id = "job-1",
                 .items = {{0, 1, ErrorCode::kOk, "", sum}, {1, 2, ErrorCode::kOk, "", hist},
                           {2, 1, ErrorCode::kKernelFailed, "boom", {}}}};
  auto r2 = round_trip(r, 0);
  REQUIRE(r2.items.size() == 3);
  CHECK(r2.items[0].partial == sum);
  CHECK(r2.items[1].partial == hist);
  CHECK(r2.items[2].code == ErrorCode::kKernelFailed);
  CHECK(r2.items[2].message == "boom");
}

TEST_CASE("codec round-trips control replies", "[common][codec]") {
  msg::WaitRep w;
  w.status.job_id = "j";
  w.status.state = JobState::kFailed;
  w.status.error_code = ErrorCode::kDatasetTooShort;
  w.status.error = "short";
  w.finished = true;
  w.result.value = 3.25;
  w.result.gathered = {"ab", "cd"};
  auto w2 = round_trip(w);
  CHECK(w2.status.state == JobState::kFailed);
  CHECK(w2.status.error_code == ErrorCode::kDatasetTooShort);
  CHECK(w2.result == w.result);

  msg::InfoRep i{.epoch = 42, .control = "ipc://a", .tasks = "ipc://b", .kernels = {"sum", "min"}};
  auto i2 = round_trip(i);
  CHECK(i2.epoch == 42);
  CHECK(i2.tasks == "ipc://b");
  CHECK(i2.kernels == i.kernels);

  msg::ErrorRep e{.code = ErrorCode::kUnknownKernel, .message = "no kernel 'x'"};
  auto e2 = round_trip(e);
  CHECK(e2.code == ErrorCode::kUnknownKernel);
  CHECK(e2.message == e.message);
}

TEST_CASE("codec ignores unknown body fields and defaults missing ones", "[common][codec]") {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(4);
  pk.pack(proto::kVersion);
  pk.pack(static_cast<int>(proto::MsgType::kWaitReq));
  pk.pack(1);
  pk.pack_map(2);
  pk.pack(std::string("job_id"));
  pk.pack(std::string("abc"));
  pk.pack(std::string("from_the_future"));
  pk.pack(17);
  auto m = decode<msg::WaitReq>(buf.data(), buf.size());
  REQUIRE(m.ok());
  CHECK(m.value().job_id == "abc");
  CHECK(m.value().timeout_ms == 0);
}

namespace {
struct Rejection {
  const char* name;
  std::string frame;
  ErrorCode code;
};
}  // namespace

TEST_CASE("codec rejects every malformed frame with a named error", "[common][codec]") {
  const auto v = proto::kVersion;
  const int submit = static_cast<int>(proto::MsgType::kSubmitReq);
  std::map<std::string, int> empty_body;
  std::map<std::string, std::string> bad_job{{"job", "not a map"}};
  const std::vector<Rejection> cases = {
      {"empty frame", "", ErrorCode::kBadMessage},
      {"not msgpack", std::string("\xc1\xc1\xc1", 3), ErrorCode::kBadMessage},
      {"truncated", encode(msg::SubmitReq{.job = sample_job()}).substr(0, 20), ErrorCode::kBadMessage},
      {"trailing bytes", encode(msg::InfoReq{}) + "x", ErrorCode::kBadMessage},
      {"not an array", pack_array(1).substr(1), ErrorCode::kBadMessage},
      {"short array", pack_array(v, submit, 0), ErrorCode::kBadMessage},
      {"string version", pack_array(std::string("1"), submit, 0, empty_body), ErrorCode::kBadMessage},
      {"wrong version", pack_array(v + 1, submit, 0, empty_body), ErrorCode::kVersionMismatch},
      {"unknown type", pack_array(v, 200, 0, empty_body), ErrorCode::kUnknownType},
      {"type too large", pack_array(v, 1000, 0, empty_body), ErrorCode::kUnknownType},
      {"body not a map", pack_array(v, submit, 0, 5), ErrorCode::kBadMessage},
      {"field of wrong type", pack_array(v, submit, 0, bad_job), ErrorCode::kBadMessage},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto r = decode<msg::SubmitReq>(c.frame.data(), c.frame.size());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == c.code);
    CHECK_FALSE(r.error().message.empty());
  }
}

TEST_CASE("codec names the field of the wrong type or out of range, and what it takes",
          "[common][codec]") {
  const auto v = proto::kVersion;
  SECTION("a uint32 given 2^32") {
    std::map<std::string, std::uint64_t> body{{"timeout_ms", std::uint64_t{1} << 32}};
    const std::string f = pack_array(v, static_cast<int>(proto::MsgType::kWaitReq), 0, body);
    auto r = decode<msg::WaitReq>(f.data(), f.size());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kBadMessage);
    CHECK(r.error().message ==
          "WaitReq: field 'timeout_ms' must be an unsigned integer below 2^32");
  }
  SECTION("a field of a field of a field") {
    std::map<std::string, std::map<std::string, std::map<std::string, std::string>>> body{
        {"job", {{"input", {{"byte_offset", "eight"}}}}}};
    const std::string f = pack_array(v, static_cast<int>(proto::MsgType::kSubmitReq), 0, body);
    auto r = decode<msg::SubmitReq>(f.data(), f.size());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message ==
          "SubmitReq: field 'job.input.byte_offset' must be an unsigned integer");
  }
}

TEST_CASE("codec rejects a body of another message type", "[common][codec]") {
  const std::string frame = encode(msg::InfoReq{});
  auto r = decode<msg::SubmitReq>(frame.data(), frame.size());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kUnknownType);
}

TEST_CASE("codec rejects semantically invalid messages", "[common][codec]") {
  SECTION("bad job id") {
    auto job = sample_job();
    job.job_id = "has space";
    const auto f = encode(msg::SubmitReq{.job = job});
    auto r = decode<msg::SubmitReq>(f.data(), f.size());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kInvalidArgument);
  }
  SECTION("dtype out of range") {
    auto job = sample_job();
    job.input.dtype = static_cast<DType>(77);
    const auto f = encode(msg::SubmitReq{.job = job});
    auto r = decode<msg::SubmitReq>(f.data(), f.size());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kBadMessage);
  }
  SECTION("hello without credit") {
    const auto f = encode(msg::Hello{.worker_id = "w", .credit = 0});
    auto r = decode<msg::Hello>(f.data(), f.size());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kBadMessage);
  }
  SECTION("results with an unknown combiner") {
    msg::Results res{.items = {{0, 1, ErrorCode::kOk, "", Partial{}}}};
    res.items[0].partial.combiner = static_cast<Combiner>(40);
    const auto f = encode(res);
    auto r = decode<msg::Results>(f.data(), f.size());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kBadMessage);
  }
  SECTION("tasks with an empty run") {
    const auto f = encode(msg::Tasks{.job = sample_job(), .runs = {{0, 0, 1}}});
    auto r = decode<msg::Tasks>(f.data(), f.size());
    REQUIRE_FALSE(r.ok());
  }
}

TEST_CASE("codec rejects containers over the limit without allocating them", "[common][codec]") {
  // An array header claiming 2^31 elements followed by nothing: must fail fast.
  std::string frame = "\x94\x01\x02\x00\xdd\x80\x00\x00\x00";
  auto r = decode_envelope(frame.data(), frame.size());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kBadMessage);
}

TEST_CASE("codec round-trips a SubmitReq with wait_ms and a waited SubmitRep", "[common][codec]") {
  msg::SubmitReq m{.job = sample_job(), .wait_ms = 750};
  auto back = round_trip(m);
  CHECK(back.job == m.job);
  CHECK(back.wait_ms == 750);

  msg::SubmitRep rep{.job_id = "job-1", .total_slices = 3, .slice_size = 64, .existed = true};
  rep.finished = true;
  rep.status.job_id = "job-1";
  rep.status.state = JobState::kDone;
  rep.result.value = 12.5;
  auto rep2 = round_trip(rep);
  CHECK(rep2.existed);
  CHECK(rep2.finished);
  CHECK(rep2.status.state == JobState::kDone);
  CHECK(rep2.result.value == 12.5);
}

TEST_CASE("codec reads a SubmitReq without wait_ms as answer-at-once", "[common][codec]") {
  // The body an older client sends: only `job`.
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(4);
  pk.pack(proto::kVersion);
  pk.pack(static_cast<std::uint8_t>(proto::MsgType::kSubmitReq));
  pk.pack(std::uint64_t{3});
  pk.pack_map(1);
  pk.pack(std::string("job"));
  pk.pack(sample_job());
  auto r = decode<msg::SubmitReq>(buf.data(), buf.size());
  REQUIRE(r.ok());
  CHECK(r.value().wait_ms == 0);
  CHECK(r.value().job == sample_job());
}

TEST_CASE("codec round-trips SubmitMany with a refused item", "[common][codec]") {
  JobSpec second = sample_job();
  second.job_id = "job-2";
  msg::SubmitManyReq m{.jobs = {sample_job(), second}};
  auto back = round_trip(m);
  REQUIRE(back.jobs.size() == 2);
  CHECK(back.jobs[1] == second);

  msg::SubmitManyRep rep;
  rep.items.push_back({.job_id = "job-1", .total_slices = 15, .slice_size = 64});
  rep.items.push_back(
      {.job_id = "job-2", .code = ErrorCode::kUnknownKernel, .message = "no kernel 'x'"});
  auto rep2 = round_trip(rep);
  REQUIRE(rep2.items.size() == 2);
  CHECK(rep2.items[0].code == ErrorCode::kOk);
  CHECK(rep2.items[0].total_slices == 15);
  CHECK(rep2.items[1].code == ErrorCode::kUnknownKernel);
  CHECK(rep2.items[1].message == "no kernel 'x'");
}

TEST_CASE("codec round-trips WaitMany", "[common][codec]") {
  msg::WaitManyReq m{.job_ids = {"a", "b"}, .timeout_ms = 900, .min_finished = 1};
  auto back = round_trip(m);
  CHECK(back.job_ids == m.job_ids);
  CHECK(back.timeout_ms == 900);
  CHECK(back.min_finished == 1);

  msg::WaitManyRep rep;
  rep.left = 4;
  msg::WaitItem done{.job_id = "a"};
  done.status.state = JobState::kDone;
  done.result.value = 3;
  rep.items.push_back(done);
  rep.items.push_back({.job_id = "zz", .code = ErrorCode::kUnknownJob, .message = "no job 'zz'"});
  auto rep2 = round_trip(rep);
  CHECK(rep2.left == 4);
  REQUIRE(rep2.items.size() == 2);
  CHECK(rep2.items[0].result.value == 3);
  CHECK(rep2.items[0].status.state == JobState::kDone);
  CHECK(rep2.items[1].code == ErrorCode::kUnknownJob);
}

TEST_CASE("codec refuses a batch over the limit with a message naming it", "[common][codec]") {
  SECTION("SubmitMany") {
    msg::SubmitManyReq m;
    m.jobs.resize(proto::kMaxBatchJobs + 1, sample_job());
    const auto f = encode(m);
    auto r = decode<msg::SubmitManyReq>(f.data(), f.size());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kInvalidArgument);
    CHECK_THAT(r.error().message, Catch::Contains(std::to_string(proto::kMaxBatchJobs)));
  }
  SECTION("WaitMany") {
    msg::WaitManyReq m;
    m.job_ids.resize(proto::kMaxBatchJobs + 1, "a");
    const auto f = encode(m);
    auto r = decode<msg::WaitManyReq>(f.data(), f.size());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kInvalidArgument);
  }
  SECTION("at the limit") {
    msg::WaitManyReq m;
    m.job_ids.resize(proto::kMaxBatchJobs, "a");
    const auto f = encode(m);
    CHECK(decode<msg::WaitManyReq>(f.data(), f.size()).ok());
  }
}

TEST_CASE("codec leaves a SubmitMany job's own checks to the broker", "[common][codec]") {
  // One bad job id must not refuse the whole batch: decoding accepts it, check_job_spec names it.
  JobSpec bad = sample_job();
  bad.job_id = "has space";
  const auto f = encode(msg::SubmitManyReq{.jobs = {sample_job(), bad}});
  auto r = decode<msg::SubmitManyReq>(f.data(), f.size());
  REQUIRE(r.ok());
  CHECK(check_job_spec(r.value().jobs[0]).ok());
  const Status st = check_job_spec(r.value().jobs[1]);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == ErrorCode::kInvalidArgument);
}

TEST_CASE("codec rejects a SubmitMany whose job is not a map", "[common][codec]") {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(4);
  pk.pack(proto::kVersion);
  pk.pack(static_cast<std::uint8_t>(proto::MsgType::kSubmitManyReq));
  pk.pack(std::uint64_t{3});
  pk.pack_map(1);
  pk.pack(std::string("jobs"));
  pk.pack_array(2);
  pk.pack(sample_job());
  pk.pack(std::string("not a job"));
  auto r = decode<msg::SubmitManyReq>(buf.data(), buf.size());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kBadMessage);
}

TEST_CASE("valid_utf8 keeps well-formed UTF-8 and escapes every other byte", "[common]") {
  CHECK(valid_utf8("plain ascii") == "plain ascii");
  CHECK(valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") ==
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  CHECK(valid_utf8(std::string("a\xff", 2)) == "a\\xff");
  CHECK(valid_utf8("\xc3") == "\\xc3");                               // cut short
  CHECK(valid_utf8("\xc0\xaf") == "\\xc0\\xaf");                      // overlong '/'
  CHECK(valid_utf8("\xed\xa0\x80") == "\\xed\\xa0\\x80");             // a surrogate
  CHECK(valid_utf8("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");    // above U+10FFFF
  CHECK(valid_utf8(std::string("\0x", 2)) == std::string("\0x", 2));  // NUL is UTF-8
}

TEST_CASE("codec refuses a Hello whose names are not UTF-8: clients are shown them",
          "[common][codec]") {
  const std::string bad("w\xff", 2);
  for (int field = 0; field < 4; ++field) {
    INFO("field " << field);
    msg::Hello h{.worker_id = "w1", .credit = 4};
    if (field == 0) h.worker_id = bad;
    if (field == 1) h.host = bad;
    if (field == 2) h.kernels = {"sum", bad};
    if (field == 3) h.kernel_specs = {KernelSpec{.name = bad, .combiner = Combiner::kSum}};
    const std::string f = encode(h);
    auto r = decode<msg::Hello>(f.data(), f.size());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kBadMessage);
    CHECK_THAT(r.error().message, Catch::Contains("UTF-8"));
  }
  const std::string f = encode(msg::Hello{.worker_id = "w\xc3\xa9", .credit = 4});
  CHECK(decode<msg::Hello>(f.data(), f.size()).ok());
}

// The fast decoders' Partial: 8 elements with terms, 7 from a peer that predates them.
TEST_CASE(
    "read_partial takes a Partial with terms, one of 7 elements without, and refuses a "
    "bad one",
    "[common][codec]") {
  auto read = [](const msgpack::sbuffer& buf, Partial& p) {
    MsgpackReader r(buf.data(), buf.size());
    return read_partial(r, p) && r.left() == 0;
  };
  Partial full = identity_partial(Combiner::kExactSum);
  full.n = 9;
  full.hi = 0x1p200;
  full.lo = 1.0;
  full.terms = {0x1p-200};
  full.bins = {1, 2};
  full.bytes = "ab";
  msgpack::sbuffer buf;
  msgpack::pack(buf, full);
  Partial got;
  got.terms = {5.0};  // what a reused Partial held
  REQUIRE(read(buf, got));
  CHECK(got == full);

  msgpack::sbuffer old;
  msgpack::packer<msgpack::sbuffer> pk(old);
  pk.pack_array(7);
  pk.pack(static_cast<std::uint8_t>(Combiner::kSum));
  pk.pack(std::uint64_t{3});
  pk.pack(2.5);
  pk.pack(0.25);
  pk.pack(std::uint64_t{0});
  pk.pack_array(0);
  pk.pack(std::string());
  REQUIRE(read(old, got));
  CHECK(got.combiner == Combiner::kSum);
  CHECK(got.n == 3);
  CHECK(got.hi == 2.5);
  CHECK(got.lo == 0.25);
  CHECK(got.terms.empty());

  msgpack::sbuffer six;
  msgpack::packer<msgpack::sbuffer> pk6(six);
  pk6.pack_array(6);
  for (int i = 0; i < 5; ++i) pk6.pack(1u);
  pk6.pack_array(0);
  CHECK_FALSE(read(six, got));
}
