// zwq: submit jobs to a zwq broker, inspect it, manage shared arrays, run a local cluster.
#include <exception>
#include <iostream>

#include "cli.hpp"

int main(int argc, char** argv) {
  using namespace zwq::cli;
  CLI::App app{"zwq: a ZeroMQ work queue over shared-memory arrays"};
  app.require_subcommand(1);
  Commands commands;
  add_submit_command(app, commands);
  add_wait_commands(app, commands);
  add_status_commands(app, commands);
  add_kernels_command(app, commands);
  add_array_commands(app, commands);
  add_local_command(app, commands);
  // A word where a command goes that names none: say so, rather than CLI11's "A subcommand is
  // required".
  if (argc > 1 && argv[1][0] != '-') {
    std::string names;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) {
      names += " " + sub->get_name();
      known = known || sub->check_name(argv[1]);
    }
    if (!known) {
      return usage_error("unknown command '" + std::string(argv[1]) + "' (commands:" + names + ")");
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a ParseError too, with exit code 0.
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  try {
    for (const auto& command : commands) {
      if (command.app->parsed()) return command.run();
    }
  } catch (const std::exception& e) {
    std::cerr << "zwq: " << e.what() << "\n";
    return kExitFailed;
  }
  return kExitUsage;
}
