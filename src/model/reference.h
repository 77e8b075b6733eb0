// The reference forward pass: the test oracle for the fast path. A plain,
// single-sequence, single-threaded transformer in the spirit of llama2.c's
// run.c: every weight is dequantized to f32 at load, loops are naive, nothing
// is shared with the backend or kernels (only the config parsing and the
// quant/ dequantizers). Slow by design; for tiny models and tests.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/expected.h"
#include "gguf/reader.h"
#include "model/model.h"

namespace dhi::model {

class ReferenceModel {
 public:
  static Expected<ReferenceModel> load(const gguf::GgufFile& file);

  const ModelConfig& config() const { return cfg_; }
  // Runs tokens at positions 0..n-1 and returns the logits at every position
  // ([n][n_vocab]). Token ids must be in [0, n_vocab) (checked: an
  // out-of-range id gives an empty result).
  std::vector<std::vector<float>> forward(std::span<const int32_t> tokens) const;

 private:
  struct Layer {
    std::vector<float> attn_norm;       // (n_embd)
    std::vector<float> wq, wk, wv, wo;  // (q_dim, n_embd), (kv_dim, n_embd) x2, (n_embd, q_dim)
    std::vector<float> bq, bk, bv;      // (q_dim), (kv_dim) x2 or empty
    std::vector<float> q_norm, k_norm;  // (head_dim) or empty
    std::vector<float> ffn_norm;        // (n_embd)
    std::vector<float> w1, w3, w2;      // gate (n_ff, n_embd), up (n_ff, n_embd), down (n_embd, n_ff)
  };
  ModelConfig cfg_;
  std::vector<float> token_embd;   // (n_vocab, n_embd)
  std::vector<Layer> layers;
  std::vector<float> output_norm;  // (n_embd)
  std::vector<float> output;       // (n_vocab, n_embd)
  std::vector<float> freq_factors;  // (n_rot/2) or empty
};

}  // namespace dhi::model
