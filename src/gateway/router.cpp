// Candidate filtering and scoring (see router.h).
#include "gateway/router.h"

#include <algorithm>
#include <chrono>

namespace dhi::gateway {
namespace {

// A request without max_tokens is costed as if it produced this many.
constexpr int64_t kDefaultCompletionEstimate = 512;
// Added to the score of a backend slower than the latency target: larger than
// any score of a backend that meets it, so the target orders before weights do.
constexpr double kMissedLatencyTarget = 1e9;

int64_t utc_day() {
  return std::chrono::duration_cast<std::chrono::hours>(std::chrono::system_clock::now().time_since_epoch()).count() /
         24;
}

}  // namespace

double estimate_cost(const BackendConfig& b, int64_t prompt_tokens, int64_t completion_tokens) {
  return double(prompt_tokens) / 1000.0 * b.cost_per_1k_prompt +
         double(completion_tokens) / 1000.0 * b.cost_per_1k_completion;
}

RoutePlan plan_route(const GatewayConfig& config, const Backends& backends, const RouteRequest& r) {
  RoutePlan plan;
  if (auto it = config.aliases.find(r.model); it != config.aliases.end()) {
    for (const Target& t : it->second) plan.candidates.push_back({t.backend, t.model, "", 0});
  } else {
    for (size_t i = 0; i < config.backends.size(); ++i) {
      const auto& models = config.backends[i].models;
      if (std::find(models.begin(), models.end(), r.model) != models.end())
        plan.candidates.push_back({i, r.model, "", 0});
    }
  }
  plan.model_known = !plan.candidates.empty();
  const RoutingWeights& w = config.weights;
  const int64_t completion = r.max_tokens > 0 ? r.max_tokens : kDefaultCompletionEstimate;
  for (size_t c = 0; c < plan.candidates.size(); ++c) {
    Candidate& cand = plan.candidates[c];
    const BackendConfig& b = config.backends[cand.backend];
    const BackendView v = backends.view(cand.backend);
    const int64_t context = b.max_context > 0 ? b.max_context : v.context;
    const double cost = estimate_cost(b, r.prompt_tokens_estimate, completion);
    if (!policy::tier_allowed(b.tier, r.level)) {
      cand.skipped = "tier " + std::string(policy::tier_name(b.tier)) + " is above the request's level " +
                     std::string(policy::tier_name(r.level));
    } else if (!b.enabled) {
      cand.skipped = "disabled: " + b.disabled_reason;
    } else if (!v.healthy) {
      cand.skipped = "unhealthy: " + v.health_error;
    } else if (v.circuit == Circuit::Open || (v.circuit == Circuit::HalfOpen && v.probe_taken)) {
      cand.skipped = "circuit open";
    } else if (context > 0 && r.prompt_tokens_estimate + (r.max_tokens > 0 ? r.max_tokens : 1) > context) {
      cand.skipped = "context: about " + std::to_string(r.prompt_tokens_estimate) + " prompt tokens" +
                     (r.max_tokens > 0 ? " + " + std::to_string(r.max_tokens) + " max_tokens" : "") +
                     " exceed its " + std::to_string(context);
    } else if (r.key_budget > 0 && cost > 0 && r.key_spent + cost > r.key_budget) {
      cand.skipped = "daily budget of the key spent";
    }
    if (!cand.skipped.empty()) continue;
    cand.score = (double(c) + w.health * v.failure_ewma * 10.0 + w.load * v.queue_depth +
                  w.latency * v.ttft_ewma_ms / 1000.0 + w.cost * cost) /
                 b.weight;
    if (w.latency_target > 0 && v.ttft_ewma_ms > w.latency_target * 1000.0) cand.score += kMissedLatencyTarget;
    plan.order.push_back(c);
  }
  std::stable_sort(plan.order.begin(), plan.order.end(),
                   [&](size_t a, size_t b) { return plan.candidates[a].score < plan.candidates[b].score; });
  return plan;
}

double Budgets::spent(const std::string& key_id) {
  std::lock_guard lock(mu_);
  auto it = spent_.find(key_id);
  if (it == spent_.end() || it->second.first != utc_day()) return 0;
  return it->second.second;
}

void Budgets::add(const std::string& key_id, double cost) {
  std::lock_guard lock(mu_);
  auto& [day, spent] = spent_[key_id];
  const int64_t today = utc_day();
  if (day != today) {
    day = today;
    spent = 0;
  }
  spent += cost;
}

}  // namespace dhi::gateway
