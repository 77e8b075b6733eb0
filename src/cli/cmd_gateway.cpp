// `dhi gateway --config gateway.toml`: the hybrid router (gateway/gateway.h).
// The config is read and checked before anything listens. Each `local`
// backend's engine is loaded here and served by the same Server as `dhi serve`
// on an internal loopback port, which the gateway then treats as a node.
// SIGINT/SIGTERM stop accepting, let the responses in flight finish, and exit 0.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/engine_host.h"
#include "gateway/config.h"
#include "gateway/gateway.h"
#include "server/server.h"

namespace dhi::cli {
namespace {

// A local backend's engine and its internal server.
struct LocalEngine {
  std::unique_ptr<RunningEngine> engine;
  std::unique_ptr<server::Server> http;
  std::thread thread;
  ~LocalEngine() {
    if (!thread.joinable()) return;
    engine->scheduler->shutdown();
    http->stop();
    thread.join();
  }
};

Expected<std::unique_ptr<LocalEngine>> start_local(gateway::BackendConfig& b) {
  auto local = std::make_unique<LocalEngine>();
  EngineOptions eo;
  eo.model_path = b.model_path;
  eo.n_ctx = uint32_t(b.local_ctx);
  eo.parallel = int32_t(b.local_parallel);
  eo.n_threads = int32_t(b.local_threads);
  std::fprintf(stderr, "dhi gateway: loading %s for local backend %s\n", b.model_path.c_str(), b.name.c_str());
  auto engine = start_engine(eo);
  if (!engine) return make_error("backend ", b.name, ": ", engine.error().message);
  local->engine = std::move(*engine);
  server::ServerOptions so;
  so.host = "127.0.0.1";
  so.port = 0;
  so.model_id = b.models[0];
  so.http_threads = eo.parallel + eo.max_queue + 8;
  local->http = std::make_unique<server::Server>(so);
  DHI_ASSIGN_OR_RETURN(int port, local->http->bind());
  local->http->attach(local->engine->refs);
  local->thread = std::thread([h = local->http.get()] { h->listen(); });
  b.url = "http://127.0.0.1:" + std::to_string(port);
  b.kind = gateway::BackendKind::Node;
  return local;
}

struct GatewayOptions {
  std::string config;
  std::string host;
  int port = -1;  // -1: the config's
};

Status run_gateway(const GatewayOptions& o) {
  DHI_ASSIGN_OR_RETURN(gateway::GatewayConfig config, gateway::load_config(o.config));
  if (!o.host.empty()) config.host = o.host;
  if (o.port >= 0) config.port = o.port;
  const std::string host = config.host;

  sigset_t signals = block_termination_signals();

  std::vector<std::unique_ptr<LocalEngine>> locals;
  for (gateway::BackendConfig& b : config.backends) {
    if (b.kind != gateway::BackendKind::Local) continue;
    DHI_ASSIGN_OR_RETURN(auto local, start_local(b));
    locals.push_back(std::move(local));
  }
  DHI_ASSIGN_OR_RETURN(auto gw, gateway::Gateway::create(std::move(config)));
  DHI_ASSIGN_OR_RETURN(int port, gw->bind());
  std::thread http_thread([&] { gw->listen(); });
  std::fprintf(stderr, "dhi gateway: listening on http://%s:%d\n", host.c_str(), port);
  std::fflush(stderr);
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "dhi gateway: %s received, finishing open requests and shutting down\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
  gw->stop();
  http_thread.join();
  return {};
}

}  // namespace

void register_gateway(CLI::App& app, Action& action) {
  auto o = std::make_shared<GatewayOptions>();
  CLI::App* cmd = app.add_subcommand(
      "gateway", "Hybrid router: OpenAI-compatible front over local nodes and hosted APIs, by privacy policy");
  cmd->add_option("--config", o->config, "Gateway configuration (TOML)")->required();
  cmd->add_option("--host", o->host, "Address to listen on (overrides the config's listen)");
  cmd->add_option("--port", o->port, "Port (overrides the config's listen; 0: any free port)")
      ->check(CLI::Range(0, 65535));
  cmd->callback([o, &action] { action = [o] { return run_gateway(*o); }; });
}

}  // namespace dhi::cli
