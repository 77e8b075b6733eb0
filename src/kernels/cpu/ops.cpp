// Element-wise and per-row CPU kernels: RMS norm, bias/residual adds, SwiGLU,
// rotary embedding and causal attention over the KV cache (see ops.h).
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/fp16.h"
#include "kernels/cpu/ops.h"

namespace dhi::kernels::cpu {

void rms_norm(ThreadPool& pool, const float* x, const float* weight, int64_t n_rows, int64_t n,
              float eps, float* y) {
  pool.parallel_for(n_rows, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * n;
      float* yr = y + r * n;
      // The sum of squares in double: rows are up to ~16K wide and the norm's
      // error would otherwise grow with the width.
      double ss = 0.0;
      for (int64_t i = 0; i < n; ++i) ss += double(xr[i]) * double(xr[i]);
      const float inv = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * inv * weight[i];
    }
  });
}

void add_bias(float* y, const float* b, int64_t n_rows, int64_t n) {
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t i = 0; i < n; ++i) y[r * n + i] += b[i];
  }
}

void add(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void silu_mul(ThreadPool& pool, float* gate, const float* up, int64_t n) {
  constexpr int64_t kChunk = 4096;
  pool.parallel_for((n + kChunk - 1) / kChunk, 1, [&](int64_t begin, int64_t end) {
    const int64_t i1 = std::min(n, end * kChunk);
    for (int64_t i = begin * kChunk; i < i1; ++i) {
      const float g = gate[i];
      gate[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  });
}

void rope(ThreadPool& pool, float* x, int64_t n_tokens, int32_t n_heads, int32_t head_dim,
          const int32_t* positions, const RopeParams& p) {
  const int32_t half = p.n_rot / 2;
  pool.parallel_for(n_tokens, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> cs;
    cs.resize(size_t(2 * half));
    for (int64_t t = begin; t < end; ++t) {
      // Angles in double: positions reach 1e5 and the error of a float angle
      // would show in the rotation at long context.
      const double pos = double(positions[t]) * double(p.freq_scale);
      for (int32_t i = 0; i < half; ++i) {
        double theta = pos * std::pow(double(p.base), -2.0 * double(i) / double(p.n_rot));
        if (p.freq_factors) theta /= double(p.freq_factors[i]);
        cs[size_t(2 * i)] = float(std::cos(theta));
        cs[size_t(2 * i + 1)] = float(std::sin(theta));
      }
      for (int32_t h = 0; h < n_heads; ++h) {
        float* v = x + (t * n_heads + h) * head_dim;
        for (int32_t i = 0; i < half; ++i) {
          const int32_t a = p.pairing == RopePairing::Adjacent ? 2 * i : i;
          const int32_t b = p.pairing == RopePairing::Adjacent ? 2 * i + 1 : i + half;
          const float c = cs[size_t(2 * i)], s = cs[size_t(2 * i + 1)];
          const float x0 = v[a], x1 = v[b];
          v[a] = x0 * c - x1 * s;
          v[b] = x0 * s + x1 * c;
        }
      }
    }
  });
}

const float* f16_to_f32_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t i = 0; i < 65536; ++i) t[i] = fp16_to_f32(uint16_t(i));
    return t;
  }();
  return table.data();
}

namespace {

template <typename Elem>
float load(const Elem* p, int64_t i, const float* table) {
  if constexpr (std::is_same_v<Elem, float>) {
    (void)table;
    return p[i];
  } else {
    return table[p[i]];
  }
}

template <typename Elem>
void attention_impl(ThreadPool& pool, const AttentionArgs& a) {
  const int32_t group = a.n_head / a.n_head_kv;
  const int64_t kv_dim = int64_t(a.n_head_kv) * a.head_dim;
  const int64_t q_dim = int64_t(a.n_head) * a.head_dim;
  const auto* kc = static_cast<const Elem*>(a.k_cache);
  const auto* vc = static_cast<const Elem*>(a.v_cache);
  const float* table = std::is_same_v<Elem, float> ? nullptr : f16_to_f32_table();
  // Heads per chunk: short contexts make a head cheap, and waking the pool
  // then costs more than the work (estimate from the last query's length).
  const int64_t head_work = 2 * (int64_t(a.positions[a.n_tokens - 1]) + 1) * a.head_dim;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / head_work);
  pool.parallel_for(a.n_tokens * a.n_head, grain, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t t = task / a.n_head;
      const int32_t h = int32_t(task % a.n_head);
      const int32_t kvh = h / group;
      const int64_t n_pos = int64_t(a.positions[t]) + 1;
      const float* q = a.q + t * q_dim + int64_t(h) * a.head_dim;
      const int64_t base = int64_t(a.seq_ids[t]) * a.seq_stride + int64_t(kvh) * a.head_dim;
      scores.resize(size_t(n_pos));
      float mx = -INFINITY;
      for (int64_t j = 0; j < n_pos; ++j) {
        float s;
        if constexpr (std::is_same_v<Elem, float>) {
          s = dot_f32(q, kc + base + j * kv_dim, a.head_dim);
        } else {
          s = 0.0f;
          const Elem* kr = kc + base + j * kv_dim;
          for (int32_t d = 0; d < a.head_dim; ++d) s += q[d] * load(kr, d, table);
        }
        s *= a.scale;
        scores[size_t(j)] = s;
        mx = std::max(mx, s);
      }
      float sum = 0.0f;
      for (int64_t j = 0; j < n_pos; ++j) {
        scores[size_t(j)] = std::exp(scores[size_t(j)] - mx);
        sum += scores[size_t(j)];
      }
      const float inv = 1.0f / sum;
      float* o = a.out + t * q_dim + int64_t(h) * a.head_dim;
      std::fill(o, o + a.head_dim, 0.0f);
      for (int64_t j = 0; j < n_pos; ++j) {
        const float w = scores[size_t(j)] * inv;
        const Elem* vr = vc + base + j * kv_dim;
        for (int32_t d = 0; d < a.head_dim; ++d) o[d] += w * load(vr, d, table);
      }
    }
  });
}

}  // namespace

void attention(ThreadPool& pool, const AttentionArgs& a) {
  if (a.n_tokens <= 0) return;
  if (a.kv_f16) {
    attention_impl<uint16_t>(pool, a);
  } else {
    attention_impl<float>(pool, a);
  }
}

void f32_to_f16_row(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_fp16(x[i]);
}

void f16_to_f32_row(const uint16_t* x, float* y, int64_t n) {
  const float* table = f16_to_f32_table();
  for (int64_t i = 0; i < n; ++i) y[i] = table[x[i]];
}

}  // namespace dhi::kernels::cpu
