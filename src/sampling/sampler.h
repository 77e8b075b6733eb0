// Token sampling from logits: repetition/frequency/presence penalties, then the
// truncation filters top-k → top-p → min-p, then temperature, then a draw from
// a seeded std::mt19937_64. The draw maps the generator's raw 64-bit output to
// [0, 1) ourselves (std::uniform_real_distribution and std::discrete_distribution
// differ between standard libraries), so a seed gives the same tokens everywhere.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "core/expected.h"

namespace dhi::sampling {

struct SamplingParams {
  float temperature = 0.8f;        // 0 = greedy (argmax)
  int32_t top_k = 40;              // 0 = off
  float top_p = 0.95f;             // 1 = off
  float min_p = 0.05f;             // 0 = off
  float repeat_penalty = 1.0f;     // 1 = off
  int32_t repeat_last_n = 64;      // penalty window; 0 = no penalties, -1 = whole history
  float frequency_penalty = 0.0f;  // OpenAI: minus count * this
  float presence_penalty = 0.0f;   // OpenAI: minus this once a token has appeared
  uint64_t seed = 0;
};

// Checks every field's range; the error names the field and the bad value.
Status validate(const SamplingParams& params);

// The greedy choice over a row of logits: the id of the largest logit, the
// lowest such id on ties; NaN counts as -inf. kNoToken (-1) when no logit is
// above -inf. Two vectorised passes over the row and no copy: decode runs it
// on every token, over vocabularies of 150K entries.
int32_t greedy_argmax(std::span<const float> logits);

class Sampler {
 public:
  // Returned by sample() when there is nothing to choose from: empty logits or
  // no logit that is a number other than -inf.
  static constexpr int32_t kNoToken = -1;

  // `params` should have passed validate(); out-of-range values are clamped to
  // the nearest meaningful behaviour rather than misbehaving.
  explicit Sampler(const SamplingParams& params);

  // Picks the next token id from one row of logits (index = token id). The
  // penalties apply under greedy decoding (temperature 0) too.
  // NaN logits count as -inf. If any logit is +inf, the choice is among the
  // +inf tokens only (lowest id when greedy, uniform otherwise).
  int32_t sample(std::span<const float> logits);

  // Applies the repeat/frequency/presence penalties of the current history to a
  // row of logits in place (index = token id): sample()'s first step.
  void apply_penalties(std::span<float> logits) const;

  // Records a token (prompt or generated) in the penalty history.
  void accept(int32_t token);
  // Clears the history and restarts the random generator from the seed.
  void reset();

  const SamplingParams& params() const { return params_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;
  };

  double next_uniform();  // in [0, 1), 53 random bits
  bool penalises() const;  // whether apply_penalties would change any logit

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<int32_t> history_;  // at most repeat_last_n tokens unless it is -1
  std::vector<float> row_;        // scratch: penalised logits
  std::vector<Candidate> cands_;  // scratch
};

}  // namespace dhi::sampling
