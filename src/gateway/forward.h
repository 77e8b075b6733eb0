// One client request carried through its backends: attempts in route order,
// failover before the first token, and after it the continuation of the same
// completion on the next allowed backend (the conversation plus a trailing
// assistant message with the text so far and "prefix": true, or for
// /v1/completions the prompt plus the text so far; max_tokens reduced by what
// was produced). The pieces of text go to an Exchange, which the HTTP thread
// drains into one response; every attempt is audited and fed to the backends'
// circuit breakers and metrics.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/backends.h"
#include "gateway/router.h"
#include "gateway/upstream.h"
#include "policy/audit.h"
#include "policy/detectors.h"
#include "server/openai.h"

namespace dhi::gateway {

// What the worker produces and the HTTP thread consumes.
class Exchange {
 public:
  void push(Piece piece);
  // Final: `error` empty on success. `before_start`: nothing was streamed.
  void finish(std::optional<server::ApiError> error);
  // Waits up to `timeout` for pieces or the end; moves the pieces out.
  // Returns true once finished and drained.
  bool wait(std::vector<Piece>& out, std::chrono::milliseconds timeout);
  // Blocks until a first piece or the end.
  void wait_started();
  // Finished with an error before any text: the client can get an HTTP error.
  bool failed_before_start();
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }
  const std::optional<server::ApiError>& error() const { return error_; }  // valid once finished

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Piece> pieces_;
  bool finished_ = false;
  bool started_ = false;
  std::optional<server::ApiError> error_;
  std::atomic<bool> cancelled_{false};
};

struct ForwardTotals {
  std::string finish_reason = "stop";
  int64_t prompt_tokens = 0, completion_tokens = 0;
  int failovers = 0;
  std::string backend;  // the one that finished (or last tried)
  std::string reasoning, content;
  nlohmann::json logprobs;  // of the whole answer when the client asked for them, else null
  double cost = 0;
};

struct ForwardJob {
  server::Endpoint endpoint = server::Endpoint::ChatCompletions;
  nlohmann::json body;  // the client's request body, as sent
  std::string request_id;
  std::vector<Candidate> route;  // allowed candidates, best first
  bool redact_external = false;
  const policy::Detectors* detectors = nullptr;
  int64_t max_tokens = 0;  // 0: not set by the client
};

// Runs the attempts (on the caller's thread), fills `totals`, then finishes
// `exchange` (so a reader that saw the end also sees the totals).
void forward(const ForwardJob& job, Backends& backends, policy::AuditLog* audit, Exchange& exchange,
             ForwardTotals& totals);

// The body of one attempt: the client's body with the backend's model name,
// streaming with usage, and the continuation of `so_far` when it is not empty.
// Fails only for a continuation that cannot be expressed (a token-id prompt).
// `count_tokens`: ask for logprobs (dhi nodes send one entry per token) so
// that a stream cut short still tells how many tokens it produced.
Expected<nlohmann::json> attempt_body(const ForwardJob& job, const std::string& model, const Piece& so_far,
                                      int64_t produced_tokens, bool count_tokens);

}  // namespace dhi::gateway
