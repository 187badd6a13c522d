// The installed package, as a user outside the source tree sees it: `cmake --install` into a
// temporary prefix, examples/plugin configured as a separate project with find_package(zwq) and
// built with zwq_add_kernel_plugin(), then the installed zwq-worker loads the plugin and runs
// its kernels; and examples/client, a program linked with zwq::client, sums an array with the
// installed zwq-broker and zwq-worker.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "cluster.hpp"
#include "command.hpp"
#include "test_dir.hpp"

using namespace zwq;
using namespace zwq::test;

namespace {

// Runs `command`, keeping its output for the report when it fails.
void must_run(const std::string& command) {
  auto r = run_command(command + " 2>&1");
  INFO(command << "\n" << r.out);
  REQUIRE(r.exit_code == 0);
}

}  // namespace

TEST_CASE(
    "package: a plugin and a client program built outside the tree against the installed zwq run",
    "[integration][plugin][package]") {
  const std::string cmake = ZWQ_TEST_CMAKE;
  const TestDir tmp("package");
  const std::string prefix = tmp.path() + "/prefix";
  const std::string build = tmp.path() + "/build";
  must_run(cmake + " --install " + ZWQ_TEST_BUILD_DIR + " --prefix " + prefix);
  CHECK(std::filesystem::exists(prefix + "/include/zwq/kernel_sdk.hpp"));
  must_run(cmake + " -S " + ZWQ_TEST_SOURCE_DIR + "/examples/plugin -B " + build +
           " -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=" + prefix);
  must_run(cmake + " --build " + build + " -j2");
  const std::string plugin = build + "/libzwq_example_plugin.so";
  REQUIRE(std::filesystem::exists(plugin));

  // The installed binaries, not the build tree's.
  LocalClusterOptions options = cluster_options(2);
  options.bin_dir = prefix + "/bin";
  options.plugins = {plugin};
  Pool pool(options);

  auto x = make_array<double>("package", 1000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i + 1);
  auto sumsq = pool.submit(JobRequest::reduce("sumsq", x), {.chunksize = 128});
  REQUIRE(sumsq.ok());
  auto r = sumsq.value().result(kJobTimeout);
  REQUIRE(r.ok());
  CHECK(r.value().value == 1000.0 * 1001 * 2001 / 6);  // 1^2 + ... + 1000^2

  auto in = make_array<float>("package-in", 64);
  auto out = make_array<float>("package-out", 64);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
  Params factor;
  factor.set("factor", 3.0);
  auto mapped = pool.map("scale", in, out, factor, {.timeout = kJobTimeout});
  REQUIRE(mapped.ok());
  CHECK(mapped.value().value == 64);
  CHECK(out[63] == 189.0f);

  std::vector<Params> starts(3);
  starts[0].set("n", std::int64_t{1});
  starts[1].set("n", std::int64_t{6});
  starts[2].set("n", std::int64_t{27});
  auto steps = pool.starmap<std::int64_t>("collatz", starts, {.timeout = kJobTimeout});
  REQUIRE(steps.ok());
  CHECK(steps.value() == std::vector<std::int64_t>{0, 8, 111});

  // A client program against zwq::client, run with the installed binaries on its PATH only.
  const std::string client_build = tmp.path() + "/client";
  must_run(cmake + " -S " + ZWQ_TEST_SOURCE_DIR + "/examples/client -B " + client_build +
           " -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=" + prefix);
  must_run(cmake + " --build " + client_build + " -j2");
  const auto client = run_command("env -u ZWQ_BIN_DIR PATH=" + prefix + "/bin:/usr/bin:/bin " +
                                  client_build + "/zwq_example_client 100000 2>&1");
  INFO(client.out);
  CHECK(client.exit_code == 0);
  CHECK(client.out == "sum = 4999950000 over 100000 elements, 2 workers\n");
}
