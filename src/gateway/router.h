// Which backends may serve a request, and in which order. The candidates are
// the alias's backend/model pairs in config order (or every backend listing
// the model, for a concrete model name); each is skipped with a reason when
// its tier is above the request's privacy level, it is disabled, unhealthy,
// its circuit is open, the request does not fit its context, or the key's
// daily budget is spent and the backend costs money. The rest are ordered by a
// score: the alias position plus weighted penalties for recent failures,
// queue depth, observed latency and estimated cost, divided by the backend's
// weight (lower is better); backends slower to first token than the latency
// target come after all that meet it.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "gateway/backends.h"
#include "gateway/config.h"
#include "policy/tier.h"

namespace dhi::gateway {

struct Candidate {
  size_t backend = 0;
  std::string model;
  std::string skipped;  // empty: allowed
  double score = 0;
};

struct RouteRequest {
  std::string model;             // as the client named it
  policy::Tier level = policy::Tier::external;
  int64_t prompt_tokens_estimate = 0;
  int64_t max_tokens = 0;        // 0: not given
  double key_spent = 0;          // today's spending of the client's key
  double key_budget = 0;         // 0: unlimited
};

struct RoutePlan {
  bool model_known = false;
  std::vector<Candidate> candidates;  // config order, skipped ones included
  std::vector<size_t> order;          // allowed candidates (indices), best first
};

RoutePlan plan_route(const GatewayConfig& config, const Backends& backends, const RouteRequest& request);

// Estimated cost of a request on a backend (currency units).
double estimate_cost(const BackendConfig& b, int64_t prompt_tokens, int64_t completion_tokens);

// Spending per client key and UTC day.
class Budgets {
 public:
  double spent(const std::string& key_id);
  void add(const std::string& key_id, double cost);

 private:
  std::mutex mu_;
  std::map<std::string, std::pair<int64_t, double>> spent_;  // key -> (day, spent)
};

}  // namespace dhi::gateway
