// `dhi serve`: the OpenAI-compatible HTTP server. The listening socket is bound
// first (GET /health answers "loading" while the weights are read), then the
// model is loaded, one Context gets a KV-cache sequence per --parallel slot,
// and the engine loop runs on its own thread. SIGINT/SIGTERM: the scheduler
// ends every request with a final event, the streams drain, the process exits 0.
//
// `dhi bench-serve`: the same server in-process on a loopback port, driven by
// streaming HTTP clients at several concurrency levels (server/bench_serve.h).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/engine_host.h"
#include "dhi_git_revision.h"
#include "engine/scheduler.h"
#include "kernels/cpu/ops.h"
#include "planner/memory.h"
#include "planner/model_desc.h"
#include "server/bench_serve.h"
#include "server/server.h"

namespace dhi::cli {
namespace {

struct ServeOptions {
  EngineOptions engine;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key, api_key_file, alias;
  size_t max_body = size_t(8) << 20;
};

void add_engine_options(CLI::App& cmd, EngineOptions& o) {
  cmd.add_option("-m,--model", o.model_path, "GGUF model file or model name (see dhi ls --catalog)")->required();
  add_offline_flag(cmd, o.offline);
  cmd.add_option("-c,--ctx", o.n_ctx, "Context length of each slot (0: the model's, capped at 4096)")
      ->check(CLI::Range(0u, 1u << 20))
      ->capture_default_str();
  cmd.add_option("-t,--threads", o.n_threads, "CPU threads (0: all cores)")->check(CLI::Range(0, 1024));
  cmd.add_option("--prefill-chunk", o.prefill_chunk, "Prompt tokens per engine step")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd.add_option("--kv-budget", o.kv_budget_mib, "Refuse to start if the KV cache needs more MiB (0: no limit)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 40));
  cmd.add_option("--chat-template", o.chat_template, "Chat template family when the model has none");
}

std::string file_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

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
  so.http_threads = o.engine.parallel + o.engine.max_queue + 8;
  if (!o.api_key_file.empty()) {
    DHI_ASSIGN_OR_RETURN(so.api_key, read_key_file(o.api_key_file));
  } else {
    so.api_key = o.api_key;
  }
  so.model_id = o.alias.empty() ? file_name(o.engine.model_path) : o.alias;

  sigset_t signals = block_termination_signals();

  server::Server http(so);
  DHI_ASSIGN_OR_RETURN(int port, http.bind());
  std::thread http_thread([&] { http.listen(); });

  std::fprintf(stderr, "dhi: loading %s\n", o.engine.model_path.c_str());
  auto eng = start_engine(o.engine);
  if (!eng) {
    http.stop(0);
    http_thread.join();
    return eng.error();
  }
  http.attach((*eng)->refs);
  std::fprintf(stderr, "dhi: model '%s', %d slots of %u tokens (KV cache %.0f MiB)%s\n", so.model_id.c_str(),
               o.engine.parallel, (*eng)->context->n_ctx(), (*eng)->kv_mib,
               (*eng)->refs.family ? "" : "; no chat template: only /v1/completions");
  std::fprintf(stderr, "dhi: listening on http://%s:%d\n", o.host.c_str(), port);
  std::fflush(stderr);

  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "dhi: %s received, finishing open requests and shutting down\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*eng)->scheduler->shutdown();
  (*eng)->thread.join();
  http.stop();
  http_thread.join();
  return {};
}

struct BenchServeOptions {
  EngineOptions engine;
  std::vector<int> concurrency = {1, 4, 8};
  int requests = 2;
  int max_tokens = 64;
  int prompt_tokens = 32;
  bool json = false;
};

Status bench_serve(BenchServeOptions& o) {
  o.engine.parallel = *std::max_element(o.concurrency.begin(), o.concurrency.end());
  // A client's next request can arrive between its last event and the engine
  // freeing that slot: a short queue lets it wait instead of drawing a 429.
  o.engine.max_queue = o.engine.parallel;
  std::signal(SIGPIPE, SIG_IGN);
  DHI_ASSIGN_OR_RETURN(auto eng, start_engine(o.engine));
  server::ServerOptions so;
  so.port = 0;
  so.model_id = file_name(o.engine.model_path);
  so.http_threads = o.engine.parallel + o.engine.max_queue + 4;
  server::Server http(so);
  DHI_ASSIGN_OR_RETURN(int port, http.bind());
  std::thread http_thread([&] { http.listen(); });
  http.attach(eng->refs);

  server::ServeBenchParams bp;
  bp.port = port;
  bp.concurrency = o.concurrency;
  bp.requests_per_client = o.requests;
  bp.max_tokens = o.max_tokens;
  bp.prompt_tokens = o.prompt_tokens;
  bp.n_vocab = eng->lm.tokenizer->n_vocab();
  if (!o.json) {
    std::printf("%s: %d slots, prompt %d tokens, %d generated per request, %d requests per client\n",
                so.model_id.c_str(), o.engine.parallel, o.prompt_tokens, o.max_tokens, o.requests);
    std::printf("%-12s %10s %10s %12s %14s %14s\n", "concurrency", "requests", "tokens", "tok/s", "TTFT p50 ms",
                "TTFT p99 ms");
    std::fflush(stdout);
  }
  auto levels = server::run_serve_bench(bp, [&](const server::ServeBenchLevel& l) {
    if (o.json) return;
    std::printf("%-12d %10d %10lld %12.1f %14.1f %14.1f%s\n", l.concurrency, l.requests,
                static_cast<long long>(l.generated_tokens), l.tokens_per_s, l.ttft_p50_ms, l.ttft_p99_ms,
                l.failed ? " (some requests failed)" : "");
    std::fflush(stdout);
  });
  eng->scheduler->shutdown();
  eng->thread.join();
  http.stop(0);
  http_thread.join();
  if (!levels) return levels.error();
  if (o.json) {
    nlohmann::json j = {{"model", so.model_id},
                        {"git_revision", DHI_GIT_REVISION},
                        {"isa", std::string(kernels::cpu::matmul_isa_name())},
                        {"slots", o.engine.parallel},
                        {"prompt_tokens", o.prompt_tokens},
                        {"max_tokens", o.max_tokens},
                        {"levels", nlohmann::json::array()}};
    for (const auto& l : *levels) {
      j["levels"].push_back({{"concurrency", l.concurrency}, {"requests", l.requests}, {"failed", l.failed},
                             {"generated_tokens", l.generated_tokens}, {"wall_s", l.wall_s},
                             {"tokens_per_s", l.tokens_per_s}, {"ttft_p50_ms", l.ttft_p50_ms},
                             {"ttft_p99_ms", l.ttft_p99_ms}});
    }
    std::printf("%s\n", j.dump().c_str());
  }
  for (const auto& l : *levels) {
    if (l.failed) return make_error(l.failed, " requests failed at concurrency ", l.concurrency);
  }
  return {};
}

}  // namespace

void register_serve(CLI::App& app, Action& action) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server (chat completions, completions)");
  add_engine_options(*cmd, o->engine);
  cmd->add_option("--host", o->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "Port (0: any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--parallel", o->engine.parallel, "Requests generated at once (KV cache slots)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--queue", o->engine.max_queue, "Requests that may wait for a slot before 429")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  auto* key = cmd->add_option("--api-key", o->api_key, "Require Authorization: Bearer KEY");
  cmd->add_option("--api-key-file", o->api_key_file, "Read the API key from the first line of a file")
      ->excludes(key);
  cmd->add_option("--alias", o->alias, "Model id reported by /v1/models (default: the file name)");
  cmd->add_option("--max-body", o->max_body, "Largest request body in bytes")
      ->check(CLI::Range(size_t(1024), size_t(1) << 30))
      ->capture_default_str();
  cmd->callback([o, &action] { action = [o] { return serve(*o); }; });
}

void register_bench_serve(CLI::App& app, Action& action) {
  auto o = std::make_shared<BenchServeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench-serve", "Server throughput: aggregate tok/s and time to first token at several concurrencies");
  add_engine_options(*cmd, o->engine);
  cmd->add_option("--concurrency", o->concurrency, "Concurrent streaming clients per level")
      ->delimiter(',')
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--requests", o->requests, "Requests per client at each level")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("-n,--max-tokens", o->max_tokens, "Tokens generated per request")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("-p,--prompt-tokens", o->prompt_tokens, "Prompt tokens per request (random, distinct)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print one JSON object");
  cmd->callback([o, &action] { action = [o] { return bench_serve(*o); }; });
}

}  // namespace dhi::cli
