// The live state of each backend: health from background checks (a node's
// GET /health and its /metrics queue depth and per-slot context; a hosted
// API's GET /models), a circuit breaker (consecutive failures open it for a
// cool-down, then one half-open probe request decides), observed latency,
// and per-backend metrics for the gateway's /metrics.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gateway/config.h"
#include "server/metrics.h"

namespace dhi::gateway {

using Clock = std::chrono::steady_clock;

enum class Circuit { Closed, Open, HalfOpen };

// A copy of one backend's state for routing decisions.
struct BackendView {
  bool healthy = true;
  std::string health_error;
  Circuit circuit = Circuit::Closed;
  bool probe_taken = false;  // half-open: the one probe is in flight
  double queue_depth = 0;
  int64_t context = 0;        // tokens per request the backend holds; 0: unknown
  double ttft_ewma_ms = 0;    // observed time to first token (0: none yet)
  double failure_ewma = 0;    // 0..1, recent failure rate
};

class Backends {
 public:
  explicit Backends(const GatewayConfig& config);
  ~Backends();

  // One round of health checks now (before the gateway listens), then every
  // health_interval on a background thread until destroyed.
  void check_all();
  void start_checks();

  BackendView view(size_t i) const;
  // Half-open circuits admit one request: the router claims it here.
  bool claim_probe(size_t i);
  // After each attempt: feeds the circuit breaker and the metrics.
  void record_attempt(size_t i, bool ok, bool backend_fault, double first_token_ms, double latency_ms,
                      int64_t prompt_tokens, int64_t completion_tokens);
  void record_failover(size_t i);
  // Appends the per-backend metric families.
  void render_metrics(std::string& out) const;

  const GatewayConfig& config() const { return config_; }

 private:
  struct State {
    BackendView v;
    int consecutive_failures = 0;
    Clock::time_point open_until{};
    uint64_t requests = 0, failures = 0, failovers = 0, prompt_tokens = 0, completion_tokens = 0;
    server::Histogram ttft{{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}};
    server::Histogram latency{{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}};
  };
  void check(size_t i);
  void refresh_circuit(State& s) const;

  const GatewayConfig& config_;
  mutable std::mutex mu_;
  mutable std::vector<State> states_;  // refresh_circuit moves Open to HalfOpen on read
  std::thread checker_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
};

}  // namespace dhi::gateway
