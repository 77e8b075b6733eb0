// Starting an in-process engine (see engine_host.h).
#include "cli/engine_host.h"

#include <csignal>

#include "planner/memory.h"
#include "planner/model_desc.h"

namespace dhi::cli {

Expected<std::unique_ptr<RunningEngine>> start_engine(const EngineOptions& o) {
  auto e = std::make_unique<RunningEngine>();
  DHI_ASSIGN_OR_RETURN(const std::string path, resolve_model_arg(o.model_path, o.offline));
  // The capacity planner admits the configuration before the weights are read:
  // every slot's KV cache is allocated up front.
  EngineRequest req;
  req.n_ctx = o.n_ctx;
  req.n_seq = o.parallel;
  req.n_threads = o.n_threads;
  DHI_ASSIGN_OR_RETURN(e->lm, load_model(path, &req));
  auto family = choose_template(*e->lm.file, o.chat_template);
  if (family) {
    e->refs.family = *family;
  } else {
    e->refs.template_error = "chat completions need a chat template: " + family.error().message +
                             " (for dhi serve: restart it with --chat-template NAME; /v1/completions works "
                             "without one)";
  }
  // The KV cache is allocated up front for every slot: check it against the budget first.
  const uint32_t n_ctx = e->lm.n_ctx;
  DHI_ASSIGN_OR_RETURN(const planner::ModelDesc desc, planner::describe_gguf(*e->lm.file, path));
  e->kv_mib = double(planner::kv_cache_bytes(desc, desc.n_layer, n_ctx, o.parallel, TensorType::F32)) /
              double(1 << 20);
  if (o.kv_budget_mib > 0 && e->kv_mib > double(o.kv_budget_mib))
    return make_error("the KV cache for ", o.parallel, " slots of ", n_ctx, " tokens needs ", int64_t(e->kv_mib),
                      " MiB, over --kv-budget ", o.kv_budget_mib, " MiB; use fewer --parallel slots or a smaller --ctx");
  model::ContextParams cp;
  cp.n_ctx = n_ctx;
  cp.n_seq = o.parallel;
  cp.n_threads = o.n_threads;
  DHI_ASSIGN_OR_RETURN(e->context, model::Context::create(*e->lm.model, cp));
  e->scheduler = std::make_unique<engine::Scheduler>(*e->context, *e->lm.tokenizer,
                                                     engine::SchedulerParams{o.max_queue, o.prefill_chunk});
  e->thread = std::thread([s = e->scheduler.get()] { s->run(); });
  e->refs.scheduler = e->scheduler.get();
  e->refs.tokenizer = e->lm.tokenizer.get();
  return e;
}

sigset_t block_termination_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return signals;
}

}  // namespace dhi::cli
