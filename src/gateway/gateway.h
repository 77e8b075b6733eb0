// `dhi gateway`: an OpenAI-compatible front (the same endpoints, error objects
// and SSE format as `dhi serve`, on the shared server/http_front) that routes
// each request to a backend. Per request, before any byte leaves: the client
// key, the privacy decision (X-DHI-Privacy header or the key's default, then
// the content detectors), the route (router.h), and the audit record. Then a
// worker thread runs the attempts (forward.h) while the HTTP thread streams
// the pieces to the client as one completion with the gateway's own id.
//
// Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models
// (aliases and concrete models), GET /health (with per-backend state),
// GET /metrics (front counters plus per-backend families).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "core/expected.h"
#include "gateway/backends.h"
#include "gateway/config.h"
#include "gateway/router.h"
#include "policy/audit.h"
#include "policy/detectors.h"
#include "server/metrics.h"
#include "server/openai.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace dhi::gateway {

class Gateway {
 public:
  // Opens the audit log and compiles the detectors.
  static Expected<std::unique_ptr<Gateway>> create(GatewayConfig config);
  ~Gateway();

  // Binds (port 0: any free port) and returns the port.
  Expected<int> bind();
  // One round of health checks, then the background checker; serves until stop().
  void listen();
  void stop();

 private:
  explicit Gateway(GatewayConfig config);
  void routes();
  void handle_completion(server::Endpoint endpoint, const httplib::Request& req, httplib::Response& res);
  void reply_error(httplib::Response& res, const char* endpoint, const server::ApiError& e);
  // The [[key]] the request's bearer token matches (nullptr: none, or no keys configured).
  const KeyConfig* client_key(const httplib::Request& req) const;
  void audit(const nlohmann::json& record);

  GatewayConfig config_;
  std::unique_ptr<Backends> backends_;
  policy::Detectors detectors_;
  std::unique_ptr<policy::AuditLog> audit_;
  server::Metrics metrics_;
  Budgets budgets_;
  std::atomic<uint64_t> next_id_{0};
  std::atomic<bool> listening_{false};
  uint64_t id_salt_ = 0;
  // Last: destroyed first, so request threads (and their workers) end while
  // everything they use still exists.
  std::unique_ptr<httplib::Server> http_;
};

}  // namespace dhi::gateway
