// Reference forward pass (see reference.h). Reads top to bottom like the
// paper: load weights, then for each position: embed, and per layer RMS norm ->
// q,k,v (+bias) -> (q,k norm) -> rope -> cache -> attention -> wo -> residual
// -> RMS norm -> SwiGLU -> residual; final norm and classifier.
#include "model/reference.h"

#include <cmath>
#include <string>

#include "quant/quant.h"

namespace dhi::model {

namespace {

// Whole tensor as f32, after checking it has exactly `n` elements in rows of
// `row` (the input dimension: a transposed matrix is refused).
Expected<std::vector<float>> load_f32(const gguf::GgufFile& f, const std::string& name, uint64_t n, uint64_t row) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  if (!t) return make_error("missing tensor ", name);
  if (t->n_elements != n) return make_error("tensor ", name, ": expected ", n, " elements, got ", t->n_elements);
  if (t->dims.empty() || t->dims[0] != row) return make_error("tensor ", name, ": expected rows of ", row);
  if (Status st = dhi::check_row(t->type, int64_t(row)); !st.ok()) {
    return make_error("tensor ", name, ": ", st.error().message);
  }
  std::vector<float> out(n);
  const uint64_t rb = *row_bytes(t->type, row);
  for (uint64_t r = 0; r < n / row; ++r) {
    dhi::dequantize_row(t->type, t->data + r * rb, out.data() + r * row, int64_t(row));
  }
  return out;
}

void rmsnorm(float* o, const float* x, const float* w, int n, float eps) {
  double ss = 0.0;
  for (int i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  const double scale = 1.0 / std::sqrt(ss / n + eps);
  for (int i = 0; i < n; ++i) o[i] = float(x[i] * scale) * w[i];
}

// xout (d) = W (d, n) @ x (n)
void matvec(float* xout, const float* x, const std::vector<float>& w, int n, int d) {
  for (int i = 0; i < d; ++i) {
    double acc = 0.0;
    for (int j = 0; j < n; ++j) acc += double(w[size_t(i) * n + j]) * x[j];
    xout[i] = float(acc);
  }
}

}  // namespace

Expected<ReferenceModel> ReferenceModel::load(const gguf::GgufFile& f) {
  ReferenceModel m;
  DHI_ASSIGN_OR_RETURN(m.cfg_, parse_config(f));
  const ModelConfig& c = m.cfg_;
  const uint64_t E = uint64_t(c.n_embd), Q = uint64_t(c.q_dim()), KV = uint64_t(c.kv_dim()), F = uint64_t(c.n_ff);
  DHI_ASSIGN_OR_RETURN(m.token_embd, load_f32(f, "token_embd.weight", uint64_t(c.n_vocab) * E, E));
  for (int32_t l = 0; l < c.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    Layer L;
    DHI_ASSIGN_OR_RETURN(L.attn_norm, load_f32(f, p + "attn_norm.weight", E, E));
    DHI_ASSIGN_OR_RETURN(L.wq, load_f32(f, p + "attn_q.weight", Q * E, E));
    DHI_ASSIGN_OR_RETURN(L.wk, load_f32(f, p + "attn_k.weight", KV * E, E));
    DHI_ASSIGN_OR_RETURN(L.wv, load_f32(f, p + "attn_v.weight", KV * E, E));
    DHI_ASSIGN_OR_RETURN(L.wo, load_f32(f, p + "attn_output.weight", E * Q, Q));
    if (c.qkv_bias) {
      DHI_ASSIGN_OR_RETURN(L.bq, load_f32(f, p + "attn_q.bias", Q, Q));
      DHI_ASSIGN_OR_RETURN(L.bk, load_f32(f, p + "attn_k.bias", KV, KV));
      DHI_ASSIGN_OR_RETURN(L.bv, load_f32(f, p + "attn_v.bias", KV, KV));
    }
    if (c.qk_norm) {
      DHI_ASSIGN_OR_RETURN(L.q_norm, load_f32(f, p + "attn_q_norm.weight", uint64_t(c.head_dim), uint64_t(c.head_dim)));
      DHI_ASSIGN_OR_RETURN(L.k_norm, load_f32(f, p + "attn_k_norm.weight", uint64_t(c.head_dim), uint64_t(c.head_dim)));
    }
    DHI_ASSIGN_OR_RETURN(L.ffn_norm, load_f32(f, p + "ffn_norm.weight", E, E));
    DHI_ASSIGN_OR_RETURN(L.w1, load_f32(f, p + "ffn_gate.weight", F * E, E));
    DHI_ASSIGN_OR_RETURN(L.w3, load_f32(f, p + "ffn_up.weight", F * E, E));
    DHI_ASSIGN_OR_RETURN(L.w2, load_f32(f, p + "ffn_down.weight", E * F, F));
    m.layers.push_back(std::move(L));
  }
  DHI_ASSIGN_OR_RETURN(m.output_norm, load_f32(f, "output_norm.weight", E, E));
  if (c.tied_output) {
    m.output = m.token_embd;
  } else {
    DHI_ASSIGN_OR_RETURN(m.output, load_f32(f, "output.weight", uint64_t(c.n_vocab) * E, E));
  }
  if (c.has_rope_freqs) {
    DHI_ASSIGN_OR_RETURN(m.freq_factors, load_f32(f, "rope_freqs.weight", uint64_t(c.n_rot / 2), uint64_t(c.n_rot / 2)));
  } else {
    m.freq_factors = rope_freq_factors(f, c);
  }
  return m;
}

std::vector<std::vector<float>> ReferenceModel::forward(std::span<const int32_t> tokens) const {
  const ModelConfig& c = cfg_;
  const int E = c.n_embd, HD = c.head_dim, NH = c.n_head, NKV = c.n_head_kv, F = c.n_ff;
  const int Q = c.q_dim(), KV = c.kv_dim(), T = int(tokens.size());
  for (int32_t tok : tokens) {
    if (tok < 0 || tok >= c.n_vocab) return {};
  }
  // Caches (layer, position, kv_dim).
  std::vector<float> key_cache(size_t(c.n_layer) * T * KV), value_cache(size_t(c.n_layer) * T * KV);
  std::vector<float> x(E), xb(E), xb2(E), q(Q), k(KV), v(KV), att(Q), hb(F), hb2(F), scores(T);
  std::vector<std::vector<float>> all_logits;

  for (int pos = 0; pos < T; ++pos) {
    for (int i = 0; i < E; ++i) x[i] = token_embd[size_t(tokens[pos]) * E + i];

    for (int l = 0; l < c.n_layer; ++l) {
      const Layer& L = layers[size_t(l)];
      rmsnorm(xb.data(), x.data(), L.attn_norm.data(), E, c.rms_eps);
      matvec(q.data(), xb.data(), L.wq, E, Q);
      matvec(k.data(), xb.data(), L.wk, E, KV);
      matvec(v.data(), xb.data(), L.wv, E, KV);
      if (c.qkv_bias) {
        for (int i = 0; i < Q; ++i) q[i] += L.bq[i];
        for (int i = 0; i < KV; ++i) k[i] += L.bk[i];
        for (int i = 0; i < KV; ++i) v[i] += L.bv[i];
      }
      if (c.qk_norm) {
        for (int h = 0; h < NH; ++h) rmsnorm(&q[h * HD], &q[h * HD], L.q_norm.data(), HD, c.rms_eps);
        for (int h = 0; h < NKV; ++h) rmsnorm(&k[h * HD], &k[h * HD], L.k_norm.data(), HD, c.rms_eps);
      }

      // Rope: pair dims (2i, 2i+1) for Llama, (i, i + n_rot/2) for NEOX.
      const double p = c.rope_scaling == RopeScaling::Linear ? pos / double(c.rope_scale) : double(pos);
      for (int i = 0; i < c.n_rot / 2; ++i) {
        double freq = 1.0 / std::pow(double(c.rope_base), 2.0 * i / c.n_rot);
        if (!freq_factors.empty()) freq /= freq_factors[size_t(i)];
        const double fcr = std::cos(p * freq), fci = std::sin(p * freq);
        const int a = c.rope_style == RopeStyle::Norm ? 2 * i : i;
        const int b = c.rope_style == RopeStyle::Norm ? 2 * i + 1 : i + c.n_rot / 2;
        for (int h = 0; h < NH; ++h) {
          float* vec = &q[h * HD];
          const double v0 = vec[a], v1 = vec[b];
          vec[a] = float(v0 * fcr - v1 * fci);
          vec[b] = float(v0 * fci + v1 * fcr);
        }
        for (int h = 0; h < NKV; ++h) {
          float* vec = &k[h * HD];
          const double v0 = vec[a], v1 = vec[b];
          vec[a] = float(v0 * fcr - v1 * fci);
          vec[b] = float(v0 * fci + v1 * fcr);
        }
      }

      float* kc = &key_cache[(size_t(l) * T + pos) * KV];
      float* vc = &value_cache[(size_t(l) * T + pos) * KV];
      for (int i = 0; i < KV; ++i) { kc[i] = k[i]; vc[i] = v[i]; }

      // Multi-head attention; query head h reads kv head h / (NH / NKV).
      for (int h = 0; h < NH; ++h) {
        const float* qh = &q[h * HD];
        const int kvh = h / (NH / NKV);
        double mx = -1e300;
        for (int t = 0; t <= pos; ++t) {
          const float* kt = &key_cache[(size_t(l) * T + t) * KV + kvh * HD];
          double s = 0.0;
          for (int i = 0; i < HD; ++i) s += double(qh[i]) * kt[i];
          scores[t] = float(s / std::sqrt(double(HD)));
          mx = std::max(mx, double(scores[t]));
        }
        double sum = 0.0;
        for (int t = 0; t <= pos; ++t) {
          scores[t] = float(std::exp(scores[t] - mx));
          sum += scores[t];
        }
        for (int i = 0; i < HD; ++i) {
          double acc = 0.0;
          for (int t = 0; t <= pos; ++t) acc += scores[t] / sum * value_cache[(size_t(l) * T + t) * KV + kvh * HD + i];
          att[h * HD + i] = float(acc);
        }
      }
      matvec(xb2.data(), att.data(), L.wo, Q, E);
      for (int i = 0; i < E; ++i) x[i] += xb2[i];

      // SwiGLU FFN: w2(silu(w1 x) * w3 x).
      rmsnorm(xb.data(), x.data(), L.ffn_norm.data(), E, c.rms_eps);
      matvec(hb.data(), xb.data(), L.w1, E, F);
      matvec(hb2.data(), xb.data(), L.w3, E, F);
      for (int i = 0; i < F; ++i) hb[i] = float(hb[i] / (1.0 + std::exp(-double(hb[i])))) * hb2[i];
      matvec(xb.data(), hb.data(), L.w2, F, E);
      for (int i = 0; i < E; ++i) x[i] += xb[i];
    }

    rmsnorm(x.data(), x.data(), output_norm.data(), E, c.rms_eps);
    std::vector<float> logits(size_t(c.n_vocab));
    matvec(logits.data(), x.data(), output, E, c.n_vocab);
    all_logits.push_back(std::move(logits));
  }
  return all_logits;
}

}  // namespace dhi::model
