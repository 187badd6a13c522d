// zwq kernels: the kernels jobs may name, what they read and how their results combine: the
// built-in ones, or with --broker / $ZWQ_BROKER, those the broker offers (plugins included).
#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli.hpp"

namespace zwq::cli {

namespace {

struct KernelsArgs {
  bool json = false;
  std::string broker;
  double timeout = 0;  // --timeout: seconds to reach the broker in
  CLI::Option* timeout_opt = nullptr;
};

int run_kernels(const KernelsArgs& a) {
  const auto& builtin = KernelRegistry::builtin();
  std::vector<KernelSpec> specs = builtin.specs();
  const bool ask_broker = !a.broker.empty() || std::getenv("ZWQ_BROKER") != nullptr;
  if (ask_broker) {
    int exit_code = kExitOk;
    ConnectOptions how;
    if (*a.timeout_opt) how.timeout = a.timeout;
    how.bounds_requests = true;
    auto client = connect_or_report(a.broker, exit_code, how);
    if (!client) return exit_code;
    // An older broker lists names only: those it does not describe are left out.
    if (!client->info().kernel_specs.empty()) specs = client->info().kernel_specs;
  }
  nlohmann::json out = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;
  for (const KernelSpec& k : specs) {
    const KernelInfo* local = builtin.find(k.name);
    const std::string help = local ? local->help : k.help.empty() ? "(a plugin's kernel)" : k.help;
    const std::string shape(kernel_shape_name(k.shape));
    const std::string combiner(combiner_name(k.combiner));
    std::string dtypes;
    if (k.input_dtype != DType::kNone) dtypes += "in " + std::string(dtype_name(k.input_dtype));
    if (k.output_dtype != DType::kNone) {
      dtypes += (dtypes.empty() ? "" : ", ") + std::string("out ") +
                std::string(dtype_name(k.output_dtype));
    }
    out.push_back({{"name", k.name},
                   {"shape", shape},
                   {"combiner", combiner},
                   {"input_dtype", std::string(dtype_name(k.input_dtype))},
                   {"output_dtype", std::string(dtype_name(k.output_dtype))},
                   {"help", help}});
    rows.push_back({k.name, shape, combiner, dtypes.empty() ? "any" : dtypes, help});
  }
  if (a.json) {
    std::cout << out.dump() << std::endl;
  } else {
    print_table({"KERNEL", "SHAPE", "COMBINER", "DTYPES", "HELP"}, rows);
  }
  return kExitOk;
}

}  // namespace

void add_kernels_command(CLI::App& app, Commands& commands) {
  auto a = std::make_shared<KernelsArgs>();
  CLI::App* cmd = app.add_subcommand(
      "kernels",
      "List the kernels: built-in ones, or those a broker offers (--broker, ZWQ_BROKER)");
  cmd->add_flag("--json", a->json, "Print JSON");
  a->timeout_opt = cmd->add_option("--timeout", a->timeout,
                                   "Give up on a broker that does not answer within SECONDS")
                       ->check(kNotNegative);
  add_broker_option(cmd, a->broker);
  commands.push_back({cmd, [a] { return run_kernels(*a); }});
}

}  // namespace zwq::cli
