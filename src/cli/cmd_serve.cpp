// `dhi serve`: the OpenAI-compatible HTTP server. The listening socket is bound
// first (GET /health answers "loading" while the weights are read), then the
// model is loaded, one Context gets a KV-cache sequence per --parallel slot,
// and the engine loop runs on its own thread. SIGINT/SIGTERM: the scheduler
// ends every request with a final event, the streams drain, the process exits 0.
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "engine/scheduler.h"
#include "server/server.h"

namespace dhi::cli {
namespace {

struct ServeOptions {
  std::string model_path;
  std::string host = "127.0.0.1";
  int port = 8080;
  int32_t parallel = 4;
  uint32_t n_ctx = 4096;
  int32_t n_threads = 0;
  int32_t max_queue = 16;
  int32_t prefill_chunk = 128;
  std::string api_key, api_key_file, alias, chat_template;
  size_t max_body = size_t(8) << 20;
  int64_t kv_budget_mib = 0;
};

Expected<std::string> read_key_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return make_error("cannot read the API key file ", path);
  std::string key;
  std::getline(f, key);
  while (!key.empty() && (key.back() == '\r' || key.back() == ' ' || key.back() == '\t')) key.pop_back();
  if (key.empty()) return make_error("the API key file ", path, " has an empty first line");
  return key;
}

Status serve(ServeOptions& o) {
  server::ServerOptions so;
  so.host = o.host;
  so.port = o.port;
  so.max_body_bytes = o.max_body;
  so.http_threads = o.parallel + o.max_queue + 8;
  if (!o.api_key_file.empty()) {
    DHI_ASSIGN_OR_RETURN(so.api_key, read_key_file(o.api_key_file));
  } else {
    so.api_key = o.api_key;
  }
  so.model_id = o.alias;
  if (so.model_id.empty()) {
    const size_t slash = o.model_path.find_last_of('/');
    so.model_id = slash == std::string::npos ? o.model_path : o.model_path.substr(slash + 1);
  }

  // SIGINT and SIGTERM are taken by this thread's sigwait, never by a handler
  // in another thread; a client that disconnects must not kill the process.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  server::Server http(so);
  DHI_ASSIGN_OR_RETURN(int port, http.bind());
  std::thread http_thread([&] { http.listen(); });
  auto stop_http = [&] {
    http.stop(0);
    http_thread.join();
  };

  std::fprintf(stderr, "dhi: loading %s\n", o.model_path.c_str());
  auto lm = load_model(o.model_path);
  if (!lm) {
    stop_http();
    return lm.error();
  }
  server::Engine eng;
  auto family = choose_template(*lm->file, o.chat_template);
  if (family) {
    eng.family = *family;
  } else {
    eng.template_error = "chat completions need a chat template: " + family.error().message +
                         " (for dhi serve: restart it with --chat-template NAME; /v1/completions works without one)";
  }
  // The KV cache is allocated up front for every slot: check it against the budget first.
  const uint32_t n_ctx = o.n_ctx ? o.n_ctx : std::min(lm->model->config().n_ctx_train, model::Context::kDefaultMaxCtx);
  const double kv_mib =
      double(model::estimate_memory(lm->model->config(), lm->model->weight_bytes(), n_ctx, o.parallel).kv_cache) /
      double(1 << 20);
  if (o.kv_budget_mib > 0 && kv_mib > double(o.kv_budget_mib)) {
    stop_http();
    return make_error("the KV cache for ", o.parallel, " slots of ", n_ctx, " tokens needs ", int64_t(kv_mib),
                      " MiB, over --kv-budget ", o.kv_budget_mib, " MiB; use fewer --parallel slots or a smaller --ctx");
  }
  model::ContextParams cp;
  cp.n_ctx = o.n_ctx;
  cp.n_seq = o.parallel;
  cp.n_threads = o.n_threads;
  auto context = model::Context::create(*lm->model, cp);
  if (!context) {
    stop_http();
    return context.error();
  }
  engine::Scheduler scheduler(**context, *lm->tokenizer, {o.max_queue, o.prefill_chunk});
  std::thread engine_thread([&] { scheduler.run(); });
  eng.scheduler = &scheduler;
  eng.tokenizer = lm->tokenizer.get();
  http.attach(eng);

  std::fprintf(stderr, "dhi: model '%s', %d slots of %u tokens (KV cache %.0f MiB)%s%s\n", so.model_id.c_str(),
               o.parallel, (*context)->n_ctx(), kv_mib, eng.family ? "" : "; no chat template: ",
               eng.family ? "" : "only /v1/completions");
  std::fprintf(stderr, "dhi: listening on http://%s:%d\n", o.host.c_str(), port);
  std::fflush(stderr);

  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "dhi: %s received, finishing open requests and shutting down\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
  scheduler.shutdown();
  engine_thread.join();
  http.stop();
  http_thread.join();
  return {};
}

}  // namespace

void register_serve(CLI::App& app, Action& action) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server (chat completions, completions)");
  cmd->add_option("-m,--model", o->model_path, "GGUF model file")->required();
  cmd->add_option("--host", o->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "Port (0: any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--parallel", o->parallel, "Requests generated at once (KV cache slots)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("-c,--ctx", o->n_ctx, "Context length of each slot (0: the model's, capped at 4096)")
      ->check(CLI::Range(0u, 1u << 20))
      ->capture_default_str();
  cmd->add_option("-t,--threads", o->n_threads, "CPU threads (0: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_option("--queue", o->max_queue, "Requests that may wait for a slot before 429")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  cmd->add_option("--prefill-chunk", o->prefill_chunk, "Prompt tokens per engine step")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  auto* key = cmd->add_option("--api-key", o->api_key, "Require Authorization: Bearer KEY");
  cmd->add_option("--api-key-file", o->api_key_file, "Read the API key from the first line of a file")
      ->excludes(key);
  cmd->add_option("--alias", o->alias, "Model id reported by /v1/models (default: the file name)");
  cmd->add_option("--chat-template", o->chat_template, "Chat template family when the model has none");
  cmd->add_option("--max-body", o->max_body, "Largest request body in bytes")
      ->check(CLI::Range(size_t(1024), size_t(1) << 30))
      ->capture_default_str();
  cmd->add_option("--kv-budget", o->kv_budget_mib, "Refuse to start if the KV cache needs more MiB (0: no limit)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  cmd->callback([o, &action] { action = [o] { return serve(*o); }; });
}

}  // namespace dhi::cli
