// Sampler implementation. Candidates are (id, logit) pairs, ordered either by id
// or (after top-k / top-p) by logit descending with ties broken by the lower id,
// so the result is a pure function of (logits, history, seed) on every platform.
#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>

namespace dhi::sampling {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

bool better(const auto& a, const auto& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }

std::string num(float v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return std::to_string(v);
}

}  // namespace

int32_t greedy_argmax(std::span<const float> logits) {
  // Two passes, each one the compiler vectorises: the maximum over 16
  // independent lanes (a select per lane, which NaN never wins: it compares
  // false), then the first id holding it (-0 and +0 tie, as they compare
  // equal). A single pass that tracks the id as well does not vectorise.
  constexpr size_t kLanes = 16;
  const float* v = logits.data();
  const size_t n = logits.size();
  float lane[kLanes];
  for (float& l : lane) l = -kInf;
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t j = 0; j < kLanes; ++j) lane[j] = v[i + j] > lane[j] ? v[i + j] : lane[j];
  }
  for (size_t j = 0; i + j < n; ++j) lane[j] = v[i + j] > lane[j] ? v[i + j] : lane[j];
  float m = -kInf;
  for (float l : lane) m = l > m ? l : m;
  if (!(m > -kInf)) return Sampler::kNoToken;
  for (i = 0; v[i] != m; ++i) {
  }
  return static_cast<int32_t>(i);
}

Status validate(const SamplingParams& p) {
  if (!(std::isfinite(p.temperature) && p.temperature >= 0.0f)) {
    return make_error("sampling: temperature must be a finite number >= 0, got ", num(p.temperature));
  }
  if (p.top_k < 0) return make_error("sampling: top_k must be >= 0 (0 disables it), got ", p.top_k);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    return make_error("sampling: top_p must be in (0, 1] (1 disables it), got ", num(p.top_p));
  }
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
    return make_error("sampling: min_p must be in [0, 1] (0 disables it), got ", num(p.min_p));
  }
  if (!(std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0.0f)) {
    return make_error("sampling: repeat_penalty must be a finite number > 0 (1 disables it), got ",
                      num(p.repeat_penalty));
  }
  if (p.repeat_last_n < -1) {
    return make_error("sampling: repeat_last_n must be >= -1 (-1 = whole history, 0 = off), got ", p.repeat_last_n);
  }
  // OpenAI's documented range for both penalties.
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f)) {
    return make_error("sampling: frequency_penalty must be in [-2, 2], got ", num(p.frequency_penalty));
  }
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f)) {
    return make_error("sampling: presence_penalty must be in [-2, 2], got ", num(p.presence_penalty));
  }
  return {};
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

void Sampler::reset() {
  history_.clear();
  rng_.seed(params_.seed);
}

void Sampler::accept(int32_t token) {
  if (params_.repeat_last_n == 0) return;
  history_.push_back(token);
  if (params_.repeat_last_n > 0) {
    const size_t window = static_cast<size_t>(params_.repeat_last_n);
    // Trim in batches so accept() stays amortised O(1).
    if (history_.size() >= 2 * window) history_.erase(history_.begin(), history_.end() - static_cast<ptrdiff_t>(window));
  }
}

double Sampler::next_uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

bool Sampler::penalises() const {
  if (params_.repeat_last_n == 0 || history_.empty()) return false;
  return params_.repeat_penalty != 1.0f || params_.frequency_penalty != 0.0f || params_.presence_penalty != 0.0f;
}

void Sampler::apply_penalties(std::span<float> logits) const {
  if (!penalises()) return;
  const bool repeat = params_.repeat_penalty != 1.0f;

  size_t first = 0;
  if (params_.repeat_last_n > 0 && history_.size() > static_cast<size_t>(params_.repeat_last_n)) {
    first = history_.size() - static_cast<size_t>(params_.repeat_last_n);
  }
  std::unordered_map<int32_t, int32_t> counts;
  for (size_t i = first; i < history_.size(); ++i) ++counts[history_[i]];

  for (const auto& [id, count] : counts) {
    if (id < 0 || static_cast<size_t>(id) >= logits.size()) continue;  // not in this vocabulary
    float& l = logits[static_cast<size_t>(id)];
    // CTRL (Keskar et al. 2019) divides the logit; llama.cpp multiplies the
    // negative ones instead so that the penalty always lowers the token.
    if (repeat && params_.repeat_penalty > 0.0f) l = l > 0.0f ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    // OpenAI: mu[j] -= c[j] * alpha_frequency + (c[j] > 0) * alpha_presence.
    l -= static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
  }
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.empty() || logits.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) return kNoToken;

  // Greedy: one pass, over the caller's row unless penalties change it.
  const bool greedy = !(params_.temperature > 0.0f);
  if (greedy && !penalises()) return greedy_argmax(logits);

  row_.assign(logits.begin(), logits.end());
  apply_penalties(row_);
  if (greedy) return greedy_argmax(row_);
  cands_.resize(row_.size());
  for (size_t i = 0; i < row_.size(); ++i) {
    const float l = row_[i];
    cands_[i] = Candidate{static_cast<int32_t>(i), std::isnan(l) ? -kInf : l};
  }

  // +inf logits: a softmax would be inf/inf. They are the only tokens with any
  // probability, and equally likely among themselves.
  std::vector<Candidate>& c = cands_;
  const auto n_pos_inf = std::count_if(c.begin(), c.end(), [](const Candidate& x) { return x.logit == kInf; });
  if (n_pos_inf > 0) {
    std::erase_if(c, [](const Candidate& x) { return x.logit != kInf; });
    if (c.size() == 1) return c.front().id;
    const double u = next_uniform() * static_cast<double>(c.size());
    return c[std::min(c.size() - 1, static_cast<size_t>(u))].id;
  }
  std::erase_if(c, [](const Candidate& x) { return !(x.logit > -kInf); });
  if (c.empty()) return kNoToken;

  // top-k: the k best, sorted.
  const auto cmp = [](const Candidate& a, const Candidate& b) { return better(a, b); };
  bool sorted = false;
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < c.size()) {
    const size_t k = static_cast<size_t>(params_.top_k);
    std::partial_sort(c.begin(), c.begin() + static_cast<ptrdiff_t>(k), c.end(), cmp);
    c.resize(k);
    sorted = true;
  }

  // Probabilities before temperature, relative to the top token: exp(l - max).
  double max_logit = c.front().logit;
  for (const Candidate& x : c) max_logit = std::max(max_logit, static_cast<double>(x.logit));
  const auto ratio = [&](const Candidate& x) { return std::exp(static_cast<double>(x.logit) - max_logit); };

  // top-p and min-p each keep a prefix of the sorted list, so applying min-p
  // first keeps the same set; it is a linear pass that spares sorting a whole
  // vocabulary. top-p's total is taken before it, over the top-k survivors.
  const bool use_top_p = params_.top_p < 1.0f;
  double top_p_total = 0.0;
  if (use_top_p) {
    for (const Candidate& x : c) top_p_total += ratio(x);
  }
  if (params_.min_p > 0.0f) {
    // p_i >= min_p * p_max  <=>  exp(l_i - l_max) >= min_p; the top token always stays.
    const double min_ratio = std::min(1.0, static_cast<double>(params_.min_p));
    std::erase_if(c, [&](const Candidate& x) { return x.logit != max_logit && ratio(x) < min_ratio; });
  }
  if (use_top_p) {
    if (!sorted) std::sort(c.begin(), c.end(), cmp);
    const double target = static_cast<double>(std::max(params_.top_p, 0.0f)) * top_p_total;
    double cum = 0.0;
    size_t keep = 0;
    while (keep < c.size()) {
      cum += ratio(c[keep]);
      ++keep;
      if (cum >= target) break;
    }
    c.resize(std::max<size_t>(keep, 1));
  }

  // Temperature, then the draw: weights exp((l - max) / T), first cumulative
  // weight above u * total.
  const double inv_t = 1.0 / static_cast<double>(params_.temperature);
  double total = 0.0;
  std::vector<double> weights(c.size());
  for (size_t i = 0; i < c.size(); ++i) {
    weights[i] = std::exp((static_cast<double>(c[i].logit) - max_logit) * inv_t);
    total += weights[i];
  }
  const double target = next_uniform() * total;
  double cum = 0.0;
  for (size_t i = 0; i < c.size(); ++i) {
    cum += weights[i];
    if (target < cum) return c[i].id;
  }
  return c.back().id;  // rounding left target at the very top
}

}  // namespace dhi::sampling
