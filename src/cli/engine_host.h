// A model served in this process: loading it under the capacity planner's
// admission, its Context with one KV-cache sequence per slot, the Scheduler
// and the engine loop's thread. `dhi serve`, `dhi bench-serve` and the local
// backends of `dhi gateway` start their engines here.
#pragma once

#include <signal.h>

#include <memory>
#include <string>
#include <thread>

#include "cli/common.h"
#include "core/expected.h"
#include "engine/scheduler.h"
#include "model/context.h"
#include "server/server.h"

namespace dhi::cli {

struct EngineOptions {
  std::string model_path;  // a path or a model name until resolve_model_arg
  bool offline = false;
  int32_t parallel = 4;
  uint32_t n_ctx = 0;
  int32_t n_threads = 0;
  int32_t max_queue = 16;
  int32_t prefill_chunk = 128;
  int64_t kv_budget_mib = 0;
  std::string chat_template;
};

// A loaded model with its context, scheduler and engine thread; stops the
// engine loop when destroyed.
struct RunningEngine {
  LoadedModel lm;
  std::unique_ptr<model::Context> context;
  std::unique_ptr<engine::Scheduler> scheduler;
  std::thread thread;
  server::Engine refs;
  double kv_mib = 0;
  ~RunningEngine() {
    if (!thread.joinable()) return;
    scheduler->shutdown();
    thread.join();
  }
};

Expected<std::unique_ptr<RunningEngine>> start_engine(const EngineOptions& o);

// For a server's main thread, before it starts other threads: blocks SIGINT
// and SIGTERM in every thread (so only the caller's sigwait on the returned
// set takes them, never a handler in another thread) and ignores SIGPIPE (a
// client that disconnects must not kill the process).
sigset_t block_termination_signals();

}  // namespace dhi::cli
