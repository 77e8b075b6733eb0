// Metrics: counters and histograms under one mutex, rendered on demand.
#include "server/metrics.h"

#include <cstdio>

namespace dhi::server {
namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string lead = labels.empty() ? "" : labels + ",";
  const std::string own = labels.empty() ? "" : "{" + labels + "}";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{" + lead + "le=\"" + number(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{" + lead + "le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum" + own + " " + number(sum_) + "\n";
  out += name + "_count" + own + " " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}) {}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard lock(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::add_tokens(int64_t prompt, int64_t generated) {
  std::lock_guard lock(mu_);
  prompt_tokens_ += uint64_t(prompt);
  generated_tokens_ += uint64_t(generated);
}

void Metrics::observe_ttft(double seconds) {
  std::lock_guard lock(mu_);
  ttft_.observe(seconds);
}

void Metrics::observe_itl(double seconds) {
  std::lock_guard lock(mu_);
  itl_.observe(seconds);
}

std::string Metrics::render(const engine::SchedulerStats* stats) const {
  std::string out;
  std::lock_guard lock(mu_);
  out += "# HELP dhi_requests_total HTTP requests by endpoint and status code.\n";
  out += "# TYPE dhi_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out += "dhi_requests_total{endpoint=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(n) + "\n";
  }
  out += "# HELP dhi_prompt_tokens_total Prompt tokens of completed requests.\n";
  out += "# TYPE dhi_prompt_tokens_total counter\n";
  out += "dhi_prompt_tokens_total " + std::to_string(prompt_tokens_) + "\n";
  out += "# HELP dhi_generated_tokens_total Generated tokens of completed requests.\n";
  out += "# TYPE dhi_generated_tokens_total counter\n";
  out += "dhi_generated_tokens_total " + std::to_string(generated_tokens_) + "\n";
  out += "# HELP dhi_time_to_first_token_seconds From request arrival to its first token.\n";
  out += "# TYPE dhi_time_to_first_token_seconds histogram\n";
  ttft_.write(out, "dhi_time_to_first_token_seconds");
  out += "# HELP dhi_inter_token_latency_seconds Between consecutive tokens of a request.\n";
  out += "# TYPE dhi_inter_token_latency_seconds histogram\n";
  itl_.write(out, "dhi_inter_token_latency_seconds");
  if (stats) {
    auto gauge = [&](const char* name, const char* help, double v) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " " +
             number(v) + "\n";
    };
    gauge("dhi_queue_depth", "Requests waiting for a slot.", stats->queued);
    gauge("dhi_active_sequences", "Requests holding a slot.", stats->active);
    gauge("dhi_slots", "KV cache slots (--parallel).", stats->slots);
    gauge("dhi_kv_cache_used_tokens", "Positions cached over all slots (finished slots keep theirs for reuse).",
          double(stats->kv_used));
    gauge("dhi_kv_cache_capacity_tokens", "Positions the KV cache holds over all slots.", double(stats->kv_capacity));
    gauge("dhi_kv_cache_usage_ratio", "Used over capacity.",
          stats->kv_capacity > 0 ? double(stats->kv_used) / double(stats->kv_capacity) : 0.0);
    out += "# HELP dhi_prompt_tokens_reused_total Prompt tokens taken from the prompt cache.\n";
    out += "# TYPE dhi_prompt_tokens_reused_total counter\n";
    out += "dhi_prompt_tokens_reused_total " + std::to_string(stats->prompt_reused) + "\n";
    out += "# HELP dhi_prompt_tokens_evaluated_total Prompt tokens computed.\n";
    out += "# TYPE dhi_prompt_tokens_evaluated_total counter\n";
    out += "dhi_prompt_tokens_evaluated_total " + std::to_string(stats->prompt_evaluated) + "\n";
  }
  return out;
}

}  // namespace dhi::server
