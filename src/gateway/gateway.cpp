// Gateway: the HTTP front, the per-request decision, and the response writer.
#include "gateway/gateway.h"

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "gateway/forward.h"
#include "policy/policy.h"
#include "server/http_front.h"

namespace dhi::gateway {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kPollInterval = 250ms;
constexpr auto kKeepAlive = 1s;
// A rough prompt size for the context check: about four bytes per token.
constexpr int64_t kBytesPerToken = 4;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

server::ApiError api_error(int status, std::string code, std::string message, std::string type = "") {
  server::ApiError e;
  e.status = status;
  e.code = std::move(code);
  e.message = std::move(message);
  e.type = type.empty() ? (status >= 500 ? "server_error" : "invalid_request_error") : std::move(type);
  return e;
}

// One request in flight: the worker thread's results and the response state.
struct Flight {
  Exchange exchange;
  ForwardTotals totals;
  std::thread worker;
  server::CompletionRequest request;
  std::string completion_id, model;
  int64_t created = 0;
  bool chat = true;
  bool first_sent = false;
  Clock::time_point last_write = Clock::now();

  ~Flight() {
    exchange.cancel();
    join();
  }
  void join() {
    if (worker.joinable()) worker.join();
  }

  json chunk_base() const {
    json j = {{"id", completion_id},
              {"object", chat ? "chat.completion.chunk" : "text_completion"},
              {"created", created},
              {"model", model},
              {"system_fingerprint", "dhi-gateway"}};
    if (request.include_usage) j["usage"] = nullptr;
    return j;
  }
  json usage() const {
    return {{"prompt_tokens", totals.prompt_tokens},
            {"completion_tokens", totals.completion_tokens},
            {"total_tokens", totals.prompt_tokens + totals.completion_tokens}};
  }
  json piece_chunk(const Piece& p) const {
    json j = chunk_base();
    json choice = {{"index", 0}, {"logprobs", p.logprobs}, {"finish_reason", nullptr}};
    if (chat) {
      json delta = json::object();
      if (!p.reasoning.empty()) delta["reasoning_content"] = p.reasoning;
      if (!p.content.empty()) delta["content"] = p.content;
      choice["delta"] = delta;
    } else {
      choice["text"] = p.content;
    }
    j["choices"] = json::array({choice});
    return j;
  }
  json final_chunk() const {
    json j = chunk_base();
    json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", totals.finish_reason}};
    if (chat) choice["delta"] = json::object();
    else choice["text"] = "";
    j["choices"] = json::array({choice});
    return j;
  }
  json response() const {
    json choice = {{"index", 0}, {"logprobs", totals.logprobs}, {"finish_reason", totals.finish_reason}};
    if (chat) {
      json message = {{"role", "assistant"}, {"content", totals.content}};
      if (!totals.reasoning.empty()) message["reasoning_content"] = totals.reasoning;
      choice["message"] = message;
    } else {
      choice["text"] = totals.content;
    }
    return {{"id", completion_id},
            {"object", chat ? "chat.completion" : "text_completion"},
            {"created", created},
            {"model", model},
            {"system_fingerprint", "dhi-gateway"},
            {"choices", json::array({choice})},
            {"usage", usage()}};
  }
};

int64_t requested_max_tokens(const json& body) {
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    auto it = body.find(key);
    if (it != body.end() && it->is_number_integer()) return it->get<int64_t>();
  }
  return 0;
}

}  // namespace

Gateway::Gateway(GatewayConfig config) : config_(std::move(config)), http_(std::make_unique<httplib::Server>()) {
  id_salt_ = std::random_device{}();
}

Gateway::~Gateway() { stop(); }

Expected<std::unique_ptr<Gateway>> Gateway::create(GatewayConfig config) {
  std::unique_ptr<Gateway> g(new Gateway(std::move(config)));
  DHI_ASSIGN_OR_RETURN(g->detectors_, policy::make_detectors(g->config_.privacy));
  if (!g->config_.audit_log.empty()) {
    DHI_ASSIGN_OR_RETURN(g->audit_, policy::AuditLog::open(g->config_.audit_log, g->config_.audit_include_text));
  }
  for (const BackendConfig& b : g->config_.backends) {
    if (b.kind == BackendKind::Local)
      return make_error("backend ", b.name, ": a local backend's engine must be started first (dhi gateway does)");
    if (!b.enabled) std::fprintf(stderr, "dhi gateway: backend %s is disabled: %s\n", b.name.c_str(),
                                 b.disabled_reason.c_str());
  }
  g->backends_ = std::make_unique<Backends>(g->config_);
  g->routes();
  return g;
}

void Gateway::audit(const json& record) {
  if (!audit_) return;
  if (auto s = audit_->write(record); !s) std::fprintf(stderr, "dhi gateway: audit log: %s\n", s.error().message.c_str());
}

void Gateway::reply_error(httplib::Response& res, const char* endpoint, const server::ApiError& e) {
  server::write_error(res, e);
  metrics_.count_request(endpoint, e.status);
}

const KeyConfig* Gateway::client_key(const httplib::Request& req) const {
  const std::string token = server::bearer_token(req);
  const KeyConfig* found = nullptr;
  // Every key is compared (no early exit), each in constant time.
  for (const KeyConfig& k : config_.keys) {
    if (server::constant_time_equal(token, k.key) && !found) found = &k;
  }
  return found;
}

void Gateway::routes() {
  httplib::Server& h = *http_;
  server::FrontOptions front;
  front.max_body_bytes = config_.max_body_bytes;
  server::install_front(
      h, front, [this](const httplib::Request& req) { return config_.keys.empty() || client_key(req) != nullptr; },
      [this](httplib::Response& res, const char* endpoint, const server::ApiError& e) {
        reply_error(res, endpoint, e);
      });

  h.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    json backends = json::array();
    for (size_t i = 0; i < config_.backends.size(); ++i) {
      const BackendConfig& b = config_.backends[i];
      const BackendView v = backends_->view(i);
      const char* circuit = v.circuit == Circuit::Closed ? "closed" : v.circuit == Circuit::Open ? "open" : "half_open";
      backends.push_back({{"name", b.name},
                          {"tier", policy::tier_name(b.tier)},
                          {"enabled", b.enabled},
                          {"healthy", v.healthy},
                          {"circuit", circuit}});
    }
    res.set_content(json{{"status", "ok"}, {"backends", backends}}.dump(), "application/json");
  });
  h.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::string out = metrics_.render(nullptr);
    backends_->render_metrics(out);
    res.set_content(out, "text/plain; version=0.0.4");
  });
  h.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    auto add = [&](const std::string& id) {
      for (const json& m : data)
        if (m["id"] == id) return;
      data.push_back({{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "dhi-gateway"}});
    };
    for (const auto& [alias, targets] : config_.aliases) add(alias);
    for (const BackendConfig& b : config_.backends)
      for (const std::string& m : b.models) add(m);
    res.set_content(server::dump(json{{"object", "list"}, {"data", data}}), "application/json");
    metrics_.count_request("models", 200);
  });
  h.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_completion(server::Endpoint::ChatCompletions, req, res);
  });
  h.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    handle_completion(server::Endpoint::Completions, req, res);
  });
}

void Gateway::handle_completion(server::Endpoint endpoint, const httplib::Request& req, httplib::Response& res) {
  const char* name = endpoint == server::Endpoint::ChatCompletions ? "chat_completions" : "completions";
  const Clock::time_point start = Clock::now();
  auto flight = std::make_shared<Flight>();
  // The same validation as `dhi serve`: a request the gateway accepts is one
  // an OpenAI-compatible upstream can take; the body itself is forwarded.
  if (auto e = server::parse_request(endpoint, req.body, 0, flight->request)) return reply_error(res, name, *e);
  const json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (flight->request.model.empty())
    return reply_error(res, name, api_error(400, "", "'model' is required (an alias or a backend's model)"));

  const KeyConfig* key = client_key(req);
  std::optional<policy::Tier> header_level;
  if (req.has_header("X-DHI-Privacy")) {
    auto l = policy::parse_privacy_header(req.get_header_value("X-DHI-Privacy"));
    if (!l) return reply_error(res, name, api_error(400, "invalid_privacy_level", l.error().message));
    header_level = *l;
  }
  std::optional<policy::Tier> key_level;
  if (key && key->privacy_set) key_level = key->privacy;
  const std::string text = policy::request_text(body);
  const policy::PrivacyDecision decision =
      policy::decide(config_.privacy, detectors_, header_level, key_level, text);

  RouteRequest rr;
  rr.model = flight->request.model;
  rr.level = decision.level;
  rr.prompt_tokens_estimate = int64_t(text.size()) / kBytesPerToken;
  rr.max_tokens = requested_max_tokens(body);
  const std::string key_id = key ? key->id : "";
  if (key) {
    rr.key_spent = budgets_.spent(key_id);
    rr.key_budget = key->daily_budget;
  }
  const RoutePlan plan = plan_route(config_, *backends_, rr);

  const std::string id = "gw-" + std::to_string(id_salt_ % 1000000007) + "-" + std::to_string(next_id_++);
  policy::RequestRecord request_record;
  request_record.id = id;
  request_record.time = std::chrono::system_clock::now();
  request_record.key_id = key_id;
  request_record.model = flight->request.model;
  request_record.decision = decision;
  for (const Candidate& c : plan.candidates) {
    const BackendConfig& b = config_.backends[c.backend];
    request_record.candidates.push_back(
        {b.name, b.tier, c.model, decision.blocked ? "request blocked by the privacy policy" : c.skipped});
  }
  if (config_.audit_include_text) request_record.prompt = text;
  audit(request_record.to_json());

  auto refuse = [&](const server::ApiError& e, const char* outcome) {
    policy::ResultRecord result;
    result.request_id = id;
    result.time = std::chrono::system_clock::now();
    result.outcome = outcome;
    result.latency_ms = ms_since(start);
    result.status = e.status;
    audit(result.to_json());
    reply_error(res, name, e);
  };
  if (decision.blocked)
    return refuse(api_error(403, "privacy_blocked", "blocked by the privacy policy: " + decision.reason), "blocked");
  if (!plan.model_known)
    return refuse(api_error(404, "model_not_found",
                            "the model '" + flight->request.model + "' is neither an alias nor a backend's model"),
                  "unknown_model");
  if (plan.order.empty()) {
    std::string why;
    for (const Candidate& c : plan.candidates) why += config_.backends[c.backend].name + ": " + c.skipped + "; ";
    if (why.size() >= 2) why.resize(why.size() - 2);
    return refuse(api_error(503, "no_allowed_backend",
                            std::string("no backend may serve this request at privacy level ") +
                                policy::level_name(decision.level) + " (" + why + ")"),
                  "no_backend");
  }

  ForwardJob job;
  job.endpoint = endpoint;
  job.body = body;
  job.request_id = id;
  for (size_t i : plan.order) job.route.push_back(plan.candidates[i]);
  job.redact_external = decision.redact_external;
  job.detectors = &detectors_;
  job.max_tokens = rr.max_tokens;

  flight->chat = endpoint == server::Endpoint::ChatCompletions;
  flight->completion_id = (flight->chat ? "chatcmpl-" : "cmpl-") + id;
  flight->model = flight->request.model;
  flight->created =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  Flight* f = flight.get();
  const bool stream = flight->request.stream;
  f->worker = std::thread([this, f, job = std::move(job), start, id, key_id, stream] {
    forward(job, *backends_, audit_.get(), f->exchange, f->totals);
    const auto& err = f->exchange.error();
    const bool ok = !err.has_value();
    policy::ResultRecord result;
    result.request_id = id;
    result.time = std::chrono::system_clock::now();
    result.outcome = ok ? "ok" : err->code;
    result.backend = f->totals.backend;
    result.failovers = f->totals.failovers;
    result.prompt_tokens = f->totals.prompt_tokens;
    result.completion_tokens = f->totals.completion_tokens;
    result.latency_ms = ms_since(start);
    // What the client got: a stream that has started stays HTTP 200 and ends
    // with an error event.
    result.status = ok || (stream && !f->exchange.failed_before_start()) ? 200 : err->status;
    if (config_.audit_include_text) result.completion = f->totals.reasoning + f->totals.content;
    audit(result.to_json());
    if (!key_id.empty() && f->totals.cost > 0) budgets_.add(key_id, f->totals.cost);
    metrics_.add_tokens(f->totals.prompt_tokens, f->totals.completion_tokens);
  });

  if (!flight->request.stream) {
    std::vector<Piece> ignored;  // the totals hold the whole text
    while (!flight->exchange.wait(ignored, kPollInterval)) ignored.clear();
    flight->join();
    if (const auto& e = flight->exchange.error()) return reply_error(res, name, *e);
    metrics_.count_request(name, 200);
    res.set_content(server::dump(flight->response()), "application/json");
    return;
  }

  // Streams start once there is text, so a request no backend can answer
  // still gets an HTTP error status.
  flight->exchange.wait_started();
  if (flight->exchange.failed_before_start()) {
    flight->join();
    return reply_error(res, name, *flight->exchange.error());
  }
  metrics_.count_request(name, 200);
  auto provider = [flight](size_t, httplib::DataSink& sink) -> bool {
    auto write = [&](const json& j) {
      const std::string s = "data: " + server::dump(j) + "\n\n";
      if (!sink.write(s.data(), s.size())) return false;
      flight->last_write = Clock::now();
      return true;
    };
    if (!flight->first_sent) {
      flight->first_sent = true;
      if (flight->chat) {
        json j = flight->chunk_base();
        j["choices"] = json::array(
            {{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr},
              {"finish_reason", nullptr}}});
        if (!write(j)) return false;
      }
    }
    std::vector<Piece> pieces;
    const bool finished = flight->exchange.wait(pieces, kPollInterval);
    for (const Piece& p : pieces) {
      if (!write(flight->piece_chunk(p))) {
        flight->exchange.cancel();
        return false;
      }
    }
    if (!finished) {
      if (pieces.empty() && Clock::now() - flight->last_write >= kKeepAlive) {
        constexpr std::string_view kComment = ": keep-alive\n\n";
        if (!sink.write(kComment.data(), kComment.size())) {
          flight->exchange.cancel();
          return false;
        }
        flight->last_write = Clock::now();
      }
      return true;
    }
    if (const auto& e = flight->exchange.error()) {
      // Never a silent truncation: the stream ends with an error event.
      if (!write(server::error_body(*e))) return false;
    } else {
      if (!write(flight->final_chunk())) return false;
      if (flight->request.include_usage) {
        json u = flight->chunk_base();
        u["choices"] = json::array();
        u["usage"] = flight->usage();
        if (!write(u)) return false;
      }
    }
    constexpr std::string_view kDone = "data: [DONE]\n\n";
    if (!sink.write(kDone.data(), kDone.size())) return false;
    sink.done();
    return true;
  };
  auto release = [flight](bool) {
    flight->exchange.cancel();
    flight->join();
  };
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream", provider, release);
}

Expected<int> Gateway::bind() {
  int port = config_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(config_.host);
    if (port < 0) return make_error("cannot listen on ", config_.host, " (any port)");
  } else if (!http_->bind_to_port(config_.host, port)) {
    return make_error("cannot listen on ", config_.host, ":", port, " (in use, or not an address of this machine)");
  }
  return port;
}

void Gateway::listen() {
  listening_ = true;
  backends_->check_all();
  backends_->start_checks();
  http_->listen_after_bind();
}

void Gateway::stop() {
  if (!listening_) return;
  // As Server::stop: cpp-httplib's stop() is lost before its loop runs.
  for (int i = 0; !http_->is_running() && i < 2000; ++i) std::this_thread::sleep_for(1ms);
  http_->stop();
}

}  // namespace dhi::gateway
