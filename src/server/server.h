// The OpenAI-compatible HTTP server. HTTP threads (cpp-httplib) check the API
// key and limits, parse and validate the request, render the chat template,
// tokenize and submit to the engine's Scheduler; then each waits on its own
// request's events and writes the response (JSON, or server-sent events). The
// engine loop, not the HTTP threads, owns the model. A client that goes away
// is noticed when a write fails (streams write every token; while a request
// waits, a keep-alive comment or whitespace goes out every second) and its
// request is cancelled, which frees its slot.
//
// Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models,
// GET /v1/models/{id}, GET /health, GET /metrics.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "chat/template.h"
#include "core/expected.h"
#include "engine/scheduler.h"
#include "server/http_front.h"
#include "server/metrics.h"
#include "server/openai.h"
#include "tokenizer/tokenizer.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace dhi::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;        // 0: any free port
  std::string api_key;    // empty: no authentication
  std::string model_id;   // what /v1/models reports and requests may name
  size_t max_body_bytes = size_t(8) << 20;
  size_t max_header_bytes = size_t(32) << 10;  // all header names and values together
  size_t max_headers = 100;
  int http_threads = 32;  // connections served at once (waiting requests hold one each)
};

// What the server needs once the model is loaded.
struct Engine {
  engine::Scheduler* scheduler = nullptr;
  const tok::Tokenizer* tokenizer = nullptr;
  std::optional<chat::TemplateFamily> family;  // none: chat completions answer template_error
  std::string template_error;
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();

  // Binds the listening socket; returns the port (useful with port 0).
  Expected<int> bind();
  // Serves until stop(); requests before attach() are answered 503 (loading).
  void listen();
  void attach(const Engine& engine);
  // Graceful stop: /health reports shutting down, waits (up to `drain_ms`)
  // for the responses in flight to finish, then closes the listening socket.
  // The caller ends the scheduler's requests first so streams get their final event.
  void stop(int drain_ms = 10000);

 private:
  void routes();
  void handle_completion(Endpoint endpoint, const httplib::Request& req, httplib::Response& res);
  void reply_error(httplib::Response& res, const char* endpoint, const ApiError& e);
  bool authorized(const httplib::Request& req) const;

  ServerOptions opts_;
  std::unique_ptr<httplib::Server> http_;
  Metrics metrics_;
  std::mutex engine_mu_;
  std::optional<Engine> engine_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> listening_{false};
  std::atomic<int> in_flight_{0};
  std::atomic<uint64_t> next_id_{0};
  uint64_t id_salt_;
};

}  // namespace dhi::server
