// prepare_job(): the checks and defaults Client::submit applies before anything is sent, tested
// without a broker.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "shm_file.hpp"
#include "zwq/client.hpp"
#include "zwq/dataset.hpp"

namespace {

using zwq::DType;
using zwq::ErrorCode;
using zwq::JobRequest;
using zwq::test::npy_header;
using zwq::test::ShmFile;

// A file of `n` floats with a sidecar saying so.
void write_f32(const ShmFile& f, std::size_t n) {
  f.write(std::vector<float>(n, 1.0f));
  REQUIRE(zwq::write_meta(f.path(), DType::kF32, n).ok());
}

JobRequest sum_of(const ShmFile& f) {
  JobRequest r;
  r.kernel = "sum";
  r.input.uri = f.uri();
  return r;
}

}  // namespace

TEST_CASE("prepare_job fills dtype, length, count and a job id from the sidecar", "[client]") {
  ShmFile f("prep-defaults");
  write_f32(f, 100);
  JobRequest r = sum_of(f);
  r.first = 10;
  auto spec = zwq::prepare_job(r);
  REQUIRE(spec.ok());
  CHECK(spec.value().input.dtype == DType::kF32);
  CHECK(spec.value().input.length == 100);
  CHECK(spec.value().first == 10);
  CHECK(spec.value().count == 90);
  CHECK(spec.value().job_id.size() == zwq::kJobIdChars);
}

TEST_CASE("random job ids of a forked child are not its parent's", "[client]") {
  (void)zwq::random_job_id();  // the parent's generator is seeded before the fork
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const std::string id = zwq::random_job_id();
    const ssize_t n = ::write(fds[1], id.data(), id.size());
    ::_exit(n == static_cast<ssize_t>(id.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  const std::string mine = zwq::random_job_id();  // what the child would draw without reseeding
  std::string theirs(zwq::kJobIdChars, '\0');
  const ssize_t n = ::read(fds[0], theirs.data(), theirs.size());
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(n == static_cast<ssize_t>(theirs.size()));
  CHECK(theirs != mine);
}

TEST_CASE("random job ids are 15 letters and digits, valid, and do not repeat", "[client]") {
  const std::string alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::unordered_set<std::string> seen;
  std::vector<std::unordered_set<char>> used(15);  // by position
  for (int i = 0; i < 100000; ++i) {
    const std::string id = zwq::random_job_id();
    REQUIRE(id.size() == 15);
    REQUIRE(id.find_first_not_of(alnum) == std::string::npos);
    for (std::size_t k = 0; k < id.size(); ++k) used[k].insert(id[k]);
    seen.insert(id);
  }
  CHECK(seen.size() == 100000);
  for (std::size_t k = 0; k < used.size(); ++k) {
    INFO("position " << k);
    CHECK(used[k].size() == alnum.size());  // every character turns up in every position
  }
  JobRequest r = JobRequest::range("noop_range", 1);
  r.job_id = zwq::random_job_id();
  CHECK(zwq::prepare_job(r).ok());  // a valid job id
}

TEST_CASE("prepare_job keeps a given job id and rejects a malformed one", "[client]") {
  ShmFile f("prep-id");
  write_f32(f, 10);
  JobRequest r = sum_of(f);
  r.job_id = "my.job_1-a";
  auto ok = zwq::prepare_job(r);
  REQUIRE(ok.ok());
  CHECK(ok.value().job_id == "my.job_1-a");
  r.job_id = "bad id/";
  auto bad = zwq::prepare_job(r);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == ErrorCode::kInvalidArgument);
  r.job_id = std::string(65, 'x');
  CHECK(zwq::prepare_job(r).error().code == ErrorCode::kInvalidArgument);
}

TEST_CASE(
    "prepare_job marks a dataset in /dev/shm as this host's memory, and leaves a file elsewhere "
    "and a host already given alone",
    "[client]") {
  ShmFile f("prep-host");
  write_f32(f, 100);
  auto spec = zwq::prepare_job(sum_of(f));
  REQUIRE(spec.ok());
  CHECK(spec.value().input.host == zwq::host_name());

  JobRequest given = sum_of(f);
  given.input.host = "node07";
  REQUIRE(zwq::prepare_job(given).ok());
  CHECK(zwq::prepare_job(given).value().input.host == "node07");

  // The same bytes as a file outside /dev/shm: any host may read it.
  char tmpl[] = "/tmp/zwq-prep-host-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  REQUIRE(fd >= 0);
  const std::vector<float> v(100, 1.0f);
  REQUIRE(::write(fd, v.data(), v.size() * sizeof(float)) ==
          static_cast<ssize_t>(v.size() * sizeof(float)));
  ::close(fd);
  JobRequest shared;
  shared.kernel = "sum";
  shared.input.uri = tmpl;
  shared.input.dtype = DType::kF32;
  auto on_disk = zwq::prepare_job(shared);
  shared.here = true;  // a file on this host's local disk, said so
  auto kept = zwq::prepare_job(shared);
  ::unlink(tmpl);
  REQUIRE(on_disk.ok());
  CHECK(on_disk.value().input.host.empty());
  REQUIRE(kept.ok());
  CHECK(kept.value().input.host == zwq::host_name());
  CHECK(kept.value().input.memory == zwq::memory_id());
}

TEST_CASE(
    "JobRequest's reduce, reduce2, map and generate over DatasetRefs put each file where its "
    "SharedArray form does, and prepare_job probes a file named by path",
    "[client]") {
  auto a = zwq::SharedArray<float>::create("zwq-test-helpers-a-" + std::to_string(::getpid()), 8);
  auto b = zwq::SharedArray<float>::create("zwq-test-helpers-b-" + std::to_string(::getpid()), 8);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  const zwq::DatasetRef ra = a.value().ref();
  const zwq::DatasetRef rb = b.value().ref();
  const auto same = [](const JobRequest& x, const JobRequest& y) {
    CHECK(x.kernel == y.kernel);
    CHECK(x.input == y.input);
    CHECK(x.input2 == y.input2);
    CHECK(x.output == y.output);
    CHECK(x.params == y.params);
  };
  zwq::Params p;
  p.set("lo", 0.5);
  same(JobRequest::reduce("histogram", ra, p), JobRequest::reduce("histogram", a.value(), p));
  same(JobRequest::reduce2("dot", ra, rb), JobRequest::reduce2("dot", a.value(), b.value()));
  same(JobRequest::map("square", ra, rb), JobRequest::map("square", a.value(), b.value()));
  same(JobRequest::generate("fill", rb), JobRequest::generate("fill", b.value()));
  const JobRequest dot = JobRequest::reduce2("dot", ra, rb);
  CHECK(dot.input.uri == ra.uri);
  CHECK(dot.input2.uri == rb.uri);
  CHECK(dot.output.uri.empty());
  const JobRequest square = JobRequest::map("square", ra, rb, p);
  CHECK(square.input.uri == ra.uri);
  CHECK(square.output.uri == rb.uri);
  CHECK(square.params.has("lo"));

  // A file named by its path, its dtype given, as on a shared filesystem.
  ShmFile f("prep-path");
  f.write(std::vector<float>(100, 1.0f));
  auto spec = zwq::prepare_job(JobRequest::reduce("sum", zwq::DatasetRef{f.path(), DType::kF32}));
  REQUIRE(spec.ok());
  CHECK(spec.value().input.uri == f.path());
  CHECK(spec.value().input.length == 100);
}

TEST_CASE(
    "prepare_job of a missing dataset fails with dataset_missing, and for a missing output says "
    "to create it",
    "[client]") {
  ShmFile f("prep-missing");  // never written
  auto spec = zwq::prepare_job(sum_of(f));
  REQUIRE_FALSE(spec.ok());
  CHECK(spec.error().code == ErrorCode::kDatasetMissing);
  CHECK_THAT(spec.error().message, Catch::Contains(f.name()));
  CHECK_THAT(spec.error().message, !Catch::Contains("output array must exist"));

  // A map's missing output: the message says to create it.
  ShmFile in("prep-missing-in");
  write_f32(in, 10);
  JobRequest map = sum_of(in);
  map.kernel = "affine";
  map.output.uri = f.uri();
  auto out = zwq::prepare_job(map);
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().code == ErrorCode::kDatasetMissing);
  CHECK_THAT(out.error().message,
             Catch::Contains(f.name()) && Catch::Contains("the output array must exist: create it "
                                                          "first, e.g. zwq array create"));
}

TEST_CASE("prepare_job of a dataset too short for the range fails with dataset_too_short",
          "[client]") {
  ShmFile f("prep-short");
  write_f32(f, 100);
  JobRequest r = sum_of(f);
  r.first = 50;
  r.count = 51;
  auto spec = zwq::prepare_job(r);
  REQUIRE_FALSE(spec.ok());
  CHECK(spec.error().code == ErrorCode::kDatasetTooShort);
  r.count = 50;  // exactly to the end is fine
  CHECK(zwq::prepare_job(r).ok());
}

TEST_CASE("prepare_job of a first element past the end fails with out_of_range", "[client]") {
  ShmFile f("prep-range");
  write_f32(f, 100);
  JobRequest r = sum_of(f);
  r.first = 101;
  auto spec = zwq::prepare_job(r);
  REQUIRE_FALSE(spec.ok());
  CHECK(spec.error().code == ErrorCode::kOutOfRange);
}

TEST_CASE("prepare_job of a dtype disagreeing with the sidecar fails with dtype_mismatch",
          "[client]") {
  ShmFile f("prep-dtype");
  write_f32(f, 100);
  JobRequest r = sum_of(f);
  r.input.dtype = DType::kF64;
  auto spec = zwq::prepare_job(r);
  REQUIRE_FALSE(spec.ok());
  CHECK(spec.error().code == ErrorCode::kDtypeMismatch);
}

TEST_CASE("prepare_job of a raw file without a dtype asks for one", "[client]") {
  ShmFile f("prep-raw");
  f.write(std::vector<double>(8, 2.0));
  JobRequest r = sum_of(f);
  auto spec = zwq::prepare_job(r);
  REQUIRE_FALSE(spec.ok());
  CHECK(spec.error().code == ErrorCode::kInvalidArgument);
  r.input.dtype = DType::kF64;
  auto typed = zwq::prepare_job(r);
  REQUIRE(typed.ok());
  CHECK(typed.value().count == 8);
}

TEST_CASE("prepare_job refuses a byte offset that is not a whole number of elements", "[client]") {
  ShmFile f("prep-offset");
  f.write(std::vector<double>(8, 1.0));
  JobRequest r = sum_of(f);
  r.input.dtype = DType::kF64;
  r.input.byte_offset = 3;
  auto spec = zwq::prepare_job(r);
  REQUIRE_FALSE(spec.ok());
  CHECK(spec.error().code == ErrorCode::kInvalidArgument);
  CHECK_THAT(spec.error().message,
             Catch::Contains("byte offset 3 is not a multiple of the f64 element size (8)"));
  r.input.byte_offset = 8;
  REQUIRE(zwq::prepare_job(r).ok());
  CHECK(zwq::prepare_job(r).value().count == 7);
}

TEST_CASE("prepare_job of a .npy file reads its dtype and skips its header", "[client]") {
  ShmFile f("prep-npy");
  const std::string header = npy_header("<f8", 5);
  f.write(std::vector<double>(5, 1.5), header);
  auto spec = zwq::prepare_job(sum_of(f));
  REQUIRE(spec.ok());
  CHECK(spec.value().input.dtype == DType::kF64);
  CHECK(spec.value().input.byte_offset == header.size());
  CHECK(spec.value().count == 5);

  JobRequest wrong = sum_of(f);
  wrong.input.dtype = DType::kI64;
  auto mismatch = zwq::prepare_job(wrong);
  REQUIRE_FALSE(mismatch.ok());
  CHECK(mismatch.error().code == ErrorCode::kDtypeMismatch);
}

TEST_CASE("prepare_job of an unknown kernel fails with unknown_kernel", "[client]") {
  JobRequest r = JobRequest::range("no_such_kernel", 0, 10);
  auto spec = zwq::prepare_job(r);
  REQUIRE_FALSE(spec.ok());
  CHECK(spec.error().code == ErrorCode::kUnknownKernel);
  CHECK_THAT(spec.error().message, Catch::Contains("no_such_kernel"));
  // A kernel only the broker knows passes; the broker checks it.
  CHECK(zwq::prepare_job(r, {"no_such_kernel"}).ok());
}

TEST_CASE("prepare_job checks which datasets the kernel's shape needs", "[client]") {
  ShmFile a("prep-shape-a");
  write_f32(a, 10);
  SECTION("a reduction needs an input") {
    JobRequest r;
    r.kernel = "sum";
    r.count = 10;
    CHECK(zwq::prepare_job(r).error().code == ErrorCode::kInvalidArgument);
  }
  SECTION("a range kernel needs a count and takes no input") {
    JobRequest r;
    r.kernel = "pi";
    CHECK(zwq::prepare_job(r).error().code == ErrorCode::kInvalidArgument);
    r.count = 1000;
    CHECK(zwq::prepare_job(r).ok());
    r.input.uri = a.uri();
    CHECK(zwq::prepare_job(r).error().code == ErrorCode::kInvalidArgument);
  }
  SECTION("dot needs two inputs of one length, or a count both hold") {
    JobRequest r = sum_of(a);
    r.kernel = "dot";
    CHECK(zwq::prepare_job(r).error().code == ErrorCode::kInvalidArgument);
    ShmFile b("prep-shape-b");
    write_f32(b, 5);
    r.input2.uri = b.uri();
    const auto unaligned = zwq::prepare_job(r);  // numpy: "shapes not aligned"
    REQUIRE_FALSE(unaligned.ok());
    CHECK(unaligned.error().code == ErrorCode::kInvalidArgument);
    CHECK(unaligned.error().message.find("must be of one length") != std::string::npos);
    r.count = 6;
    CHECK(zwq::prepare_job(r).error().code == ErrorCode::kDatasetTooShort);
    r.count = 5;
    auto spec = zwq::prepare_job(r);
    REQUIRE(spec.ok());
    CHECK(spec.value().input2.dtype == DType::kF32);
  }
  SECTION("a map needs an output; its dtype defaults to the input's") {
    JobRequest r = sum_of(a);
    r.kernel = "square";
    CHECK(zwq::prepare_job(r).error().code == ErrorCode::kInvalidArgument);
    ShmFile out("prep-shape-out");
    out.write(std::vector<float>(10, 0.0f));  // raw: no sidecar
    r.output.uri = out.uri();
    auto spec = zwq::prepare_job(r);
    REQUIRE(spec.ok());
    CHECK(spec.value().output.dtype == DType::kF32);
    CHECK(spec.value().output.length == 10);
  }
}

TEST_CASE("prepare_job runs the kernel's parameter check", "[client]") {
  ShmFile f("prep-params");
  write_f32(f, 10);
  JobRequest r = sum_of(f);
  r.kernel = "histogram";
  auto missing = zwq::prepare_job(r);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::kInvalidArgument);
  r.with("lo", 0.0).with("hi", 1.0).with("bins", 4);
  CHECK(zwq::prepare_job(r).ok());
}

TEST_CASE("prepare_job without dataset checks needs count and dtype", "[client]") {
  JobRequest r;
  r.kernel = "sum";
  r.input.uri = "shm:not-probed-at-all";
  r.check_datasets = false;
  CHECK(zwq::prepare_job(r).error().code == ErrorCode::kInvalidArgument);
  r.count = 10;
  CHECK(zwq::prepare_job(r).error().code == ErrorCode::kInvalidArgument);
  r.input.dtype = DType::kF32;
  auto spec = zwq::prepare_job(r);
  REQUIRE(spec.ok());
  CHECK(spec.value().count == 10);
}

TEST_CASE("JobRequest helpers build requests from shared arrays", "[client]") {
  auto a = zwq::SharedArray<float>::create("zwq-test-prep-helpers-" + zwq::random_job_id(), 32);
  REQUIRE(a.ok());
  JobRequest r = JobRequest::reduce("sum", a.value());
  CHECK(r.input == a.value().ref());
  auto spec = zwq::prepare_job(r);
  REQUIRE(spec.ok());
  CHECK(spec.value().count == 32);
  JobRequest p = JobRequest::range("pi", 5, 105);  // [5, 105), as Python's range
  CHECK(p.first == 5);
  CHECK(p.count == 100u);
  CHECK(JobRequest::range("pi", 7).count == 7u);
  CHECK(JobRequest::range("pi", 9, 3).count == 0u);
}

TEST_CASE("JobRequest params parse name=value as int, float or string", "[client]") {
  JobRequest r;
  REQUIRE(r.set_param("bins=64").ok());
  REQUIRE(r.set_param("lo=-0.5").ok());
  REQUIRE(r.set_param("mode=fast").ok());
  REQUIRE(r.set_param("empty=").ok());
  CHECK(std::get<std::int64_t>(r.params.values.at("bins")) == 64);
  CHECK(std::get<double>(r.params.values.at("lo")) == -0.5);
  CHECK(std::get<std::string>(r.params.values.at("mode")) == "fast");
  CHECK(std::get<std::string>(r.params.values.at("empty")).empty());
  CHECK(r.set_param("novalue").error().code == ErrorCode::kInvalidArgument);
  CHECK(r.set_param("=5").error().code == ErrorCode::kInvalidArgument);
  r.with("k", 3).with("x", 2.5f).with("s", "text");
  CHECK(std::get<std::int64_t>(r.params.values.at("k")) == 3);
  CHECK(std::get<double>(r.params.values.at("x")) == 2.5);
  CHECK(std::get<std::string>(r.params.values.at("s")) == "text");
}

TEST_CASE("prepare_job refuses a params kernel given no parameter sets, saying where they go",
          "[client]") {
  zwq::KernelSpec poisson;
  poisson.name = "poisson";
  poisson.combiner = zwq::Combiner::kGather;
  poisson.shape = zwq::KernelShape::kParams;
  JobRequest r;
  r.kernel = "poisson";
  r.count = 2;  // as `zwq submit --kernel poisson --count 2` asks
  auto refused = zwq::prepare_job(r, std::vector<zwq::KernelSpec>{poisson});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kInvalidArgument);
  CHECK(refused.error().message.find("runs once per parameter set, and a count was given") !=
        std::string::npos);
  r.param_sets.resize(2);
  CHECK(zwq::prepare_job(r, std::vector<zwq::KernelSpec>{poisson}).ok());
  // No sets and no count: a job of none, as Pool.starmap(f, []) gives [].
  r.param_sets.clear();
  r.count.reset();
  auto none = zwq::prepare_job(r, std::vector<zwq::KernelSpec>{poisson});
  REQUIRE(none.ok());
  CHECK(none.value().count == 0);
}
