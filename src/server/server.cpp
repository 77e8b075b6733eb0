// Server: routes, authentication, limits and the per-request response loop.
#include "server/server.h"

#include <httplib.h>

#include <chrono>
#include <random>
#include <thread>

namespace dhi::server {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using engine::Clock;

constexpr auto kPollInterval = 250ms;  // how often a waiting response checks in
constexpr auto kKeepAlive = 1s;        // idle time before a keep-alive write
// JSON responses that wait on generation are streamed as chunks (so a write
// can find a client that went away). "; charset=utf-8" keeps cpp-httplib from
// gzip-buffering them, which would hold back those probing writes.
constexpr const char* kJsonType = "application/json; charset=utf-8";

ApiError loading_error() {
  ApiError e;
  e.status = 503;
  e.type = "server_error";
  e.code = "model_loading";
  e.message = "the model is still loading; retry when GET /health reports ok";
  return e;
}

// State of one response in flight, shared by the content provider's calls.
struct Pending {
  CompletionRequest request;
  std::unique_ptr<ResponseBuilder> builder;
  std::shared_ptr<engine::RequestHandle> handle;
  bool started = false, done = false;
  Clock::time_point last_write = Clock::now();
  std::optional<Clock::time_point> last_token;
};

}  // namespace

Server::Server(ServerOptions options) : opts_(std::move(options)), http_(std::make_unique<httplib::Server>()) {
  id_salt_ = std::random_device{}();
  routes();
}

Server::~Server() = default;

void Server::reply_error(httplib::Response& res, const char* endpoint, const ApiError& e) {
  write_error(res, e);
  metrics_.count_request(endpoint, e.status);
}

bool Server::authorized(const httplib::Request& req) const {
  return opts_.api_key.empty() || constant_time_equal(bearer_token(req), opts_.api_key);
}

void Server::routes() {
  httplib::Server& h = *http_;
  FrontOptions front;
  front.max_body_bytes = opts_.max_body_bytes;
  front.max_header_bytes = opts_.max_header_bytes;
  front.max_headers = opts_.max_headers;
  front.http_threads = opts_.http_threads;
  install_front(
      h, front, [this](const httplib::Request& req) { return authorized(req); },
      [this](httplib::Response& res, const char* endpoint, const ApiError& e) { reply_error(res, endpoint, e); });

  h.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(engine_mu_);
    const char* status = stopping_ ? "shutting_down" : engine_ ? "ok" : "loading";
    res.status = stopping_ || !engine_ ? 503 : 200;
    res.set_content(json{{"status", status}}.dump(), "application/json");
  });
  h.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::optional<engine::SchedulerStats> stats;
    {
      std::lock_guard lock(engine_mu_);
      if (engine_) stats = engine_->scheduler->stats();
    }
    res.set_content(metrics_.render(stats ? &*stats : nullptr), "text/plain; version=0.0.4");
  });
  auto model_object = [this] {
    return json{{"id", opts_.model_id}, {"object", "model"}, {"created", 0}, {"owned_by", "dhi"}};
  };
  h.Get("/v1/models", [this, model_object](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump(json{{"object", "list"}, {"data", json::array({model_object()})}}), "application/json");
    metrics_.count_request("models", 200);
  });
  h.Get(R"(/v1/models/(.+))", [this, model_object](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != opts_.model_id) {
      ApiError e;
      e.status = 404;
      e.code = "model_not_found";
      e.param = "model";
      e.message = "the model '" + std::string(req.matches[1]) + "' does not exist";
      return reply_error(res, "models", e);
    }
    res.set_content(dump(model_object()), "application/json");
    metrics_.count_request("models", 200);
  });
  h.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_completion(Endpoint::ChatCompletions, req, res);
  });
  h.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_completion(Endpoint::Completions, req, res);
  });
}

void Server::handle_completion(Endpoint endpoint, const httplib::Request& req, httplib::Response& res) {
  const char* name = endpoint == Endpoint::ChatCompletions ? "chat_completions" : "completions";
  std::optional<Engine> eng;
  {
    std::lock_guard lock(engine_mu_);
    eng = engine_;
  }
  if (!eng) return reply_error(res, name, loading_error());

  auto p = std::make_shared<Pending>();
  thread_local std::mt19937_64 seeds{std::random_device{}()};
  if (auto e = parse_request(endpoint, req.body, seeds(), p->request)) return reply_error(res, name, *e);
  CompletionRequest& cr = p->request;
  if (!cr.model.empty() && cr.model != opts_.model_id) {
    ApiError e;
    e.status = 404;
    e.code = "model_not_found";
    e.param = "model";
    e.message = "the model '" + cr.model + "' does not exist; this server serves '" + opts_.model_id + "'";
    return reply_error(res, name, e);
  }

  const tok::Tokenizer& tk = *eng->tokenizer;
  engine::Request request;
  bool opens_reasoning = false;
  if (endpoint == Endpoint::ChatCompletions) {
    if (!eng->family) {
      ApiError e;
      e.message = eng->template_error;
      e.code = "no_chat_template";
      return reply_error(res, name, e);
    }
    std::string text;
    if (cr.prefix) {
      auto c = chat::render_continuation(*eng->family, cr.messages, *cr.prefix);
      if (c) {
        text = std::move(c->text);
        opens_reasoning = c->in_reasoning;
      } else {
        ApiError e;
        e.param = "messages";
        e.message = c.error().message;
        return reply_error(res, name, e);
      }
    } else {
      auto t = chat::render(*eng->family, cr.messages, /*add_generation_prompt=*/true);
      if (!t) {
        ApiError e;
        e.param = "messages";
        e.message = t.error().message;
        return reply_error(res, name, e);
      }
      text = std::move(*t);
      opens_reasoning = chat::opens_in_reasoning(*eng->family, true);
    }
    request.prompt = tk.encode(text, tk.add_bos(), /*parse_special=*/true);
    for (auto& s : chat::stop_texts(*eng->family)) cr.limits.stop.push_back(s);
  } else {
    request.prompt = cr.prompt_is_tokens ? cr.prompt_tokens : tk.encode(cr.prompt, tk.add_bos(), true);
  }
  request.limits = cr.limits;
  const int64_t n_ctx = eng->scheduler->n_ctx();
  if (int64_t(request.prompt.size()) >= n_ctx) {
    ApiError e;
    e.code = "context_length_exceeded";
    e.param = endpoint == Endpoint::ChatCompletions ? "messages" : "prompt";
    e.message = "this model's context holds " + std::to_string(n_ctx) + " tokens per request, but the prompt has " +
                std::to_string(request.prompt.size()) + " (it needs room for at least one generated token)";
    return reply_error(res, name, e);
  }

  engine::SubmitResult sub = eng->scheduler->submit(std::move(request));
  if (sub.status != engine::SubmitStatus::Accepted) {
    ApiError e;
    e.message = sub.message;
    if (sub.status == engine::SubmitStatus::QueueFull) {
      e.status = 429;
      e.type = "rate_limit_exceeded";
      e.code = "rate_limit_exceeded";
    } else if (sub.status == engine::SubmitStatus::ShuttingDown) {
      e.status = 503;
      e.type = "server_error";
      e.code = "shutting_down";
    } else {
      e.param = endpoint == Endpoint::ChatCompletions ? "messages" : "prompt";
    }
    return reply_error(res, name, e);
  }
  p->handle = sub.handle;
  const std::string id = (endpoint == Endpoint::ChatCompletions ? "chatcmpl-" : "cmpl-") +
                         std::to_string(id_salt_ % 1000000007) + "-" + std::to_string(next_id_++);
  p->builder = std::make_unique<ResponseBuilder>(cr, id, opts_.model_id, opens_reasoning, tk);
  metrics_.count_request(name, 200);
  ++in_flight_;

  const bool stream = cr.stream;
  auto provider = [this, p, stream](size_t, httplib::DataSink& sink) -> bool {
    auto write = [&](const std::string& s) {
      if (!sink.write(s.data(), s.size())) return false;
      p->last_write = Clock::now();
      return true;
    };
    if (!p->started) {
      p->started = true;
      if (stream) {
        if (auto first = p->builder->first_chunk(); first && !write("data: " + dump(*first) + "\n\n")) return false;
      }
    }
    std::vector<engine::Event> events;
    if (!p->handle->wait(events, kPollInterval)) {
      // Nothing new: probe the connection now and then. An SSE comment line
      // and JSON's leading whitespace are both ignored by clients.
      if (Clock::now() - p->last_write >= kKeepAlive && !write(stream ? ": keep-alive\n\n" : " ")) {
        p->handle->cancel();
        return false;
      }
      return true;
    }
    std::vector<json> chunks;
    for (const engine::Event& e : events) {
      if (e.token >= 0) {
        if (!p->last_token) {
          metrics_.observe_ttft(std::chrono::duration<double>(e.time - p->handle->submitted()).count());
        } else {
          metrics_.observe_itl(std::chrono::duration<double>(e.time - *p->last_token).count());
        }
        p->last_token = e.time;
      }
      p->builder->on_event(e, stream ? &chunks : nullptr);
      if (e.final) p->done = true;
    }
    for (const json& c : chunks) {
      if (!write("data: " + dump(c) + "\n\n")) {
        p->handle->cancel();
        return false;
      }
    }
    if (p->done) {
      metrics_.add_tokens(p->builder->prompt_tokens(), p->builder->completion_tokens());
      bool ok = true;
      if (stream) {
        ok = write("data: [DONE]\n\n");
      } else {
        const auto& failure = p->builder->failure();
        ok = write(dump(failure ? error_body(*failure) : p->builder->response()));
      }
      if (!ok) return false;
      sink.done();
    }
    return true;
  };
  auto release = [this, p](bool) {
    if (!p->done) p->handle->cancel();
    --in_flight_;
  };
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(stream ? "text/event-stream" : kJsonType, provider, release);
}

Expected<int> Server::bind() {
  int port = opts_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(opts_.host);
    if (port < 0) return make_error("cannot listen on ", opts_.host, " (any port)");
  } else if (!http_->bind_to_port(opts_.host, port)) {
    return make_error("cannot listen on ", opts_.host, ":", port, " (in use, or not an address of this machine)");
  }
  return port;
}

void Server::listen() {
  listening_ = true;
  http_->listen_after_bind();
}

void Server::attach(const Engine& engine) {
  std::lock_guard lock(engine_mu_);
  engine_ = engine;
}

void Server::stop(int drain_ms) {
  stopping_ = true;
  const auto deadline = engine::Clock::now() + std::chrono::milliseconds(drain_ms);
  while (in_flight_.load() > 0 && engine::Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  // cpp-httplib's stop() does nothing before its loop runs, and that loop
  // would then never end: a stop right after starting listen() on another
  // thread waits (briefly) for the loop to run.
  for (int i = 0; !(listening_ && http_->is_running()) && i < 2000; ++i) std::this_thread::sleep_for(1ms);
  http_->stop();
}

}  // namespace dhi::server
