// `dhi gateway --config gateway.toml`: the hybrid router (gateway/gateway.h).
// The config is read and checked before anything listens; SIGINT/SIGTERM stop
// accepting, let the responses in flight finish, and exit 0.
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "gateway/config.h"
#include "gateway/gateway.h"

namespace dhi::cli {
namespace {

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

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

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
