// An inference context: a KV cache for n_seq sequences of n_ctx positions, a
// backend, and the logits of the last decode. decode() runs a batch of tokens
// from any mix of sequences (prompt prefill: many tokens of one sequence;
// generation: one token per sequence) after validating it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/expected.h"
#include "model/model.h"

namespace dhi::model {

class Backend;
class KvCache;
class ForwardPass;

struct Batch {
  std::vector<int32_t> tokens, positions, seq_ids;
  std::vector<uint8_t> want_logits;
  void add(int32_t token, int32_t pos, int32_t seq, bool logits);
  void clear();
  size_t size() const { return tokens.size(); }
};

struct ContextParams {
  uint32_t n_ctx = 0;  // 0 = the model's training context, capped at kDefaultMaxCtx
  int32_t n_seq = 1;
  int32_t n_threads = 0;  // 0 = all cores
  // KV cache element type: F32 (default; bit-faithful to the reference) or F16
  // (half the memory, what llama.cpp uses by default).
  TensorType kv_type = TensorType::F32;
};

class Context {
 public:
  static constexpr uint32_t kDefaultMaxCtx = 4096;
  static constexpr int32_t kMaxUbatch = 512;  // tokens per forward pass; larger batches are split

  static Expected<std::unique_ptr<Context>> create(const Model& model, const ContextParams& params);
  ~Context();

  // Errors (the cache is left unchanged) on an empty batch, mismatched field
  // lengths, a token id out of range, a seq id out of range, a position >=
  // n_ctx, or positions not contiguous with the sequence's cache.
  Status decode(const Batch& batch);
  // Logits of batch entry i of the last decode (n_vocab floats); empty when
  // that entry did not want logits.
  std::span<const float> logits(size_t batch_index) const;
  // Drops cached positions >= n_keep of seq (no-op when n_keep >= size).
  void kv_truncate(int32_t seq, int32_t n_keep);
  int32_t kv_size(int32_t seq) const;
  uint32_t n_ctx() const;
  int32_t n_seq() const;
  const Model& model() const { return model_; }

 private:
  explicit Context(const Model& model);
  const Model& model_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<ForwardPass> pass_;
  std::vector<float> logits_;        // [n_wanted][n_vocab]
  std::vector<int32_t> logit_index_;  // batch index -> row in logits_, or -1
};

}  // namespace dhi::model
