// Shared building blocks of decoder-only transformers, written against the
// Backend interface: the forward-pass state (named activation buffers for one
// micro-batch), attention with GQA / optional q,k,v bias / optional per-head
// q,k norm / rope / KV cache, the SwiGLU FFN, and the pre-norm decoder layer
// the supported architectures share.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/backend.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace dhi::model {

class ForwardPass {
 public:
  ForwardPass(const ModelConfig& cfg, const ModelWeights& w, Backend& backend, KvCache& kv);

  // Runs the model over one micro-batch whose inputs were validated by the
  // caller (token ids in range, positions contiguous with the cache). Writes the
  // logits of tokens `logit_rows` (indices into the micro-batch), in that
  // order, to logits_out ([logit_rows.size()][n_vocab]).
  void run(std::span<const int32_t> tokens, std::span<const int32_t> positions,
           std::span<const int32_t> seq_ids, std::span<const int32_t> logit_rows, float* logits_out);

  const ModelConfig& cfg;
  const ModelWeights& w;
  Backend& be;
  KvCache& kv;
  RopeConfig rope;

  // The current micro-batch.
  int64_t n_tokens = 0;
  std::span<const int32_t> positions, seq_ids;

  // Activations, each [n_tokens][width]; named so a debugger can inspect them.
  std::vector<float> x;     // residual stream (n_embd)
  std::vector<float> xn;    // normalized input of a block (n_embd)
  std::vector<float> q;     // queries (q_dim)
  std::vector<float> k, v;  // new keys / values (kv_dim)
  std::vector<float> attn;  // attention output before wo (q_dim)
  std::vector<float> tmp;   // block output before the residual add (n_embd)
  std::vector<float> gate, up;  // FFN hidden (n_ff)
  std::vector<float> out_rows;  // rows whose logits are wanted (n_embd)
};

// out = softmax(q k^T / sqrt(d)) v projected by wo, for decoder layer il.
void attention_block(ForwardPass& f, int32_t il, const float* in, float* out);
// out = down(silu(gate(in)) * up(in)).
void ffn_swiglu_block(ForwardPass& f, int32_t il, const float* in, float* out);
// x += attn(norm(x)); x += ffn(norm(x)).
void pre_norm_decoder_layer(ForwardPass& f, int32_t il);

}  // namespace dhi::model
