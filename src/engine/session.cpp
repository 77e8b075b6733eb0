#include "engine/session.h"

#include <algorithm>
#include <chrono>


namespace dhi::engine {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace

Session::Session(model::Context& context, const tok::Tokenizer& tokenizer, int32_t seq)
    : ctx_(context), tokenizer_(tokenizer), seq_(seq) {}

void Session::reset() {
  ctx_.kv_truncate(seq_, 0);
  cached_.clear();
}

// Runs `tokens` through the model after what is cached, in batches; logits are
// requested for the last token only.
Status Session::evaluate(std::span<const int32_t> tokens, int32_t batch_size) {
  for (size_t start = 0; start < tokens.size(); start += size_t(batch_size)) {
    size_t end = std::min(tokens.size(), start + size_t(batch_size));
    batch_.clear();
    for (size_t i = start; i < end; ++i)
      batch_.add(tokens[i], int32_t(cached_.size() + (i - start)), seq_, i + 1 == tokens.size());
    DHI_TRY(ctx_.decode(batch_));
    logits_index_ = end - start - 1;
    cached_.insert(cached_.end(), tokens.begin() + ptrdiff_t(start), tokens.begin() + ptrdiff_t(end));
  }
  return {};
}

Expected<GenerateResult> Session::generate(std::span<const int32_t> prompt,
                                           const GenerateParams& params,
                                           const TextCallback& on_text) {
  if (prompt.empty()) return make_error("the prompt is empty (no tokens to start from)");
  const int64_t n_ctx = ctx_.n_ctx();
  if (int64_t(prompt.size()) >= n_ctx)
    return make_error("the prompt has ", prompt.size(), " tokens but the context holds ", n_ctx,
                      " (it needs room for at least one generated token); use a larger --ctx or a "
                      "shorter prompt");
  DHI_TRY(sampling::validate(params.sampling));
  if (params.prompt_batch <= 0) return make_error("prompt batch size must be positive");

  const auto t_start = Clock::now();
  GenerateResult result;

  // Reuse the longest common prefix; at least the last prompt token is always
  // evaluated again, because its logits start the generation.
  size_t common = 0;
  while (common < cached_.size() && common + 1 < prompt.size() && cached_[common] == prompt[common])
    ++common;
  ctx_.kv_truncate(seq_, int32_t(common));
  cached_.resize(common);
  result.timings.prompt_cached = int32_t(common);

  auto suffix = prompt.subspan(common);
  DHI_TRY(evaluate(suffix, params.prompt_batch));
  result.timings.prompt_tokens = int32_t(suffix.size());
  result.timings.prompt_ms = ms_since(t_start);

  Generation gen(tokenizer_, {params.max_tokens, params.sampling, params.stop, -1}, prompt);
  auto emit = [&](const std::string& s) {
    if (!s.empty() && on_text) on_text(s);
  };
  Clock::time_point t_first{};
  bool sampled = false;
  for (;;) {
    if (params.cancel && params.cancel->load()) {
      emit(gen.finish(FinishReason::Cancelled).text);
      result.finish_reason = FinishReason::Cancelled;
      break;
    }
    if (gen.exhausted()) {
      emit(gen.finish(FinishReason::Length).text);
      result.finish_reason = FinishReason::Length;
      break;
    }
    DHI_ASSIGN_OR_RETURN(Generation::Step step,
                         gen.step(ctx_.logits(logits_index_), int64_t(cached_.size()), n_ctx));
    if (!sampled) {
      sampled = true;
      t_first = Clock::now();
      result.timings.ttft_ms = ms_since(t_start);
    }
    emit(step.text);
    if (step.done) {
      result.finish_reason = step.finish;
      break;
    }
    const int32_t next[1] = {step.token};
    DHI_TRY(evaluate(next, 1));
  }
  result.text = gen.text();
  result.tokens = gen.tokens();
  result.timings.gen_tokens = int32_t(result.tokens.size());
  if (!result.tokens.empty()) result.timings.gen_ms = ms_since(t_first);
  return result;
}

}  // namespace dhi::engine
