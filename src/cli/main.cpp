// The `dhi` executable: parses the command line and runs one subcommand. Every
// failure ends as one line on stderr and a non-zero exit code.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string_view>

#include "cli/commands.h"
#include "cli/common.h"

int main(int argc, char** argv) {
  using namespace dhi::cli;
  CLI::App app{"dhi: run open-weight reasoning models on the hardware you have", "dhi"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "dhi 0.1.0");
  Action action;
  register_run(app, action);
  register_chat(app, action);
  register_tokenize(app, action);
  register_info(app, action);
  register_bench(app, action);
  register_synth(app, action);
  register_pull(app, action);
  register_ls(app, action);
  register_rm(app, action);
  register_serve(app, action);
  register_bench_serve(app, action);
  register_plan(app, action);
  register_audit(app, action);
  register_gateway(app, action);
  // CLI11 only says "a subcommand is required" for a mistyped command; name it.
  auto is_command = [&](const char* name) {
    for (const CLI::App* sub : app.get_subcommands({})) if (sub->get_name() == name) return true;
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !is_command(argv[1])) {
    std::fprintf(stderr, "dhi: error: unknown command '%s' (commands: run, chat, pull, ls, rm, tokenize, info, bench, synth, plan, serve, bench-serve, audit, gateway)\n",
                 argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    // `dhi audit verify` keeps 1 for "violations found": a usage error is 2.
    return code != 0 && argc > 1 && std::string_view(argv[1]) == "audit" ? 2 : code;
  }
  install_interrupt_handler();
  try {
    dhi::Status status = action();
    if (!status) {
      std::fflush(stdout);
      std::fprintf(stderr, "dhi: error: %s\n", status.error().message.c_str());
      return failure_exit_code();
    }
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "dhi: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
