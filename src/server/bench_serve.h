// Load generator for `dhi bench-serve`: drives a running server over HTTP the
// way clients do (streaming /v1/completions, one connection per client) at
// several concurrency levels, and reports aggregate generated tokens per
// second and time-to-first-token percentiles for each.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/expected.h"

namespace dhi::server {

struct ServeBenchParams {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string api_key;
  std::vector<int> concurrency = {1, 4, 8};
  int requests_per_client = 2;
  int max_tokens = 64;
  int prompt_tokens = 32;
  int32_t n_vocab = 0;  // prompts are random ids below this (distinct, so no prompt-cache hits)
  uint64_t seed = 1;
};

struct ServeBenchLevel {
  int concurrency = 0;
  int requests = 0;
  int64_t generated_tokens = 0;
  double wall_s = 0;
  double tokens_per_s = 0;  // all generated tokens / wall time
  double ttft_p50_ms = 0, ttft_p99_ms = 0;
  int failed = 0;  // requests without a complete stream
};

using ServeBenchProgress = std::function<void(const ServeBenchLevel&)>;

Expected<std::vector<ServeBenchLevel>> run_serve_bench(const ServeBenchParams& params,
                                                       const ServeBenchProgress& progress = {});

}  // namespace dhi::server
