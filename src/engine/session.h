// A generation session: one sequence of a model Context, with the tokens it has
// cached. Generation reuses the longest cached prefix of a new prompt, so a
// multi-turn chat only evaluates what each turn adds. Cancellation and timings
// live here; sampling, stop strings, end-of-generation tokens and max tokens
// are Generation's (engine/generation.h), shared with the server's Scheduler.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.h"
#include "engine/generation.h"
#include "model/context.h"
#include "model/model.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace dhi::engine {

struct GenerateParams {
  int32_t max_tokens = -1;  // -1: until end of generation or the context is full
  sampling::SamplingParams sampling;
  std::vector<std::string> stop;                 // stop strings (not emitted)
  const std::atomic<bool>* cancel = nullptr;     // set from a signal handler to stop early
  int32_t prompt_batch = 256;                    // prompt tokens per forward pass
};

struct Timings {
  int32_t prompt_tokens = 0;     // tokens evaluated for the prompt (after prefix reuse)
  int32_t prompt_cached = 0;     // prompt tokens reused from the cache
  double prompt_ms = 0;
  int32_t gen_tokens = 0;
  double gen_ms = 0;             // from the first generated token to the last
  double ttft_ms = 0;            // from the call to the first generated token
  double prompt_tps() const { return prompt_ms > 0 ? prompt_tokens * 1000.0 / prompt_ms : 0; }
  double gen_tps() const {
    return gen_ms > 0 && gen_tokens > 1 ? (gen_tokens - 1) * 1000.0 / gen_ms : 0;
  }
};

struct GenerateResult {
  std::string text;                 // generated text, stop string excluded
  std::vector<int32_t> tokens;      // generated token ids
  FinishReason finish_reason = FinishReason::Stop;
  Timings timings;
};

// Called with each piece of newly decodable text (always whole UTF-8 sequences).
using TextCallback = std::function<void(std::string_view text)>;

class Session {
 public:
  Session(model::Context& context, const tok::Tokenizer& tokenizer, int32_t seq = 0);

  // Evaluates `prompt` (reusing the cached prefix) and samples until end of
  // generation, a stop string, max_tokens, a full context or cancellation.
  Expected<GenerateResult> generate(std::span<const int32_t> prompt, const GenerateParams& params,
                                    const TextCallback& on_text = {});

  // Tokens currently in this session's KV cache (prompt and generated so far).
  const std::vector<int32_t>& cached_tokens() const { return cached_; }
  void reset();

 private:
  Status evaluate(std::span<const int32_t> tokens, int32_t batch_size);

  model::Context& ctx_;
  const tok::Tokenizer& tokenizer_;
  int32_t seq_;
  std::vector<int32_t> cached_;
  model::Batch batch_;
  size_t logits_index_ = 0;  // batch entry holding the newest logits
};

}  // namespace dhi::engine
