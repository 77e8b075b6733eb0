// Context semantics: batched prefill equals token-by-token decoding, two
// sequences in one batch equal running them separately, kv_truncate then
// re-decode reproduces the logits, micro-batch splitting, memory estimate.
#include "test_util.h"

namespace dhi::model::test {
namespace {

SynthSpec small_spec() {
  SynthSpec s;
  s.arch = "qwen2";  // biases + NEOX rope + GQA
  s.n_vocab = 80;
  s.n_embd = 64;
  s.n_layer = 2;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_ff = 96;
  s.seed = 7;
  return s;
}

struct Loaded {
  SynthFile sf;
  std::unique_ptr<Model> model;
};

Loaded load_small(const SynthSpec& s = small_spec()) {
  Loaded l;
  l.sf = make_synth(s);
  if (!l.sf.file) return l;
  auto m = Model::load(*l.sf.file);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  if (m.ok()) l.model = std::move(m).value();
  return l;
}

std::unique_ptr<Context> make_ctx(const Model& m, uint32_t n_ctx, int32_t n_seq, int32_t n_threads = 2) {
  auto c = Context::create(m, {.n_ctx = n_ctx, .n_seq = n_seq, .n_threads = n_threads});
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? std::move(c).value() : nullptr;
}

// Summation order is identical whatever the batch shape (each output row is
// one dot product over the same row), so these comparisons can be tight.
constexpr double kTol = 1e-6;

const std::vector<int32_t> kToks = {1, 9, 33, 2, 71, 15, 40, 40, 3, 64, 12};

TEST(Context, PrefillEqualsSingleTokenDecodes) {
  Loaded l = load_small();
  ASSERT_TRUE(l.model);
  auto a = make_ctx(*l.model, 32, 1), b = make_ctx(*l.model, 32, 1);
  Batch batch;
  for (size_t i = 0; i < kToks.size(); ++i) batch.add(kToks[i], int32_t(i), 0, true);
  ASSERT_TRUE(a->decode(batch).ok());
  EXPECT_EQ(a->kv_size(0), int32_t(kToks.size()));
  for (size_t i = 0; i < kToks.size(); ++i) {
    Batch one;
    one.add(kToks[i], int32_t(i), 0, true);
    ASSERT_TRUE(b->decode(one).ok());
    EXPECT_LT(max_rel_diff(a->logits(i), b->logits(0)), kTol) << "position " << i;
  }
}

TEST(Context, TwoSequencesInOneBatchEqualSeparateRuns) {
  Loaded l = load_small();
  ASSERT_TRUE(l.model);
  const std::vector<int32_t> s0 = {1, 5, 6, 7, 8}, s1 = {1, 50, 22, 60};
  auto both = make_ctx(*l.model, 16, 2);
  // Interleaved prefill of both sequences in one batch.
  Batch b;
  for (size_t i = 0; i < std::max(s0.size(), s1.size()); ++i) {
    if (i < s0.size()) b.add(s0[i], int32_t(i), 0, true);
    if (i < s1.size()) b.add(s1[i], int32_t(i), 1, true);
  }
  ASSERT_TRUE(both->decode(b).ok());
  EXPECT_EQ(both->kv_size(0), 5);
  EXPECT_EQ(both->kv_size(1), 4);
  for (int seq = 0; seq < 2; ++seq) {
    const auto& toks = seq == 0 ? s0 : s1;
    auto alone = make_ctx(*l.model, 16, 1);
    Batch a;
    for (size_t i = 0; i < toks.size(); ++i) a.add(toks[i], int32_t(i), 0, true);
    ASSERT_TRUE(alone->decode(a).ok());
    size_t k = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      if (b.seq_ids[i] != seq) continue;
      EXPECT_LT(max_rel_diff(both->logits(i), alone->logits(k)), kTol) << "seq " << seq << " pos " << k;
      ++k;
    }
  }
  // A decode step with one token per sequence continues both.
  Batch step;
  step.add(3, 5, 0, true);
  step.add(4, 4, 1, false);
  ASSERT_TRUE(both->decode(step).ok());
  EXPECT_EQ(both->logits(0).size(), size_t(l.model->config().n_vocab));
  EXPECT_TRUE(both->logits(1).empty());
}

TEST(Context, TruncateThenRedecodeReproducesLogits) {
  Loaded l = load_small();
  ASSERT_TRUE(l.model);
  auto c = make_ctx(*l.model, 32, 1);
  Batch b;
  for (size_t i = 0; i < kToks.size(); ++i) b.add(kToks[i], int32_t(i), 0, true);
  ASSERT_TRUE(c->decode(b).ok());
  std::vector<std::vector<float>> first;
  for (size_t i = 0; i < kToks.size(); ++i) first.emplace_back(c->logits(i).begin(), c->logits(i).end());
  c->kv_truncate(0, 4);
  EXPECT_EQ(c->kv_size(0), 4);
  // Re-decoding from a non-contiguous position is refused...
  Batch bad;
  bad.add(kToks[5], 5, 0, true);
  EXPECT_FALSE(c->decode(bad).ok());
  // ...and from position 4 reproduces the original logits.
  Batch rest;
  for (size_t i = 4; i < kToks.size(); ++i) rest.add(kToks[i], int32_t(i), 0, true);
  ASSERT_TRUE(c->decode(rest).ok());
  for (size_t i = 4; i < kToks.size(); ++i) EXPECT_LT(max_rel_diff(c->logits(i - 4), first[i]), kTol) << i;
  // A different continuation after truncation gives different logits.
  c->kv_truncate(0, 4);
  Batch other;
  other.add(77, 4, 0, true);
  ASSERT_TRUE(c->decode(other).ok());
  EXPECT_GT(max_rel_diff(c->logits(0), first[4]), 1e-3);
}

TEST(Context, BatchesLargerThanMicroBatchAreSplit) {
  SynthSpec s = small_spec();
  s.n_ctx_train = 1024;
  Loaded l = load_small(s);
  ASSERT_TRUE(l.model);
  const int n = Context::kMaxUbatch + 37;
  auto a = make_ctx(*l.model, 1024, 1), b = make_ctx(*l.model, 1024, 1);
  Batch big;
  for (int i = 0; i < n; ++i) big.add((i * 7 + 3) % 80, i, 0, i % 100 == 0 || i == n - 1);
  ASSERT_TRUE(a->decode(big).ok());
  // The same tokens in two batches split at a different place.
  Batch p1, p2;
  for (int i = 0; i < n; ++i) (i < 300 ? p1 : p2).add(big.tokens[size_t(i)], i, 0, big.want_logits[size_t(i)] != 0);
  ASSERT_TRUE(b->decode(p1).ok());
  EXPECT_LT(max_rel_diff(a->logits(200), b->logits(200)), kTol);
  ASSERT_TRUE(b->decode(p2).ok());
  EXPECT_LT(max_rel_diff(a->logits(size_t(n - 1)), b->logits(size_t(n - 1 - 300))), kTol);
  EXPECT_TRUE(a->logits(1).empty());
}

TEST(Context, ThreadCountDoesNotChangeResults) {
  // Big enough that matmuls and attention really split across threads (small
  // products run on the calling thread).
  SynthSpec s = small_spec();
  s.n_embd = 256;
  s.n_ff = 768;
  s.n_head = 8;
  s.n_head_kv = 2;
  Loaded l = load_small(s);
  ASSERT_TRUE(l.model);
  auto one = make_ctx(*l.model, 64, 1, 1), three = make_ctx(*l.model, 64, 1, 3);
  Batch b;
  for (int i = 0; i < 48; ++i) b.add((i * 13 + 1) % 80, i, 0, true);
  ASSERT_TRUE(one->decode(b).ok());
  ASSERT_TRUE(three->decode(b).ok());
  for (size_t i = 0; i < b.size(); ++i) EXPECT_LT(max_rel_diff(one->logits(i), three->logits(i)), kTol);
}

TEST(Context, DefaultContextIsTrainingContextCapped) {
  SynthSpec s = small_spec();
  s.n_ctx_train = 100;
  Loaded l = load_small(s);
  ASSERT_TRUE(l.model);
  auto c = make_ctx(*l.model, 0, 1);
  EXPECT_EQ(c->n_ctx(), 100u);
  s.n_ctx_train = 1u << 20;
  Loaded big = load_small(s);
  ASSERT_TRUE(big.model);
  auto c2 = make_ctx(*big.model, 0, 1);
  EXPECT_EQ(c2->n_ctx(), Context::kDefaultMaxCtx);
}

TEST(Context, F16KvCacheStaysCloseToF32) {
  Loaded l = load_small();
  ASSERT_TRUE(l.model);
  auto a = make_ctx(*l.model, 32, 1);
  auto h = Context::create(*l.model, {.n_ctx = 32, .n_seq = 1, .n_threads = 2, .kv_type = TensorType::F16});
  ASSERT_TRUE(h.ok());
  Batch b;
  for (size_t i = 0; i < kToks.size(); ++i) b.add(kToks[i], int32_t(i), 0, true);
  ASSERT_TRUE(a->decode(b).ok());
  ASSERT_TRUE((*h)->decode(b).ok());
  for (size_t i = 0; i < kToks.size(); ++i) {
    // f16 rounding of K and V (relative 2^-11) through two layers.
    const double d = max_rel_diff((*h)->logits(i), a->logits(i));
    EXPECT_LT(d, 5e-3) << i;
    if (i > 0) {
      EXPECT_GT(d, 0.0) << "f16 cache left no trace at position " << i;
    }
  }
  EXPECT_FALSE(Context::create(*l.model, {.n_ctx = 8, .n_seq = 1, .kv_type = TensorType::Q8_0}).ok());
}

}  // namespace
}  // namespace dhi::model::test
