// zwq kernels: the built-in kernels, what they read and how their results combine.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli.hpp"

namespace zwq::cli {

namespace {

std::string shape_name(KernelShape shape) {
  switch (shape) {
    case KernelShape::kReduce:
      return "reduce";
    case KernelShape::kReduce2:
      return "reduce2";
    case KernelShape::kMap:
      return "map";
    case KernelShape::kRange:
      return "range";
  }
  return "?";
}

int run_kernels(bool json) {
  const auto& registry = KernelRegistry::builtin();
  nlohmann::json out = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;
  for (const auto& name : registry.names()) {
    const KernelInfo* k = registry.find(name);
    if (!k) continue;
    const std::string combiner(combiner_name(k->combiner));
    out.push_back({{"name", name},
                   {"shape", shape_name(k->shape)},
                   {"combiner", combiner},
                   {"help", k->help}});
    rows.push_back({name, shape_name(k->shape), combiner, k->help});
  }
  if (json) {
    std::cout << out.dump() << std::endl;
  } else {
    print_table({"KERNEL", "SHAPE", "COMBINER", "HELP"}, rows);
  }
  return kExitOk;
}

}  // namespace

void add_kernels_command(CLI::App& app, Commands& commands) {
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("kernels", "List the built-in kernels");
  cmd->add_flag("--json", *json, "Print JSON");
  commands.push_back({cmd, [json] { return run_kernels(*json); }});
}

}  // namespace zwq::cli
