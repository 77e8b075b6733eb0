// What happens to one sequence's output once its logits are known: sampling,
// end-of-generation tokens, streamed detokenization, stop strings, max tokens,
// a full context and (optionally) token log-probabilities. Session drives one
// Generation over one sequence; the Scheduler drives one per active slot, so
// `dhi run` and the server finish generations by the same rules.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/expected.h"
#include "engine/stop_strings.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace dhi::engine {

enum class FinishReason { Stop, Length, ContextFull, Cancelled };
std::string_view finish_reason_name(FinishReason r);

struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0;
};
// The chosen token's log-probability under the model (log-softmax of the raw
// logits, before penalties and temperature) and the most likely alternatives.
struct TokenLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;  // best first
};
// Log-softmax of `logits` at `token` and the `n_top` most likely tokens.
TokenLogprobs compute_logprobs(std::span<const float> logits, int32_t token, int32_t n_top);

struct GenerationLimits {
  int32_t max_tokens = -1;  // -1: until end of generation or the context is full
  sampling::SamplingParams sampling;
  std::vector<std::string> stop;  // stop strings (not emitted)
  int32_t top_logprobs = -1;      // -1: no log-probabilities; else alternatives per token
};

class Generation {
 public:
  struct Step {
    int32_t token = -1;  // the sampled token (an end-of-generation token included)
    std::string text;    // text that became final with this step
    bool done = false;   // when false, the caller evaluates `token` next
    FinishReason finish = FinishReason::Stop;
    std::optional<TokenLogprobs> logprobs;
  };

  // The prompt tokens seed the sampler's penalty history.
  Generation(const tok::Tokenizer& tokenizer, const GenerationLimits& limits,
             std::span<const int32_t> prompt);

  // True when max_tokens is already reached before sampling (max_tokens 0).
  bool exhausted() const;
  // Samples from the logits of the sequence's newest position. `n_cached` is
  // the number of positions in the sequence's cache, `n_ctx` its capacity.
  Expected<Step> step(std::span<const float> logits, int64_t n_cached, int64_t n_ctx);
  // Ends the generation without sampling (cancellation, or exhausted()):
  // releases the text held back for a possible stop string.
  Step finish(FinishReason reason);

  const std::vector<int32_t>& tokens() const { return tokens_; }  // generated, EOG excluded
  const std::string& text() const { return text_; }

 private:
  Step done_with(Step s, FinishReason reason);

  const tok::Tokenizer& tokenizer_;
  GenerationLimits limits_;
  sampling::Sampler sampler_;
  tok::StreamDecoder decoder_;
  StopStringMatcher stops_;
  std::vector<int32_t> tokens_;
  std::string text_;
};

}  // namespace dhi::engine
