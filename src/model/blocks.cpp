// Shared decoder blocks (see blocks.h).
#include "model/blocks.h"

#include "model/arch.h"

namespace dhi::model {

ForwardPass::ForwardPass(const ModelConfig& c, const ModelWeights& weights, Backend& backend, KvCache& cache)
    : cfg(c), w(weights), be(backend), kv(cache) {
  rope.style = c.rope_style;
  rope.n_rot = c.n_rot;
  rope.base = c.rope_base;
  rope.freq_scale = c.rope_scaling == RopeScaling::Linear ? 1.0f / c.rope_scale : 1.0f;
  rope.freq_factors = w.rope_freq_factors.empty() ? nullptr : w.rope_freq_factors.data();
}

void attention_block(ForwardPass& f, int32_t il, const float* in, float* out) {
  const ModelConfig& c = f.cfg;
  const LayerWeights& L = f.w.layers[size_t(il)];
  const int64_t n = f.n_tokens;
  const MatmulOut qkv[] = {{&L.wq, f.q.data()}, {&L.wk, f.k.data()}, {&L.wv, f.v.data()}};
  f.be.matmul_multi(qkv, in, n);
  if (c.qkv_bias) {
    f.be.add_bias(f.q.data(), L.bq, n);
    f.be.add_bias(f.k.data(), L.bk, n);
    f.be.add_bias(f.v.data(), L.bv, n);
  }
  if (c.qk_norm) {
    // One RMS norm per head: rows of head_dim.
    f.be.rms_norm(f.q.data(), L.q_norm, n * c.n_head, c.rms_eps, f.q.data());
    f.be.rms_norm(f.k.data(), L.k_norm, n * c.n_head_kv, c.rms_eps, f.k.data());
  }
  f.be.rope(f.q.data(), n, c.n_head, c.head_dim, f.positions, f.rope);
  f.be.rope(f.k.data(), n, c.n_head_kv, c.head_dim, f.positions, f.rope);
  const KvLayerView kv = f.kv.layer(il);
  f.be.kv_store(kv, f.k.data(), f.v.data(), f.seq_ids, f.positions);
  f.be.attention(kv, f.q.data(), c.n_head, c.n_head_kv, c.head_dim, f.seq_ids, f.positions, f.attn.data());
  f.be.matmul(L.wo, f.attn.data(), n, out);
}

void ffn_swiglu_block(ForwardPass& f, int32_t il, const float* in, float* out) {
  const LayerWeights& L = f.w.layers[size_t(il)];
  const int64_t n = f.n_tokens;
  f.be.matmul_swiglu(L.ffn_gate, L.ffn_up, in, n, f.gate.data(), f.up.data());
  f.be.matmul(L.ffn_down, f.gate.data(), n, out);
}

void pre_norm_decoder_layer(ForwardPass& f, int32_t il) {
  const LayerWeights& L = f.w.layers[size_t(il)];
  const int64_t n_x = f.n_tokens * f.cfg.n_embd;
  f.be.rms_norm(f.x.data(), L.attn_norm, f.n_tokens, f.cfg.rms_eps, f.xn.data());
  attention_block(f, il, f.xn.data(), f.tmp.data());
  f.be.add(f.x.data(), f.tmp.data(), n_x);
  f.be.rms_norm(f.x.data(), L.ffn_norm, f.n_tokens, f.cfg.rms_eps, f.xn.data());
  ffn_swiglu_block(f, il, f.xn.data(), f.tmp.data());
  f.be.add(f.x.data(), f.tmp.data(), n_x);
}

void ForwardPass::run(std::span<const int32_t> tokens, std::span<const int32_t> pos,
                      std::span<const int32_t> seqs, std::span<const int32_t> logit_rows, float* logits_out) {
  n_tokens = int64_t(tokens.size());
  positions = pos;
  seq_ids = seqs;
  const auto grow = [&](std::vector<float>& b, int64_t width) {
    if (b.size() < size_t(n_tokens * width)) b.resize(size_t(n_tokens * width));
  };
  grow(x, cfg.n_embd);
  grow(xn, cfg.n_embd);
  grow(tmp, cfg.n_embd);
  grow(q, cfg.q_dim());
  grow(attn, cfg.q_dim());
  grow(k, cfg.kv_dim());
  grow(v, cfg.kv_dim());
  grow(gate, cfg.n_ff);
  grow(up, cfg.n_ff);

  be.get_rows(w.token_embd, tokens, x.data());
  const ArchDef* arch = find_arch(cfg.arch);
  for (int32_t il = 0; il < cfg.n_layer; ++il) arch->build_layer(*this, il);

  if (logit_rows.empty()) return;
  // Only the wanted rows go through the (large) output projection.
  const int64_t n_out = int64_t(logit_rows.size());
  if (out_rows.size() < size_t(n_out * cfg.n_embd)) out_rows.resize(size_t(n_out * cfg.n_embd));
  for (int64_t i = 0; i < n_out; ++i) {
    std::copy_n(x.data() + int64_t(logit_rows[size_t(i)]) * cfg.n_embd, cfg.n_embd,
                out_rows.data() + i * cfg.n_embd);
  }
  be.rms_norm(out_rows.data(), w.output_norm, n_out, cfg.rms_eps, out_rows.data());
  be.matmul(w.output, out_rows.data(), n_out, logits_out);
}

}  // namespace dhi::model
