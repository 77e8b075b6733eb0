// Element-wise and per-row CPU kernels: RMS norm, bias/residual adds, SwiGLU,
// rotary embedding and causal attention over the KV cache (see ops.h).
#include "kernels/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/fp16.h"
#include "kernels/cpu/dot/attention_rows.h"
#include "kernels/cpu/dot/isa.h"

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

void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void rope(ThreadPool& pool, float* x, int64_t n_tokens, int32_t n_heads, int32_t head_dim,
          const int32_t* positions, const RopeParams& p) {
  const int32_t half = p.n_rot / 2;
  pool.parallel_for(n_tokens, 1, [&](int64_t begin, int64_t end) {
    // The cos/sin of the last position this thread rotated by, and the
    // parameters they were computed with: a decode step rotates Q and K of
    // every layer by the same position, and the angles (a pow, a cos and a sin
    // per pair) cost more than the rotation. The factors are compared by
    // value: another model's may sit at the address of a freed one's.
    thread_local std::vector<float> cs;
    thread_local int32_t cs_n_rot = 0, cs_pos = -1;
    thread_local float cs_base = 0.0f, cs_freq_scale = 0.0f;
    thread_local std::vector<float> cs_factors;
    const bool same_factors =
        p.freq_factors ? cs_factors.size() == size_t(half) &&
                             std::equal(cs_factors.begin(), cs_factors.end(), p.freq_factors)
                       : cs_factors.empty();
    const bool same_params =
        cs_n_rot == p.n_rot && cs_base == p.base && cs_freq_scale == p.freq_scale && same_factors;
    if (!same_params) {
      cs_n_rot = p.n_rot;
      cs_base = p.base;
      cs_freq_scale = p.freq_scale;
      if (p.freq_factors) {
        cs_factors.assign(p.freq_factors, p.freq_factors + half);
      } else {
        cs_factors.clear();
      }
      cs_pos = -1;
    }
    cs.resize(size_t(2 * half));
    for (int64_t t = begin; t < end; ++t) {
      if (positions[t] != cs_pos) {
        // Angles in double: positions reach 1e5 and the error of a float
        // angle would show in the rotation at long context.
        const double pos = double(positions[t]) * double(p.freq_scale);
        for (int32_t i = 0; i < half; ++i) {
          double theta = pos * std::pow(double(p.base), -2.0 * double(i) / double(p.n_rot));
          if (p.freq_factors) theta /= double(p.freq_factors[i]);
          cs[size_t(2 * i)] = float(std::cos(theta));
          cs[size_t(2 * i + 1)] = float(std::sin(theta));
        }
        cs_pos = positions[t];
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

// Cache positions per row-kernel call: a group whose query heads take two
// passes (more than the kernel's kMaxHeads) reads the block's keys or values
// again in the second pass, from L1 (32 positions of f16 at head_dim 128 are
// 8 KB).
constexpr int64_t kAttnBlock = 32;

// The attention row kernels of the ISA the matmuls use (see matmul_isa()).
const AttentionRowKernel& attention_rows() {
  static const AttentionRowKernel* k = [] {
    const Expected<Isa> isa = active_isa();
    const AttentionRowKernel* r = isa ? attention_row_kernel(*isa) : nullptr;
    return r ? r : attention_row_kernel(Isa::Generic);
  }();
  return *k;
}

}  // namespace

// One task per (query token, KV head): the group of query heads that share the
// KV head are adjacent in the query row, so the row kernels take them as n_q
// rows and read each key and value row once for all of them. Scores for every
// visible position first, then an exact softmax, then the weighted values (the
// reference's order of operations; no running-max rescaling).
void attention(ThreadPool& pool, const AttentionArgs& a) {
  if (a.n_tokens <= 0) return;
  const AttentionRowKernel& rk = attention_rows();
  const int32_t group = a.n_head / a.n_head_kv;
  const int64_t hd = a.head_dim;
  const int64_t q_dim = int64_t(a.n_head) * hd;
  // Tasks per chunk: short contexts make a task cheap, and waking the pool
  // then costs more than the work (estimate from the last query's length).
  const int64_t task_work = 2 * (int64_t(a.positions[a.n_tokens - 1]) + 1) * hd * group;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / task_work);
  // Both loops over one KV head's cache rows, for either element type.
  const auto run = [&](const auto* k_cache, const auto* v_cache, auto scores_fn, auto values_fn) {
    pool.parallel_for(a.n_tokens * a.n_head_kv, grain, [&](int64_t begin, int64_t end) {
      thread_local std::vector<float> scores;
      for (int64_t task = begin; task < end; ++task) {
        const int64_t t = task / a.n_head_kv;
        const int64_t kvh = task % a.n_head_kv;
        const int64_t n_pos = int64_t(a.positions[t]) + 1;
        const int64_t head0 = kvh * group;
        const float* q = a.q + t * q_dim + head0 * hd;
        float* o = a.out + t * q_dim + head0 * hd;
        const int64_t base = int64_t(a.seq_ids[t]) * a.seq_stride + kvh * a.head_stride;
        const size_t stride = size_t(a.pos_stride);
        scores.resize(size_t(group * n_pos));
        for (int64_t j0 = 0; j0 < n_pos; j0 += kAttnBlock) {
          const int64_t nb = std::min(kAttnBlock, n_pos - j0);
          scores_fn(q, size_t(hd), group, k_cache + base + j0 * a.pos_stride, stride, nb, hd,
                    a.scale, scores.data() + j0, size_t(n_pos));
        }
        for (int32_t g = 0; g < group; ++g) rk.softmax(scores.data() + g * n_pos, n_pos);
        std::fill(o, o + group * hd, 0.0f);
        for (int64_t j0 = 0; j0 < n_pos; j0 += kAttnBlock) {
          const int64_t nb = std::min(kAttnBlock, n_pos - j0);
          values_fn(scores.data() + j0, size_t(n_pos), group, v_cache + base + j0 * a.pos_stride,
                    stride, nb, hd, o, size_t(hd));
        }
      }
    });
  };
  if (a.kv_f16) {
    run(static_cast<const uint16_t*>(a.k_cache), static_cast<const uint16_t*>(a.v_cache),
        rk.scores_f16, rk.values_f16);
  } else {
    run(static_cast<const float*>(a.k_cache), static_cast<const float*>(a.v_cache), rk.scores,
        rk.values);
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
