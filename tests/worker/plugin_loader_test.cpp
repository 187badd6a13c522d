// PluginSet: loading kernel plugins into a worker, every way a plugin is refused, and the
// executor running plugin kernels (parameter sets, generate, the worker-side parameter check).
#include "plugin_loader.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "dataset_cache.hpp"
#include "executor.hpp"
#include "shm_file.hpp"
#include "zwq/plugin_abi.hpp"

#ifndef ZWQ_TEST_PLUGIN_DIR
#error "worker tests need ZWQ_TEST_PLUGIN_DIR (set by tests/CMakeLists.txt)"
#endif

using zwq::Combiner;
using zwq::DType;
using zwq::ErrorCode;
using zwq::JobSpec;
using zwq::KernelShape;
using zwq::worker::DatasetCache;
using zwq::worker::Executor;
using zwq::worker::PluginSet;

namespace {

std::string plugin(const std::string& stem) {
  return std::string(ZWQ_TEST_PLUGIN_DIR) + "/lib" + stem + ".so";
}
const std::string kKernels = plugin("zwq_test_kernels");

JobSpec params_job(std::vector<double> xs, std::uint64_t chunk) {
  JobSpec job;
  job.job_id = "sets";
  job.kernel = "t_square";
  for (double x : xs) {
    zwq::Params p;
    p.set("x", x);
    job.param_sets.push_back(p);
  }
  job.count = xs.size();
  job.slice_size = chunk;
  return job;
}

std::vector<double> unpack_doubles(const std::string& bytes) {
  std::vector<double> out;
  std::size_t offset = 0;
  while (offset < bytes.size()) {
    out.push_back(msgpack::unpack(bytes.data(), bytes.size(), offset).get().as<double>());
  }
  return out;
}

}  // namespace

TEST_CASE("plugin loader adds a plugin's kernels to the built-in ones", "[worker][plugin]") {
  PluginSet set;
  const std::size_t builtins = set.registry().size();
  REQUIRE(set.load(kKernels).ok());
  CHECK(set.registry().size() == builtins + 11);
  CHECK(set.registry().find("sum") != nullptr);
  const zwq::KernelInfo* k = set.registry().find("t_hist");
  REQUIRE(k != nullptr);
  CHECK(k->combiner == Combiner::kHistogram);
  CHECK(k->shape == KernelShape::kReduce);
  CHECK(k->input_dtype == DType::kF64);
  CHECK(set.registry().find("t_fill")->output_dtype == DType::kI64);
  CHECK(set.registry().find("t_fill")->validate != nullptr);
  CHECK(set.paths() == std::vector<std::string>{kKernels});
}

TEST_CASE("plugin loader names the file when it cannot be loaded", "[worker][plugin]") {
  PluginSet set;
  const zwq::Status s = set.load("/nonexistent/libnothing.so");
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code == ErrorCode::kInvalidArgument);
  CHECK_THAT(s.error().message, Catch::Contains("/nonexistent/libnothing.so"));
}

TEST_CASE("plugin loader names the missing symbol of a library that is not a plugin",
          "[worker][plugin]") {
  PluginSet set;
  const zwq::Status none = set.load(plugin("zwq_test_not_a_plugin"));
  REQUIRE_FALSE(none.ok());
  CHECK_THAT(none.error().message, Catch::Contains("missing symbol zwq_plugin_abi_version") &&
                                       Catch::Contains("libzwq_test_not_a_plugin.so"));

  const zwq::Status no_table = set.load(plugin("zwq_test_no_table"));
  REQUIRE_FALSE(no_table.ok());
  CHECK_THAT(no_table.error().message, Catch::Contains("missing symbol zwq_plugin_kernels"));
}

TEST_CASE("plugin loader refuses another ABI version and names both", "[worker][plugin]") {
  PluginSet set;
  // The plugin's kernel table traps if called: refusing must happen before.
  const zwq::Status s = set.load(plugin("zwq_test_wrong_abi"));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.error().message,
             Catch::Contains("version 999") &&
                 Catch::Contains("version " + std::to_string(kZwqPluginAbiVersion)));
}

TEST_CASE("plugin loader refuses a kernel name that is taken and keeps the registry",
          "[worker][plugin]") {
  PluginSet set;
  const zwq::Status builtin = set.load(plugin("zwq_test_clash"));
  REQUIRE_FALSE(builtin.ok());
  CHECK_THAT(builtin.error().message, Catch::Contains("'sum'") && Catch::Contains("built-in"));
  CHECK(set.registry().size() == zwq::KernelRegistry::builtin().size());
  CHECK(set.paths().empty());

  REQUIRE(set.load(kKernels).ok());
  const zwq::Status twin = set.load(plugin("zwq_test_twin"));
  REQUIRE_FALSE(twin.ok());
  CHECK_THAT(twin.error().message, Catch::Contains("'t_sum'") && Catch::Contains(kKernels));

  auto all = zwq::worker::load_plugins({kKernels, plugin("zwq_test_twin")});
  CHECK_FALSE(all.ok());
}

TEST_CASE("executor runs a plugin's params kernel over chunks of parameter sets",
          "[worker][plugin]") {
  auto set = zwq::worker::load_plugins({kKernels});
  REQUIRE(set.ok());
  DatasetCache cache;
  Executor executor(cache, set.value()->registry());
  const auto job = executor.prepare(params_job({1, 2, 3, 4, 5}, 2));
  REQUIRE_FALSE(job.setup_error());
  const auto s0 = job.run(0, 1);
  const auto s2 = job.run(2, 1);
  REQUIRE(s0.code == ErrorCode::kOk);
  CHECK(unpack_doubles(s0.partial.bytes) == std::vector<double>{1, 4});
  CHECK(unpack_doubles(s2.partial.bytes) == std::vector<double>{25});
  CHECK(s2.partial.n == 1);

  // A job that names more sets than it carries fails per slice instead of reading past them.
  JobSpec short_job = params_job({1, 2}, 2);
  short_job.count = 4;
  const auto bad = executor.prepare(short_job).run(1, 1);
  CHECK(bad.code == ErrorCode::kOutOfRange);
  CHECK_THAT(bad.message, Catch::Contains("carries 2"));

  // The kernel's own errors and exceptions become the slice's outcome.
  const auto failing = executor.prepare(params_job({3, -1}, 2)).run(0, 1);
  CHECK(failing.code == ErrorCode::kInvalidArgument);
  const auto throwing = executor.prepare(params_job({13}, 1)).run(0, 1);
  CHECK(throwing.code == ErrorCode::kKernelFailed);
  CHECK_THAT(throwing.message, Catch::Contains("unlucky 13"));
}

TEST_CASE("executor runs a plugin's generate kernel into an output file and its check first",
          "[worker][plugin]") {
  auto set = zwq::worker::load_plugins({kKernels});
  REQUIRE(set.ok());
  zwq::test::ShmFile file("plugin-fill");
  file.write(std::vector<std::int64_t>(10, -1));
  JobSpec job;
  job.job_id = "fill";
  job.kernel = "t_fill";
  job.output = zwq::DatasetRef{file.uri(), DType::kI64, 0, 10};
  job.first = 2;
  job.count = 6;
  job.slice_size = 4;
  job.params.set("mul", std::int64_t{10});
  DatasetCache cache;
  Executor executor(cache, set.value()->registry());
  const auto outcomes = executor.execute(zwq::msg::Tasks{1, job, {zwq::SliceRun{0, 2, 1}}});
  REQUIRE(outcomes.size() == 2);
  CHECK(outcomes[0].code == ErrorCode::kOk);
  CHECK(outcomes[0].partial.count == 4);
  CHECK(outcomes[1].partial.count == 2);
  std::vector<std::int64_t> back(10);
  std::FILE* f = std::fopen(file.path().c_str(), "rb");
  REQUIRE(f != nullptr);
  REQUIRE(std::fread(back.data(), sizeof(std::int64_t), 10, f) == 10);
  std::fclose(f);
  CHECK(back == std::vector<std::int64_t>{-1, -1, 20, 30, 40, 50, 60, 70, -1, -1});

  // The worker runs the plugin's parameter check (the broker cannot): every slice gets its error.
  job.params.set("mul", std::int64_t{-1});
  const auto refused = executor.prepare(job);
  REQUIRE(refused.setup_error());
  CHECK_THAT(refused.setup_error()->message, Catch::Contains("mul must be >= 0"));
  CHECK(refused.run(0, 1).code == ErrorCode::kInvalidArgument);

  // An output of another dtype than the kernel writes is refused, not reinterpreted.
  job.params.set("mul", std::int64_t{1});
  job.output.dtype = DType::kF64;
  CHECK(executor.prepare(job).run(0, 1).code == ErrorCode::kDtypeMismatch);
}

TEST_CASE("plugin loader takes a bare file name relative to the current directory",
          "[worker][plugin]") {
  char old[4096];
  REQUIRE(::getcwd(old, sizeof old) != nullptr);
  REQUIRE(::chdir(ZWQ_TEST_PLUGIN_DIR) == 0);
  PluginSet set;
  const zwq::Status s = set.load("libzwq_test_kernels.so");
  REQUIRE(::chdir(old) == 0);
  CHECK(s.ok());
  CHECK(set.registry().find("t_square") != nullptr);
}
