// Registration of the `dhi` subcommands. Each adds its options to the app and,
// when selected, sets `action` to the work to do after parsing.
#pragma once

#include <functional>

#include "core/expected.h"

namespace CLI {
class App;
}

namespace dhi::cli {

using Action = std::function<Status()>;

void register_run(CLI::App& app, Action& action);
void register_chat(CLI::App& app, Action& action);
void register_tokenize(CLI::App& app, Action& action);
void register_info(CLI::App& app, Action& action);
void register_bench(CLI::App& app, Action& action);
void register_synth(CLI::App& app, Action& action);
void register_pull(CLI::App& app, Action& action);
void register_ls(CLI::App& app, Action& action);
void register_rm(CLI::App& app, Action& action);
void register_serve(CLI::App& app, Action& action);
void register_bench_serve(CLI::App& app, Action& action);
void register_plan(CLI::App& app, Action& action);
void register_audit(CLI::App& app, Action& action);
void register_gateway(CLI::App& app, Action& action);

// The exit status main() returns when the action fails: 1 unless the action
// chose another (`dhi audit verify`: 1 for violations, 2 for an unreadable log).
int& failure_exit_code();

}  // namespace dhi::cli
