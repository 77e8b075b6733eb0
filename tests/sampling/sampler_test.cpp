// Sampler: greedy and filters against hand-computed candidate sets, seeded
// determinism, penalties on exact values, and empirical distributions checked
// against the softmax within a 5-sigma binomial bound.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "sampling/sampler.h"

namespace dhi::sampling {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

SamplingParams pure(float temperature = 1.0f) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

std::vector<float> log_probs(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

std::vector<float> random_logits(uint64_t seed, size_t n) {
  // A shuffled ladder: distinct values (so the argmax is unique) over about [-8, 8].
  std::mt19937_64 g(seed);
  std::vector<float> l(n);
  for (size_t i = 0; i < n; ++i) l[i] = -8.0f + 16.0f * static_cast<float>(i) / static_cast<float>(n);
  for (size_t i = n; i > 1; --i) std::swap(l[i - 1], l[g() % i]);
  return l;
}

int32_t argmax_lowest(const std::vector<float>& l) {
  int32_t best = 0;
  for (size_t i = 1; i < l.size(); ++i) {
    if (l[i] > l[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
  }
  return best;
}

// Draws `n` samples and checks each token's frequency against `expected`
// within 5 standard deviations of the binomial count, sqrt(p(1-p)/n): for a
// correct sampler each check fails with probability about 6e-7.
void expect_distribution(const SamplingParams& params, const std::vector<float>& logits,
                         const std::vector<double>& expected, int n = 200000) {
  Sampler s(params);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    const int32_t t = s.sample(logits);
    ASSERT_GE(t, 0);
    ASSERT_LT(static_cast<size_t>(t), logits.size());
    ++counts[static_cast<size_t>(t)];
  }
  for (size_t i = 0; i < logits.size(); ++i) {
    const double f = static_cast<double>(counts[i]) / n;
    const double p = expected[i];
    if (p == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " should be filtered out";
    } else {
      const double bound = 5.0 * std::sqrt(p * (1.0 - p) / n);
      EXPECT_NEAR(f, p, bound) << "token " << i << " seed " << params.seed;
    }
  }
}

TEST(Validate, DefaultsAreValidAndEachRangeIsChecked) {
  EXPECT_TRUE(validate(SamplingParams{}).ok());
  EXPECT_TRUE(validate(pure(0.0f)).ok());
  const auto bad = [](auto mutate, const char* field) {
    SamplingParams p;
    mutate(p);
    auto st = validate(p);
    ASSERT_FALSE(st.ok()) << field;
    EXPECT_NE(st.error().message.find(field), std::string::npos) << st.error().message;
  };
  bad([](SamplingParams& p) { p.temperature = -0.1f; }, "temperature");
  bad([](SamplingParams& p) { p.temperature = kNaN; }, "temperature");
  bad([](SamplingParams& p) { p.temperature = kInf; }, "temperature");
  bad([](SamplingParams& p) { p.top_k = -1; }, "top_k");
  bad([](SamplingParams& p) { p.top_p = 0.0f; }, "top_p");
  bad([](SamplingParams& p) { p.top_p = 1.5f; }, "top_p");
  bad([](SamplingParams& p) { p.top_p = kNaN; }, "top_p");
  bad([](SamplingParams& p) { p.min_p = -0.01f; }, "min_p");
  bad([](SamplingParams& p) { p.min_p = 1.01f; }, "min_p");
  bad([](SamplingParams& p) { p.repeat_penalty = 0.0f; }, "repeat_penalty");
  bad([](SamplingParams& p) { p.repeat_penalty = kNaN; }, "repeat_penalty");
  bad([](SamplingParams& p) { p.repeat_last_n = -2; }, "repeat_last_n");
  bad([](SamplingParams& p) { p.frequency_penalty = 2.5f; }, "frequency_penalty");
  bad([](SamplingParams& p) { p.presence_penalty = -3.0f; }, "presence_penalty");
  bad([](SamplingParams& p) { p.presence_penalty = kNaN; }, "presence_penalty");
}

TEST(Greedy, ArgmaxWithTiesToLowestId) {
  Sampler s(pure(0.0f));
  EXPECT_EQ(s.sample(std::vector<float>{1.0f, 3.0f, 3.0f, 2.0f}), 1);
  EXPECT_EQ(s.sample(std::vector<float>{-5.0f}), 0);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto l = random_logits(seed, 1000);
    EXPECT_EQ(s.sample(l), argmax_lowest(l));
  }
}

// greedy_argmax's 16 lanes and tail against a plain first-maximum scan, on
// every length up to 41 (whole lane groups, a ragged tail, shorter than one
// group), with ties inside and across lanes and the tail, NaN, +-inf and
// signed zeros drawn often.
TEST(Greedy, LaneArgmaxMatchesAPlainScan) {
  const float pool[] = {kNaN, kInf, -kInf, 0.0f, -0.0f, 1.0f, 1.0f, 2.0f, -3.0f, 2.0f};
  std::mt19937_64 g(7);
  for (size_t n = 0; n <= 41; ++n) {
    for (int rep = 0; rep < 200; ++rep) {
      std::vector<float> l(n);
      for (float& x : l) x = pool[g() % std::size(pool)];
      int32_t want = Sampler::kNoToken;
      for (size_t i = 0; i < n; ++i) {
        if (l[i] > -kInf && (want < 0 || l[i] > l[static_cast<size_t>(want)])) want = static_cast<int32_t>(i);
      }
      ASSERT_EQ(greedy_argmax(l), want) << "n " << n << " rep " << rep;
    }
  }
  // The lowest id of a tie wins whichever lanes hold the copies.
  std::vector<float> l(20, 0.0f);
  l[9] = 5.0f;
  l[3 + 8] = 5.0f;
  l[2] = 5.0f;
  EXPECT_EQ(greedy_argmax(l), 2);
}

TEST(Greedy, TopKOneAndTinyTopPEqualGreedy) {
  SamplingParams k1 = pure(1.5f);
  k1.top_k = 1;
  SamplingParams p0 = pure(1.5f);
  p0.top_p = 1e-6f;
  SamplingParams m1 = pure(1.5f);
  m1.min_p = 1.0f;  // only tokens as likely as the best survive
  Sampler a(k1), b(p0), c(m1);
  for (uint64_t seed = 100; seed < 150; ++seed) {
    const auto l = random_logits(seed, 500);
    const int32_t g = argmax_lowest(l);
    EXPECT_EQ(a.sample(l), g);
    EXPECT_EQ(b.sample(l), g);
    EXPECT_EQ(c.sample(l), g);
  }
}

TEST(Seeds, SameSeedSameSequenceDifferentSeedsDiffer) {
  const std::vector<float> l(8, 0.0f);  // uniform over 8 tokens
  SamplingParams p = pure(1.0f);
  p.seed = 42;
  Sampler a(p), b(p);
  p.seed = 43;
  Sampler c(p);
  std::vector<int32_t> sa, sb, sc;
  for (int i = 0; i < 100; ++i) {
    sa.push_back(a.sample(l));
    sb.push_back(b.sample(l));
    sc.push_back(c.sample(l));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);  // equal with probability 8^-100
  a.reset();
  std::vector<int32_t> again;
  for (int i = 0; i < 100; ++i) again.push_back(a.sample(l));
  EXPECT_EQ(again, sa);
}

TEST(Distribution, MatchesSoftmax) {
  const std::vector<double> probs = {0.1, 0.2, 0.3, 0.4};
  for (uint64_t seed : {1u, 2u, 3u}) {
    SamplingParams p = pure(1.0f);
    p.seed = seed;
    expect_distribution(p, log_probs(probs), probs);
  }
}

TEST(Distribution, TemperatureSharpens) {
  // T = 0.5 squares the probabilities: (.01, .04, .09, .16) / .30.
  SamplingParams p = pure(0.5f);
  p.seed = 7;
  expect_distribution(p, log_probs({0.1, 0.2, 0.3, 0.4}), {0.01 / 0.3, 0.04 / 0.3, 0.09 / 0.3, 0.16 / 0.3});
}

TEST(Distribution, TopKKeepsTheKBest) {
  // Order of the logits is shuffled so that ids and ranks differ.
  SamplingParams p = pure(1.0f);
  p.top_k = 3;
  p.seed = 11;
  expect_distribution(p, log_probs({0.15, 0.05, 0.5, 0.3}), {0.15 / 0.95, 0.0, 0.5 / 0.95, 0.3 / 0.95});
}

TEST(Distribution, TopPKeepsTheSmallestSufficientPrefix) {
  // Sorted: .5, .3, .15, .05; cumulative .5 < .75 <= .8, so {.5, .3} stay.
  SamplingParams p = pure(1.0f);
  p.top_p = 0.75f;
  p.seed = 12;
  expect_distribution(p, log_probs({0.05, 0.3, 0.15, 0.5}), {0.0, 0.3 / 0.8, 0.0, 0.5 / 0.8});
}

TEST(Distribution, MinPDropsTokensBelowAFractionOfTheBest) {
  // min_p = .2 of p_max = .5 is .1: .15 stays, .05 goes.
  SamplingParams p = pure(1.0f);
  p.min_p = 0.2f;
  p.seed = 13;
  expect_distribution(p, log_probs({0.5, 0.3, 0.15, 0.05}), {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0});
}

TEST(Distribution, TopPAndMinPTogetherKeepTheShorterPrefix) {
  // top_p .9 alone keeps {.5, .3, .15}; min_p .5 alone keeps {.5, .3}.
  SamplingParams p = pure(1.0f);
  p.top_p = 0.9f;
  p.min_p = 0.5f;
  p.seed = 15;
  expect_distribution(p, log_probs({0.15, 0.5, 0.05, 0.3}), {0.0, 0.5 / 0.8, 0.0, 0.3 / 0.8}, 50000);
  // top_p .6 alone keeps {.5, .3}; min_p .2 alone keeps {.5, .3, .15}.
  p.top_p = 0.6f;
  p.min_p = 0.2f;
  p.seed = 16;
  expect_distribution(p, log_probs({0.15, 0.5, 0.05, 0.3}), {0.0, 0.5 / 0.8, 0.0, 0.3 / 0.8}, 50000);
}

TEST(Distribution, FiltersApplyBeforeTemperature) {
  // top_p = .75 keeps {.5, .3} at T = 1; T = 2 then flattens them to sqrt ratios.
  SamplingParams p = pure(2.0f);
  p.top_p = 0.75f;
  p.seed = 14;
  const double a = std::sqrt(0.5), b = std::sqrt(0.3);
  expect_distribution(p, log_probs({0.5, 0.3, 0.15, 0.05}), {a / (a + b), b / (a + b), 0.0, 0.0});
}

TEST(Penalties, ChangeExactlyTheRightLogits) {
  SamplingParams p = pure(1.0f);
  p.repeat_penalty = 2.0f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  Sampler s(p);
  for (int32_t t : {1, 3, 1, 7, -5}) s.accept(t);  // 7 and -5 are outside this 5-token vocabulary
  std::vector<float> l = {1.0f, 2.0f, -1.0f, -2.0f, 0.5f};
  s.apply_penalties(l);
  // token 1 (seen twice, positive): 2 / 2 - (2 * .5 + .25) = -0.25
  // token 3 (seen once, negative): -2 * 2 - (.5 + .25) = -4.75
  EXPECT_EQ(l, (std::vector<float>{1.0f, -0.25f, -1.0f, -4.75f, 0.5f}));
}

TEST(Penalties, WindowIsTheLastNTokens) {
  SamplingParams p = pure(1.0f);
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 2;
  Sampler s(p);
  for (int32_t t : {0, 0, 0, 0, 0, 2, 1}) s.accept(t);  // window: {2, 1}
  std::vector<float> l = {4.0f, 4.0f, 4.0f};
  s.apply_penalties(l);
  EXPECT_EQ(l, (std::vector<float>{4.0f, 2.0f, 2.0f}));

  p.repeat_last_n = 0;  // off
  Sampler off(p);
  off.accept(0);
  std::vector<float> l2 = {4.0f, 4.0f};
  off.apply_penalties(l2);
  EXPECT_EQ(l2, (std::vector<float>{4.0f, 4.0f}));

  p.repeat_last_n = -1;  // whole history
  Sampler all(p);
  for (int i = 0; i < 1000; ++i) all.accept(1);
  all.accept(0);
  std::vector<float> l3 = {4.0f, 4.0f, 4.0f};
  all.apply_penalties(l3);
  EXPECT_EQ(l3, (std::vector<float>{2.0f, 2.0f, 4.0f}));

  all.reset();
  std::vector<float> l4 = {4.0f, 4.0f};
  all.apply_penalties(l4);
  EXPECT_EQ(l4, (std::vector<float>{4.0f, 4.0f}));
}

TEST(Penalties, ApplyUnderGreedyToo) {
  SamplingParams p = pure(0.0f);
  p.repeat_penalty = 1.5f;
  Sampler s(p);
  s.accept(0);
  EXPECT_EQ(s.sample(std::vector<float>{3.0f, 2.5f}), 1);  // 3 / 1.5 = 2 < 2.5
}

TEST(BadLogits, NanAndInfinityDoNotCrash) {
  for (float t : {0.0f, 1.0f}) {
    SamplingParams p = pure(t);
    Sampler s(p);
    EXPECT_EQ(s.sample(std::vector<float>{}), Sampler::kNoToken);
    EXPECT_EQ(s.sample(std::vector<float>{kNaN, kNaN}), Sampler::kNoToken);
    EXPECT_EQ(s.sample(std::vector<float>{-kInf, -kInf}), Sampler::kNoToken);
    EXPECT_EQ(s.sample(std::vector<float>{kNaN, 1.0f, kNaN, -kInf}), 1);
    for (int i = 0; i < 100; ++i) {
      const int32_t x = s.sample(std::vector<float>{kInf, 0.0f, kInf, kNaN});
      EXPECT_TRUE(x == 0 || x == 2) << x;
      if (t == 0.0f) {
        EXPECT_EQ(x, 0);
      }
    }
    // Huge finite logits must not overflow the softmax.
    const int32_t y = s.sample(std::vector<float>{3e38f, -3e38f, 3e38f});
    EXPECT_TRUE(y == 0 || y == 2) << y;
  }
  // +inf draws are uniform among the +inf tokens (5-sigma bound as above).
  SamplingParams p = pure(1.0f);
  p.seed = 5;
  expect_distribution(p, {kInf, 0.0f, kInf, kInf}, {1.0 / 3, 0.0, 1.0 / 3, 1.0 / 3}, 30000);
}

TEST(BadParams, OutOfRangeValuesDoNotCrash) {
  SamplingParams p = pure(1.0f);
  p.top_k = -3;
  p.top_p = -1.0f;
  p.min_p = 5.0f;
  p.repeat_penalty = -1.0f;
  p.repeat_last_n = -7;
  Sampler s(p);
  s.accept(0);
  const auto l = random_logits(9, 50);
  const int32_t t = s.sample(l);
  EXPECT_GE(t, 0);
  EXPECT_LT(t, 50);
}

}  // namespace
}  // namespace dhi::sampling
