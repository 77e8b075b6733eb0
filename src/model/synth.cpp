// Tiny random model generator (see synth.h).
#include "model/synth.h"

#include <cmath>
#include <cstring>
#include <random>

#include "model/arch.h"
#include "quant/quant.h"

namespace dhi::model {

namespace {

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}
  std::vector<float> normal(size_t n, float mean, float stddev) {
    std::normal_distribution<float> d(mean, stddev);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng_);
    return v;
  }

 private:
  std::mt19937_64 rng_;
};

Status add_f32(gguf::GgufWriter& w, const std::string& name, std::vector<uint64_t> dims, const std::vector<float>& v) {
  std::vector<uint8_t> bytes(v.size() * sizeof(float));
  std::memcpy(bytes.data(), v.data(), bytes.size());
  return w.add_tensor(name, TensorType::F32, std::move(dims), std::move(bytes));
}

Status add_matrix(gguf::GgufWriter& w, const SynthSpec& s, const std::string& name, uint64_t ne0, uint64_t ne1,
                  const std::vector<float>& v) {
  const TensorType t = s.type_for ? s.type_for(name) : s.weight_type;
  if (t == TensorType::F32) return add_f32(w, name, {ne0, ne1}, v);
  auto q = dhi::quantize(t, v);
  if (!q.ok()) return make_error("synth: tensor ", name, " [", ne0, ", ", ne1, "]: ", q.error().message);
  return w.add_tensor(name, t, {ne0, ne1}, std::move(q).value());
}

void write_minimal_vocab(gguf::GgufWriter& w, int32_t n_vocab) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (int32_t i = 0; i < n_vocab; ++i) {
    // Built with append: GCC 12's -Wrestrict misfires on `"t" + to_string(i)` at -O3.
    std::string tok = i == 0 ? "<unk>" : i == 1 ? "<s>" : i == 2 ? "</s>" : "t";
    if (i > 2) tok.append(std::to_string(i));
    tokens.push_back(std::move(tok));
    scores.push_back(i < 3 ? 0.0f : -float(i));
    types.push_back(i == 0 ? 2 : i < 3 ? 3 : 1);  // unknown, control, normal
  }
  w.set_string("tokenizer.ggml.model", "llama");
  w.set("tokenizer.ggml.tokens", gguf::Value::make_string_array(tokens));
  w.set("tokenizer.ggml.scores", gguf::Value::make_f32_array(scores));
  w.set("tokenizer.ggml.token_type", gguf::Value::make_i32_array(types));
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
}

}  // namespace

Expected<gguf::GgufWriter> synth_model(const SynthSpec& s) {
  const ArchDef* arch = find_arch(s.arch);
  if (!arch) return make_error("synth: unsupported architecture '", s.arch, "'");
  int32_t n_vocab = s.n_vocab;
  gguf::GgufWriter w;
  w.set_string("general.architecture", s.arch);
  w.set_string("general.name", "dhi synthetic " + s.arch);
  if (s.vocab_source) {
    const gguf::Value* toks = s.vocab_source->find("tokenizer.ggml.tokens");
    if (!toks || !toks->as_array()) return make_error("synth: vocab source has no tokenizer.ggml.tokens array");
    n_vocab = int32_t(toks->as_array()->items.size());
    for (const auto& [key, value] : s.vocab_source->metadata()) {
      if (key.rfind("tokenizer.", 0) == 0) w.set(key, value);
    }
  }
  const int32_t head_dim = s.head_dim > 0 ? s.head_dim : (s.n_head > 0 ? s.n_embd / s.n_head : 0);
  if (n_vocab < 3 || s.n_embd < 1 || s.n_layer < 1 || s.n_head < 1 || s.n_head_kv < 1 || s.n_ff < 1 ||
      head_dim < 2 || head_dim % 2 != 0 || s.n_head % s.n_head_kv != 0) {
    return make_error("synth: invalid dimensions (n_vocab ", n_vocab, ", n_embd ", s.n_embd, ", n_head ", s.n_head,
                      ", n_head_kv ", s.n_head_kv, ", head_dim ", head_dim, ")");
  }
  if (!s.vocab_source) write_minimal_vocab(w, n_vocab);

  const std::string p = s.arch + ".";
  w.set_u32(p + "context_length", s.n_ctx_train);
  w.set_u32(p + "embedding_length", uint32_t(s.n_embd));
  w.set_u32(p + "block_count", uint32_t(s.n_layer));
  w.set_u32(p + "feed_forward_length", uint32_t(s.n_ff));
  w.set_u32(p + "attention.head_count", uint32_t(s.n_head));
  w.set_u32(p + "attention.head_count_kv", uint32_t(s.n_head_kv));
  w.set_u32(p + "attention.key_length", uint32_t(head_dim));
  w.set_u32(p + "attention.value_length", uint32_t(head_dim));
  w.set_u32(p + "rope.dimension_count", uint32_t(head_dim));
  w.set_f32(p + "attention.layer_norm_rms_epsilon", s.rms_eps);
  w.set_f32(p + "rope.freq_base", s.rope_base);
  if (s.rope_scale_linear > 0.0f) {
    w.set_string(p + "rope.scaling.type", "linear");
    w.set_f32(p + "rope.scaling.factor", s.rope_scale_linear);
  }

  const uint64_t E = uint64_t(s.n_embd), Q = uint64_t(s.n_head) * head_dim,
                 KV = uint64_t(s.n_head_kv) * head_dim, F = uint64_t(s.n_ff), V = uint64_t(n_vocab);
  Gen g(s.seed);
  const auto mat = [&](uint64_t fan_in, uint64_t rows) {
    return g.normal(size_t(fan_in * rows), 0.0f, 1.0f / std::sqrt(float(fan_in)));
  };
  // Embeddings smaller than the layers' contributions: with a tied output a
  // residual stream dominated by the input embedding would just predict the
  // same token again.
  DHI_TRY(add_matrix(w, s, "token_embd.weight", E, V, g.normal(size_t(E * V), 0.0f, 0.3f)));
  for (int32_t l = 0; l < s.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    DHI_TRY(add_f32(w, b + "attn_norm.weight", {E}, g.normal(E, 1.0f, 0.1f)));
    DHI_TRY(add_matrix(w, s, b + "attn_q.weight", E, Q, mat(E, Q)));
    DHI_TRY(add_matrix(w, s, b + "attn_k.weight", E, KV, mat(E, KV)));
    DHI_TRY(add_matrix(w, s, b + "attn_v.weight", E, KV, mat(E, KV)));
    if (arch->qkv_bias) {
      DHI_TRY(add_f32(w, b + "attn_q.bias", {Q}, g.normal(Q, 0.0f, 0.5f)));
      DHI_TRY(add_f32(w, b + "attn_k.bias", {KV}, g.normal(KV, 0.0f, 0.5f)));
      DHI_TRY(add_f32(w, b + "attn_v.bias", {KV}, g.normal(KV, 0.0f, 0.5f)));
    }
    if (arch->qk_norm) {
      DHI_TRY(add_f32(w, b + "attn_q_norm.weight", {uint64_t(head_dim)}, g.normal(size_t(head_dim), 1.0f, 0.2f)));
      DHI_TRY(add_f32(w, b + "attn_k_norm.weight", {uint64_t(head_dim)}, g.normal(size_t(head_dim), 1.0f, 0.2f)));
    }
    DHI_TRY(add_matrix(w, s, b + "attn_output.weight", Q, E, mat(Q, E)));
    DHI_TRY(add_f32(w, b + "ffn_norm.weight", {E}, g.normal(E, 1.0f, 0.1f)));
    DHI_TRY(add_matrix(w, s, b + "ffn_gate.weight", E, F, mat(E, F)));
    DHI_TRY(add_matrix(w, s, b + "ffn_up.weight", E, F, mat(E, F)));
    DHI_TRY(add_matrix(w, s, b + "ffn_down.weight", F, E, mat(F, E)));
  }
  DHI_TRY(add_f32(w, "output_norm.weight", {E}, g.normal(E, 1.0f, 0.1f)));
  if (!s.tied_output) {
    // Scaled up so the logits spread over a few units and greedy choices are
    // not decided by rounding noise.
    std::vector<float> out = g.normal(size_t(E * V), 0.0f, 3.0f / std::sqrt(float(E)));
    DHI_TRY(add_matrix(w, s, "output.weight", E, V, out));
  }
  if (s.rope_freqs) {
    // Divisors between 1 and 8 rising with the dimension index, as Llama 3.1's
    // factors do for its low frequencies.
    const int32_t half = head_dim / 2;
    std::vector<float> ff(static_cast<size_t>(half));
    for (int32_t i = 0; i < half; ++i) ff[size_t(i)] = 1.0f + 7.0f * float(i) / float(std::max(1, half - 1));
    DHI_TRY(add_f32(w, "rope_freqs.weight", {uint64_t(half)}, ff));
  }
  return w;
}

}  // namespace dhi::model
