// One attempt at a completion on one backend: a streamed POST (the gateway
// always asks upstreams for a stream with usage, whatever the client asked,
// so it sees every piece of text as it is produced and can continue the
// completion elsewhere), parsed as server-sent events into text pieces. The
// attempt ends completed, or with the reason it failed: HTTP error, transport
// error, first-token or idle timeout, a stream dropped before its end, an
// error event, or the client going away.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/config.h"

namespace dhi::gateway {

enum class Outcome { Completed, HttpError, Transport, FirstTokenTimeout, IdleTimeout, Dropped, ErrorEvent, Cancelled };

// Text produced by one upstream event (either part may be empty), and when
// the client asked for them the logprobs of its tokens: the choice's object as
// the upstream sent it (chat: {"content": [entries]}; legacy completions:
// parallel arrays), null otherwise.
struct Piece {
  std::string reasoning;
  std::string content;
  nlohmann::json logprobs;
};

struct UpstreamCall {
  std::string url;                   // the endpoint
  std::vector<std::string> headers;  // "Name: value" (Authorization, Content-Type)
  std::string body;                  // JSON
  bool chat = true;                  // chat deltas, else legacy completions text
  bool keep_logprobs = false;        // pieces carry the upstream's logprobs
  Timeouts timeouts;
};

struct Attempt {
  Outcome outcome = Outcome::Completed;
  long status = 0;      // HTTP status, 0 without a response
  std::string error;    // what went wrong, for logs and the audit record
  // False when the upstream refused the request itself (a 4xx other than 408
  // and 429): not a sign of a sick backend, so the circuit breaker ignores it.
  bool backend_fault = true;
  int64_t pieces = 0;   // events that carried text
  int64_t logprob_tokens = 0;  // tokens counted from logprobs entries (when asked for)
  int64_t prompt_tokens = -1, completion_tokens = -1;  // from usage; -1 when not sent
  std::string finish_reason;
  double first_token_ms = -1, latency_ms = 0;
};

// Appends logprobs object `add` to `into` (null: none yet), array by array,
// and returns `add` as appended: legacy completions' text_offset continues
// from the text already in `into`, so the pieces of a completion continued on
// another upstream read as one. Non-array members of `add` are ignored.
nlohmann::json append_logprobs(nlohmann::json& into, const nlohmann::json& add);

// Runs the call; `on_piece` gets each piece of text as it arrives and returns
// false when the client went away; `cancelled` is polled while waiting.
Attempt run_attempt(const UpstreamCall& call, const std::function<bool(const Piece&)>& on_piece,
                    const std::function<bool()>& cancelled);

}  // namespace dhi::gateway
