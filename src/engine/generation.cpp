// Generation: the per-token rules shared by Session and Scheduler.
#include "engine/generation.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace dhi::engine {

std::string_view finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::ContextFull: return "context_full";
    case FinishReason::Cancelled: return "cancelled";
  }
  return "unknown";
}

TokenLogprobs compute_logprobs(std::span<const float> logits, int32_t token, int32_t n_top) {
  // log p_i = l_i - max - log(sum exp(l_j - max)); NaN counts as -inf, as in sampling.
  auto value = [&](size_t i) {
    const float l = logits[i];
    return std::isnan(l) ? -std::numeric_limits<float>::infinity() : l;
  };
  float max = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < logits.size(); ++i) max = std::max(max, value(i));
  double sum = 0;
  if (std::isfinite(max)) {
    for (size_t i = 0; i < logits.size(); ++i) sum += std::exp(double(value(i)) - max);
  }
  const double log_z = std::isfinite(max) && sum > 0 ? double(max) + std::log(sum) : 0.0;
  auto logprob = [&](size_t i) {
    const double lp = double(value(i)) - log_z;
    // JSON has no -inf: an impossible token reports the lowest finite float.
    return std::isfinite(lp) ? float(lp) : std::numeric_limits<float>::lowest();
  };

  TokenLogprobs out;
  if (token >= 0 && size_t(token) < logits.size()) out.chosen = {token, logprob(size_t(token))};
  const size_t k = std::min(logits.size(), size_t(std::max(n_top, 0)));
  if (k > 0) {
    std::vector<int32_t> ids(logits.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i);
    // Ties go to the lower id, so the list does not depend on the sort.
    auto better = [&](int32_t a, int32_t b) {
      const float va = value(size_t(a)), vb = value(size_t(b));
      return va > vb || (va == vb && a < b);
    };
    std::partial_sort(ids.begin(), ids.begin() + ptrdiff_t(k), ids.end(), better);
    for (size_t i = 0; i < k; ++i) out.top.push_back({ids[i], logprob(size_t(ids[i]))});
  }
  return out;
}

Generation::Generation(const tok::Tokenizer& tokenizer, const GenerationLimits& limits,
                       std::span<const int32_t> prompt)
    : tokenizer_(tokenizer),
      limits_(limits),
      sampler_(limits.sampling),
      decoder_(tokenizer),
      stops_(limits.stop) {
  for (int32_t t : prompt) sampler_.accept(t);
}

bool Generation::exhausted() const {
  return limits_.max_tokens >= 0 && int32_t(tokens_.size()) >= limits_.max_tokens;
}

Generation::Step Generation::done_with(Step s, FinishReason reason) {
  // Text held back for a possible stop string or an incomplete UTF-8 sequence
  // is released when generation ends without a stop-string match.
  if (!stops_.stopped()) {
    auto tail = stops_.push(decoder_.flush());
    std::string rest = std::move(tail.emit);
    if (!tail.stopped) rest += stops_.flush();
    text_ += rest;
    s.text += rest;
  }
  s.done = true;
  s.finish = reason;
  return s;
}

Generation::Step Generation::finish(FinishReason reason) { return done_with(Step{}, reason); }

Expected<Generation::Step> Generation::step(std::span<const float> logits, int64_t n_cached,
                                            int64_t n_ctx) {
  Step s;
  s.token = sampler_.sample(logits);
  if (s.token == sampling::Sampler::kNoToken)
    return make_error("the model produced no usable logits (all NaN or -inf) after ", n_cached,
                      " tokens");
  if (limits_.top_logprobs >= 0) s.logprobs = compute_logprobs(logits, s.token, limits_.top_logprobs);
  if (tokenizer_.is_eog(s.token)) return done_with(std::move(s), FinishReason::Stop);
  sampler_.accept(s.token);
  tokens_.push_back(s.token);

  auto matched = stops_.push(decoder_.push(s.token));
  s.text = std::move(matched.emit);
  text_ += s.text;
  if (matched.stopped) {
    // The stop string's tokens stay in the cache; the next prompt's prefix
    // match decides what is reused.
    s.done = true;
    s.finish = FinishReason::Stop;
    return s;
  }
  // At max_tokens there is no need to evaluate the last token.
  if (exhausted()) return done_with(std::move(s), FinishReason::Length);
  if (n_cached >= n_ctx) return done_with(std::move(s), FinishReason::ContextFull);
  return s;
}

}  // namespace dhi::engine
