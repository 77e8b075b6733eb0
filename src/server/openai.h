// The OpenAI request and response shapes: parsing and validating the bodies of
// POST /v1/chat/completions and /v1/completions, error objects, and building
// the responses (one JSON object, or the chunks of a server-sent-event stream)
// from the engine's per-token events. DeepSeek-R1 reasoning is split off into
// `reasoning_content` as DeepSeek's API does, unless the request asks for the
// raw text (`"reasoning_format": "none"`). A chat request may end with a
// partial assistant answer (`"prefix": true`, with its `reasoning_content`);
// the response then holds only what follows it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/reasoning.h"
#include "chat/template.h"
#include "engine/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace dhi::server {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null
  std::string code;   // empty: null
};
// {"error": {"message", "type", "param", "code"}}
nlohmann::json error_body(const ApiError& e);
// JSON text with invalid UTF-8 replaced (token pieces may be partial characters).
std::string dump(const nlohmann::json& j);

enum class Endpoint { ChatCompletions, Completions };

struct CompletionRequest {
  Endpoint endpoint = Endpoint::ChatCompletions;
  std::string model;                    // empty when not given
  std::vector<chat::Message> messages;  // chat
  std::string prompt;                   // completions: text ...
  std::vector<int32_t> prompt_tokens;   // ... or token ids
  bool prompt_is_tokens = false;
  bool stream = false;
  bool include_usage = false;
  bool split_reasoning = true;  // chat: R1 thinking in reasoning_content
  // chat: a last assistant message with "prefix": true (DeepSeek's
  // continuation): the answer so far, which generation continues.
  std::optional<chat::AssistantPrefix> prefix;
  engine::GenerationLimits limits;
};

// Parses and validates a body; the error names the offending parameter.
// Unknown fields are ignored, as OpenAI clients send many. An unset seed
// becomes `default_seed`.
std::optional<ApiError> parse_request(Endpoint endpoint, std::string_view body, uint64_t default_seed,
                                      CompletionRequest& out);

std::string_view finish_reason_text(engine::FinishReason r);

// Turns one request's engine events into the response: chunks while streaming,
// or the whole object at the end.
class ResponseBuilder {
 public:
  ResponseBuilder(const CompletionRequest& request, std::string id, std::string model_id,
                  bool opens_in_reasoning, const tok::Tokenizer& tokenizer);

  // Streaming: the chunk that opens the stream (chat: the assistant role), if any.
  std::optional<nlohmann::json> first_chunk() const;
  // Consumes one event; while streaming, appends the chunks it produces.
  void on_event(const engine::Event& e, std::vector<nlohmann::json>* chunks);
  // After the final event: the non-streaming response body.
  nlohmann::json response() const;
  // Set once the final event carried an error.
  const std::optional<ApiError>& failure() const { return failure_; }

  int32_t completion_tokens() const { return gen_tokens_; }
  int32_t prompt_tokens() const { return prompt_tokens_; }

 private:
  nlohmann::json chunk_base() const;
  nlohmann::json usage() const;
  void take_text(std::string_view text, bool final, std::string& reasoning, std::string& content);
  nlohmann::json logprobs_json(size_t from) const;
  void append_logprob(const engine::TokenLogprobs& lp);

  const CompletionRequest& req_;
  std::string id_, model_id_;
  int64_t created_;
  const tok::Tokenizer& tokenizer_;
  bool chat_;
  std::optional<chat::ReasoningParser> parser_;
  std::string raw_prefix_;  // split off: the reasoning tag the prompt opened
  std::string content_, reasoning_;
  int32_t tokens_seen_ = 0, tokens_before_content_ = 0;
  bool content_started_ = false;
  std::vector<engine::TokenLogprobs> logprobs_;
  size_t logprobs_sent_ = 0;
  int32_t prompt_tokens_ = 0, prompt_cached_ = 0, gen_tokens_ = 0;
  engine::FinishReason finish_ = engine::FinishReason::Stop;
  std::optional<ApiError> failure_;
};

}  // namespace dhi::server
