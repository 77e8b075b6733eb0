// bench-serve load generator: client threads over cpp-httplib's client.
#include "server/bench_serve.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

namespace dhi::server {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  // Nearest rank: the smallest value with at least p of the samples at or below it.
  const size_t rank = size_t(std::ceil(p * double(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

struct RequestResult {
  bool ok = false;
  double ttft_ms = 0;
  int64_t tokens = 0;
};

// One streaming request; TTFT is the time to the first data event.
RequestResult stream_one(httplib::Client& cli, const ServeBenchParams& p, const std::vector<int32_t>& prompt) {
  json body = {{"prompt", prompt},       {"max_tokens", p.max_tokens},
               {"temperature", 0},       {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  if (!p.api_key.empty()) req.set_header("Authorization", "Bearer " + p.api_key);
  RequestResult r;
  std::string buffer;
  bool done = false;
  const auto t0 = Clock::now();
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    buffer.append(data, len);
    size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      const std::string event = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0) continue;
      const std::string payload = event.substr(6);
      if (r.ttft_ms == 0) r.ttft_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (payload == "[DONE]") {
        done = true;
        continue;
      }
      json j = json::parse(payload, nullptr, false);
      if (j.is_object() && j.contains("usage") && j["usage"].is_object())
        r.tokens = j["usage"].value("completion_tokens", int64_t(0));
    }
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  r.ok = cli.send(req, res, err) && res.status == 200 && done;
  return r;
}

}  // namespace

Expected<std::vector<ServeBenchLevel>> run_serve_bench(const ServeBenchParams& p, const ServeBenchProgress& progress) {
  if (p.n_vocab < 2) return make_error("bench-serve: the vocabulary is too small for random prompts");
  if (p.prompt_tokens < 1 || p.max_tokens < 1 || p.requests_per_client < 1)
    return make_error("bench-serve: prompt tokens, max tokens and requests must be positive");
  std::mt19937_64 rng(p.seed);
  // Ids from the lower part of the vocabulary: ordinary tokens, not specials.
  const int32_t id_hi = std::max(2, std::min(p.n_vocab, 100000) - 1);
  auto random_prompt = [&] {
    std::vector<int32_t> ids(size_t(p.prompt_tokens));
    for (auto& id : ids) id = 1 + int32_t(rng() % uint64_t(id_hi));
    return ids;
  };
  {
    // Warm-up: page in the weights and start the threads.
    httplib::Client cli(p.host, p.port);
    cli.set_read_timeout(600);
    if (!stream_one(cli, p, random_prompt()).ok)
      return make_error("bench-serve: the warm-up request to ", p.host, ":", p.port, " failed");
  }
  std::vector<ServeBenchLevel> levels;
  for (int c : p.concurrency) {
    if (c < 1) return make_error("bench-serve: concurrency must be positive, got ", c);
    std::vector<std::vector<std::vector<int32_t>>> prompts{size_t(c)};
    for (auto& client : prompts)
      for (int i = 0; i < p.requests_per_client; ++i) client.push_back(random_prompt());
    std::mutex mu;
    std::vector<double> ttfts;
    ServeBenchLevel level;
    level.concurrency = c;
    const auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < c; ++t) {
      threads.emplace_back([&, t] {
        httplib::Client cli(p.host, p.port);
        cli.set_read_timeout(600);
        for (const auto& prompt : prompts[size_t(t)]) {
          RequestResult r = stream_one(cli, p, prompt);
          std::lock_guard lock(mu);
          ++level.requests;
          if (!r.ok) {
            ++level.failed;
            continue;
          }
          level.generated_tokens += r.tokens;
          ttfts.push_back(r.ttft_ms);
        }
      });
    }
    for (auto& th : threads) th.join();
    level.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
    level.tokens_per_s = level.wall_s > 0 ? double(level.generated_tokens) / level.wall_s : 0;
    level.ttft_p50_ms = percentile(ttfts, 0.50);
    level.ttft_p99_ms = percentile(ttfts, 0.99);
    if (progress) progress(level);
    levels.push_back(level);
  }
  return levels;
}

}  // namespace dhi::server
