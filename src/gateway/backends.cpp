// Backend health checks, circuit breakers and per-backend metrics.
#include "gateway/backends.h"

#include <cstdio>
#include <sstream>

#include "hub/http.h"

namespace dhi::gateway {
namespace {

constexpr double kEwma = 0.2;  // weight of the newest observation

// The value of an unlabelled Prometheus sample `name`, or -1.
double metric_value(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 && line[name.size()] == ' ')
      return std::atof(line.c_str() + name.size() + 1);
  }
  return -1;
}

std::string label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

Backends::Backends(const GatewayConfig& config) : config_(config), states_(config.backends.size()) {}

Backends::~Backends() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (checker_.joinable()) checker_.join();
}

void Backends::check(size_t i) {
  const BackendConfig& b = config_.backends[i];
  if (!b.enabled) return;
  hub::HttpRequest req;
  req.follow_redirects = false;
  req.connect_timeout_ms = std::min<int64_t>(b.timeouts.connect_ms, 5000);
  req.idle_timeout_ms = 3000;
  if (!b.api_key.empty()) req.headers.push_back("Authorization: Bearer " + b.api_key);
  bool healthy = false;
  std::string error;
  double queue = -1, slots = -1, capacity = -1;
  req.url = b.kind == BackendKind::Node ? b.url + "/health" : b.url + "/models";
  auto res = hub::http_get_text(req, 1 << 20);
  if (!res) {
    error = res.error().message;
  } else if (res->status != 200) {
    error = req.url + ": HTTP " + std::to_string(res->status);
  } else {
    healthy = true;
  }
  if (healthy && b.kind == BackendKind::Node) {
    req.url = b.url + "/metrics";
    if (auto m = hub::http_get_text(req, 1 << 20); m && m->status == 200) {
      queue = metric_value(m->body, "dhi_queue_depth");
      slots = metric_value(m->body, "dhi_slots");
      capacity = metric_value(m->body, "dhi_kv_cache_capacity_tokens");
    }
  }
  std::lock_guard lock(mu_);
  State& s = states_[i];
  if (s.v.healthy != healthy)
    std::fprintf(stderr, "dhi gateway: backend %s is %s%s%s\n", b.name.c_str(), healthy ? "healthy" : "unhealthy",
                 healthy ? "" : ": ", error.c_str());
  s.v.healthy = healthy;
  s.v.health_error = error;
  if (queue >= 0) s.v.queue_depth = queue;
  if (slots > 0 && capacity > 0) s.v.context = int64_t(capacity / slots);
}

void Backends::check_all() {
  for (size_t i = 0; i < states_.size(); ++i) check(i);
}

void Backends::start_checks() {
  checker_ = std::thread([this] {
    std::unique_lock lock(stop_mu_);
    while (!stop_) {
      stop_cv_.wait_for(lock, std::chrono::milliseconds(config_.health_interval_ms), [this] { return stop_; });
      if (stop_) break;
      lock.unlock();
      check_all();
      lock.lock();
    }
  });
}

void Backends::refresh_circuit(State& s) const {
  if (s.v.circuit == Circuit::Open && Clock::now() >= s.open_until) {
    s.v.circuit = Circuit::HalfOpen;
    s.v.probe_taken = false;
  }
}

BackendView Backends::view(size_t i) const {
  std::lock_guard lock(mu_);
  refresh_circuit(states_[i]);
  return states_[i].v;
}

bool Backends::claim_probe(size_t i) {
  std::lock_guard lock(mu_);
  State& s = states_[i];
  refresh_circuit(s);
  if (s.v.circuit == Circuit::Closed) return true;
  if (s.v.circuit == Circuit::Open || s.v.probe_taken) return false;
  s.v.probe_taken = true;
  return true;
}

void Backends::record_attempt(size_t i, bool ok, bool backend_fault, double first_token_ms, double latency_ms,
                              int64_t prompt_tokens, int64_t completion_tokens) {
  std::lock_guard lock(mu_);
  State& s = states_[i];
  ++s.requests;
  if (prompt_tokens > 0) s.prompt_tokens += uint64_t(prompt_tokens);
  if (completion_tokens > 0) s.completion_tokens += uint64_t(completion_tokens);
  if (first_token_ms >= 0) {
    s.ttft.observe(first_token_ms / 1000.0);
    s.v.ttft_ewma_ms = s.v.ttft_ewma_ms == 0 ? first_token_ms : (1 - kEwma) * s.v.ttft_ewma_ms + kEwma * first_token_ms;
  }
  s.latency.observe(latency_ms / 1000.0);
  const bool failed = !ok && backend_fault;
  if (!ok) ++s.failures;
  s.v.failure_ewma = (1 - kEwma) * s.v.failure_ewma + (failed ? kEwma : 0.0);
  if (!failed) {
    s.consecutive_failures = 0;
    if (s.v.circuit != Circuit::Closed && ok) s.v.circuit = Circuit::Closed;
    if (s.v.circuit == Circuit::HalfOpen) s.v.probe_taken = false;
    return;
  }
  ++s.consecutive_failures;
  if (s.v.circuit == Circuit::HalfOpen || s.consecutive_failures >= config_.circuit_failures) {
    if (s.v.circuit != Circuit::Open)
      std::fprintf(stderr, "dhi gateway: circuit of backend %s opened for %lld ms after %d failures\n",
                   config_.backends[i].name.c_str(), static_cast<long long>(config_.circuit_cooldown_ms),
                   s.consecutive_failures);
    s.v.circuit = Circuit::Open;
    s.open_until = Clock::now() + std::chrono::milliseconds(config_.circuit_cooldown_ms);
  }
}

void Backends::record_failover(size_t i) {
  std::lock_guard lock(mu_);
  ++states_[i].failovers;
}

void Backends::render_metrics(std::string& out) const {
  std::lock_guard lock(mu_);
  auto family = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto each = [&](const char* name, auto value) {
    for (size_t i = 0; i < states_.size(); ++i)
      out += std::string(name) + "{backend=\"" + label(config_.backends[i].name) + "\"} " + value(states_[i]) + "\n";
  };
  family("dhi_gateway_backend_requests_total", "counter", "Attempts sent to each backend.");
  each("dhi_gateway_backend_requests_total", [](const State& s) { return std::to_string(s.requests); });
  family("dhi_gateway_backend_failures_total", "counter", "Attempts that did not complete.");
  each("dhi_gateway_backend_failures_total", [](const State& s) { return std::to_string(s.failures); });
  family("dhi_gateway_backend_failovers_total", "counter", "Requests moved from this backend to another.");
  each("dhi_gateway_backend_failovers_total", [](const State& s) { return std::to_string(s.failovers); });
  family("dhi_gateway_backend_prompt_tokens_total", "counter", "Prompt tokens the backend reported.");
  each("dhi_gateway_backend_prompt_tokens_total", [](const State& s) { return std::to_string(s.prompt_tokens); });
  family("dhi_gateway_backend_completion_tokens_total", "counter", "Completion tokens the backend produced.");
  each("dhi_gateway_backend_completion_tokens_total",
       [](const State& s) { return std::to_string(s.completion_tokens); });
  family("dhi_gateway_backend_healthy", "gauge", "1 when the last health check passed.");
  each("dhi_gateway_backend_healthy", [](const State& s) { return std::string(s.v.healthy ? "1" : "0"); });
  family("dhi_gateway_backend_circuit_open", "gauge", "1 while the circuit breaker keeps requests away.");
  each("dhi_gateway_backend_circuit_open",
       [](const State& s) { return std::string(s.v.circuit == Circuit::Open ? "1" : "0"); });
  family("dhi_gateway_backend_time_to_first_token_seconds", "histogram", "Per attempt, request to first text.");
  for (size_t i = 0; i < states_.size(); ++i)
    states_[i].ttft.write(out, "dhi_gateway_backend_time_to_first_token_seconds",
                          "backend=\"" + label(config_.backends[i].name) + "\"");
  family("dhi_gateway_backend_latency_seconds", "histogram", "Per attempt, request to its end.");
  for (size_t i = 0; i < states_.size(); ++i)
    states_[i].latency.write(out, "dhi_gateway_backend_latency_seconds",
                             "backend=\"" + label(config_.backends[i].name) + "\"");
}

}  // namespace dhi::gateway
