// The attempt loop with failover and continuation (see forward.h).
#include "gateway/forward.h"

#include <chrono>

#include "policy/policy.h"

namespace dhi::gateway {
namespace {

using json = nlohmann::json;

std::string audit_outcome(Outcome o) {
  switch (o) {
    case Outcome::Completed: return "ok";
    case Outcome::HttpError:
    case Outcome::Transport:
    case Outcome::ErrorEvent: return "error";
    case Outcome::FirstTokenTimeout: return "timeout";
    case Outcome::IdleTimeout: return "stalled";
    case Outcome::Dropped: return "dropped";
    case Outcome::Cancelled: return "cancelled";
  }
  return "error";
}

}  // namespace

void Exchange::push(Piece piece) {
  {
    std::lock_guard lock(mu_);
    pieces_.push_back(std::move(piece));
    started_ = true;
  }
  cv_.notify_all();
}

void Exchange::finish(std::optional<server::ApiError> error) {
  {
    std::lock_guard lock(mu_);
    error_ = std::move(error);
    finished_ = true;
  }
  cv_.notify_all();
}

bool Exchange::wait(std::vector<Piece>& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return finished_ || !pieces_.empty(); });
  while (!pieces_.empty()) {
    out.push_back(std::move(pieces_.front()));
    pieces_.pop_front();
  }
  return finished_;
}

void Exchange::wait_started() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return finished_ || started_; });
}

bool Exchange::failed_before_start() {
  std::lock_guard lock(mu_);
  return finished_ && !started_ && error_.has_value();
}

Expected<json> attempt_body(const ForwardJob& job, const std::string& model, const Piece& so_far,
                            int64_t produced_tokens, bool count_tokens) {
  json body = job.body;
  body["model"] = model;
  if (count_tokens && !body.contains("logprobs")) {
    if (job.endpoint == server::Endpoint::ChatCompletions) body["logprobs"] = true;
    else body["logprobs"] = 0;
  }
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  if (job.max_tokens > 0) {
    const int64_t left = std::max<int64_t>(1, job.max_tokens - produced_tokens);
    body.erase("max_completion_tokens");
    body["max_tokens"] = left;
  }
  if (so_far.reasoning.empty() && so_far.content.empty()) return body;
  if (job.endpoint == server::Endpoint::Completions) {
    json& prompt = body["prompt"];
    if (prompt.is_array() && prompt.size() == 1 && prompt[0].is_string()) prompt = prompt[0];
    if (!prompt.is_string()) return make_error("a prompt of token ids cannot be continued as text");
    prompt = prompt.get<std::string>() + so_far.content;
    return body;
  }
  json& messages = body["messages"];
  json& last = messages.back();
  // A client that sent its own prefix message: the text so far extends it.
  if (last.is_object() && last.value("role", "") == "assistant" && last.value("prefix", false) &&
      last.value("content", json()).is_string()) {
    last["content"] = last["content"].get<std::string>() + so_far.content;
    const json rc = last.value("reasoning_content", json(""));
    last["reasoning_content"] = (rc.is_string() ? rc.get<std::string>() : std::string()) + so_far.reasoning;
    return body;
  }
  messages.push_back({{"role", "assistant"},
                      {"content", so_far.content},
                      {"reasoning_content", so_far.reasoning},
                      {"prefix", true}});
  return body;
}

void forward(const ForwardJob& job, Backends& backends, policy::AuditLog* audit, Exchange& exchange,
             ForwardTotals& totals) {
  const GatewayConfig& config = backends.config();
  Piece so_far;
  int attempt_no = 0;
  std::optional<server::ApiError> failure;
  std::string reasons;  // per failed attempt, for the final error
  bool done = false;
  const bool chat = job.endpoint == server::Endpoint::ChatCompletions;
  // Chat asks with "logprobs": true, legacy completions with a count of alternatives.
  const auto asked = job.body.find("logprobs");
  const bool keep_logprobs =
      asked != job.body.end() && (chat ? asked->is_boolean() && asked->get<bool>() : asked->is_number_integer());
  json logprobs;

  for (size_t c = 0; c < job.route.size() && !done; ++c) {
    const Candidate& cand = job.route[c];
    const BackendConfig& b = config.backends[cand.backend];
    if (!backends.claim_probe(cand.backend)) continue;  // another request holds the half-open probe
    const bool continuation = !so_far.reasoning.empty() || !so_far.content.empty();
    auto body = attempt_body(job, cand.model, so_far, totals.completion_tokens, b.kind == BackendKind::Node);
    if (!body) {
      reasons += b.name + ": " + body.error().message + "; ";
      break;
    }
    if (job.redact_external && b.tier == policy::Tier::external && job.detectors)
      policy::redact_request(*body, *job.detectors);

    UpstreamCall call;
    call.url = b.url + (b.kind == BackendKind::Node ? "/v1" : "") + (chat ? "/chat/completions" : "/completions");
    call.headers = {"Content-Type: application/json", "Accept: text/event-stream"};
    if (!b.api_key.empty()) call.headers.push_back("Authorization: Bearer " + b.api_key);
    call.body = server::dump(*body);
    call.chat = chat;
    call.keep_logprobs = keep_logprobs;
    call.timeouts = b.timeouts;
    ++attempt_no;
    totals.backend = b.name;
    Attempt a = run_attempt(
        call,
        [&](const Piece& p) {
          if (exchange.cancelled()) return false;
          so_far.reasoning += p.reasoning;
          so_far.content += p.content;
          Piece out{p.reasoning, p.content, nullptr};
          if (!p.logprobs.is_null()) out.logprobs = append_logprobs(logprobs, p.logprobs);
          exchange.push(std::move(out));
          return true;
        },
        [&] { return exchange.cancelled(); });

    const int64_t produced = a.completion_tokens >= 0 ? a.completion_tokens
                             : a.logprob_tokens > 0   ? a.logprob_tokens
                                                      : a.pieces;
    totals.completion_tokens += produced;
    if (a.prompt_tokens > 0) totals.prompt_tokens += a.prompt_tokens;
    const double cost = estimate_cost(b, std::max<int64_t>(a.prompt_tokens, 0), produced);
    totals.cost += cost;
    const bool ok = a.outcome == Outcome::Completed;
    backends.record_attempt(cand.backend, ok || a.outcome == Outcome::Cancelled, a.backend_fault, a.first_token_ms,
                            a.latency_ms, a.prompt_tokens, produced);
    if (audit) {
      policy::AttemptRecord rec;
      rec.request_id = job.request_id;
      rec.time = std::chrono::system_clock::now();
      rec.attempt = attempt_no;
      rec.backend = b.name;
      rec.tier = b.tier;
      rec.model = cand.model;
      rec.continuation = continuation;
      rec.outcome = audit_outcome(a.outcome);
      rec.error = a.error;
      if (a.prompt_tokens >= 0) rec.prompt_tokens = a.prompt_tokens;
      rec.completion_tokens = produced;
      if (a.first_token_ms >= 0) rec.first_token_ms = a.first_token_ms;
      rec.latency_ms = a.latency_ms;
      if (auto s = audit->write(rec.to_json()); !s)
        std::fprintf(stderr, "dhi gateway: audit log: %s\n", s.error().message.c_str());
    }
    if (ok) {
      failure.reset();
      totals.finish_reason = a.finish_reason.empty() ? "stop" : a.finish_reason;
      done = true;
      break;
    }
    if (a.outcome == Outcome::Cancelled) {
      failure = server::ApiError{499, "the client went away", "server_error", "", "cancelled"};
      done = true;
      break;
    }
    reasons += b.name + ": " + a.error + "; ";
    // A refusal of the request itself (a 4xx) is the answer if nothing else works.
    if (a.outcome == Outcome::HttpError && !a.backend_fault && !continuation)
      failure = server::ApiError{int(a.status), a.error, "invalid_request_error", "", "upstream_rejected"};
    if (c + 1 < job.route.size()) {
      backends.record_failover(cand.backend);
      ++totals.failovers;
    }
    if (job.max_tokens > 0 && totals.completion_tokens >= job.max_tokens) {
      // The budget of tokens is used up: the answer is complete at its length.
      totals.finish_reason = "length";
      done = true;
      failure.reset();
      break;
    }
  }
  totals.reasoning = std::move(so_far.reasoning);
  totals.content = std::move(so_far.content);
  totals.logprobs = std::move(logprobs);
  const bool started = !totals.content.empty() || !totals.reasoning.empty();
  const bool pass_through = failure && (failure->code == "cancelled" || (failure->code == "upstream_rejected" && !started));
  if (done && !failure) {
    exchange.finish(std::nullopt);
    return;
  }
  if (!pass_through) {
    if (reasons.size() >= 2) reasons.resize(reasons.size() - 2);
    server::ApiError e;
    e.status = 502;
    e.type = "server_error";
    e.code = started ? "continuation_failed" : "all_backends_failed";
    e.message = (started ? "the completion stopped after " + std::to_string(totals.completion_tokens) +
                               " tokens and no allowed backend could continue it"
                         : std::string("no allowed backend could answer")) +
                (reasons.empty() ? "" : " (" + reasons + ")");
    failure = e;
  }
  exchange.finish(failure);
}

}  // namespace dhi::gateway
