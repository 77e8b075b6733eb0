// Private to dot_avx2_attention.cpp and dot_avx512_attention.cpp: the attention
// row kernels of attention_rows.h written once over a vector-width traits type
// (V::W floats per register) and compiled with each ISA's flags.
//
// scores and values run the query rows of a group in passes of at most
// V::kMaxHeads rows, so that a key or value vector, loaded (and widened from
// f16) once, feeds every row of the pass from a register. scores keeps
// kMaxHeads x V::kScoreKeys dot products in accumulators and reduces each
// head's key rows together; values keeps kMaxHeads x V::kValueCols vectors of
// output while it walks the value rows. Both prefetch the rows kPrefetchBytes
// ahead into L2 (the hardware prefetchers alone leave a core's one stream of
// cache rows latency-bound). softmax takes W scores per step with
// a polynomial exp (see vec_exp). Tails (n not a multiple of W, n_pos not a
// multiple of the key step) take the same path one register or one element at
// a time, so any head size works.
//
// Internal linkage throughout (see dot_internal.h for why).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/dot/attention_rows.h"

namespace dhi::kernels::cpu {
namespace {

// [sum(a), sum(b), sum(c), sum(d)] of four 8-float vectors.
inline __m128 attn_reduce4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

template <typename V>
struct AttnX86 {
  using Vec = typename V::Vec;
  static constexpr int64_t W = V::W;

  static constexpr int kMaxHeads = V::kMaxHeads;
  static constexpr int kKeys = V::kScoreKeys;
  static constexpr int kCols = V::kValueCols;

  // How far ahead of the row being read its successors are prefetched: 64
  // f16 rows of 128 elements. kernels_attention_bench, 1.5B and 7B shapes at
  // ctx 2048 and 8192, one run: 16 KB ahead 25-30% faster than no prefetch,
  // 8 KB and 32 KB ahead slower than 16 KB, into L1 instead of L2 slower.
  static constexpr size_t kPrefetchBytes = 16384;

  // Rows between the row read and the row prefetched (rows of n elements).
  template <typename Elem>
  static size_t prefetch_rows(int64_t n) {
    return std::max<size_t>(1, kPrefetchBytes / (size_t(n) * sizeof(Elem)));
  }
  // Prefetches the line of p + ahead elements. It may lie past the last cache
  // row: a prefetch never faults, and the address is formed as an integer,
  // not as a pointer past the array.
  template <typename Elem>
  static void prefetch(const Elem* p, size_t ahead) {
    _mm_prefetch(
        reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + ahead * sizeof(Elem)),
        _MM_HINT_T1);
  }

  static Vec load(const float* p) { return V::load(p); }
  static Vec load(const uint16_t* p) { return V::load_half(p); }
  static float scalar(float x) { return x; }
  static float scalar(uint16_t h) { return _cvtsh_ss(h); }

  // Calls f.template operator()<H>() for the compile-time H == h (1..kMaxHeads).
  template <int H = 1, typename F>
  static void with_heads(int h, F&& f) {
    if constexpr (H < kMaxHeads) {
      if (h != H) return with_heads<H + 1>(h, f);
    }
    f.template operator()<H>();
  }

  // Query rows in passes of at most kMaxHeads, as even as possible (7 rows as
  // 4 + 3, not 6 + 1): f(first row, H) per pass.
  template <typename F>
  static void head_passes(int n_q, F&& f) {
    const int passes = (n_q + kMaxHeads - 1) / kMaxHeads;
    for (int p = 0, q0 = 0; p < passes; ++p) {
      const int h = (n_q - q0 + (passes - p) - 1) / (passes - p);
      with_heads(h, [&]<int H>() { f.template operator()<H>(q0); });
      q0 += h;
    }
  }

  // dot(x, y) over the tail elements [i0, n).
  template <typename Elem>
  static float tail_dot(const float* x, const Elem* y, int64_t i0, int64_t n) {
    float t = 0.0f;
    for (int64_t i = i0; i < n; ++i) t += x[i] * scalar(y[i]);
    return t;
  }

  // Scores of H query rows against the KT key rows from k.
  // ahead: elements from a key row to the one to prefetch.
  template <int H, int KT, typename Elem>
  static void score_tile(const float* q, size_t q_stride, const Elem* k, size_t k_stride, int64_t n,
                         float scale, float* s, size_t s_stride, size_t ahead) {
    const int64_t n_vec = n / W * W;
    Vec acc[H][KT];
    for (auto& row : acc)
      for (Vec& a : row) a = V::zero();
    for (int64_t i = 0; i < n_vec; i += W) {
      if ((i * int64_t(sizeof(Elem))) % 64 == 0)  // once per cache line
        for (int r = 0; r < KT; ++r) prefetch(k + size_t(r) * k_stride + size_t(i), ahead);
      Vec kv[KT];
      for (int r = 0; r < KT; ++r) kv[r] = load(k + size_t(r) * k_stride + i);
      for (int h = 0; h < H; ++h) {
        const Vec x = V::load(q + size_t(h) * q_stride + i);
        for (int r = 0; r < KT; ++r) acc[h][r] = V::fmadd(x, kv[r], acc[h][r]);
      }
    }
    for (int h = 0; h < H; ++h) {
      const float* qr = q + size_t(h) * q_stride;
      float* sr = s + size_t(h) * s_stride;
      if constexpr (KT == 4) {
        __m128 sum = attn_reduce4(V::fold(acc[h][0]), V::fold(acc[h][1]), V::fold(acc[h][2]),
                                  V::fold(acc[h][3]));
        if (n_vec < n) {
          sum = _mm_add_ps(
              sum, _mm_setr_ps(tail_dot(qr, k, n_vec, n), tail_dot(qr, k + k_stride, n_vec, n),
                               tail_dot(qr, k + 2 * k_stride, n_vec, n),
                               tail_dot(qr, k + 3 * k_stride, n_vec, n)));
        }
        _mm_storeu_ps(sr, _mm_mul_ps(sum, _mm_set1_ps(scale)));
      } else {
        for (int r = 0; r < KT; ++r)
          sr[r] = scale * (V::sum(acc[h][r]) + tail_dot(qr, k + size_t(r) * k_stride, n_vec, n));
      }
    }
  }

  template <typename Elem>
  static void scores(const float* q, size_t q_stride, int n_q, const Elem* k, size_t k_stride,
                     int64_t n_pos, int64_t n, float scale, float* s, size_t s_stride) {
    head_passes(n_q, [&]<int H>(int q0) {
      const float* qh = q + size_t(q0) * q_stride;
      float* sh = s + size_t(q0) * s_stride;
      const size_t ahead = prefetch_rows<Elem>(n) * k_stride;
      int64_t j = 0;
      for (; j + kKeys <= n_pos; j += kKeys)
        score_tile<H, kKeys>(qh, q_stride, k + size_t(j) * k_stride, k_stride, n, scale, sh + j,
                             s_stride, ahead);
      for (; j < n_pos; ++j)
        score_tile<H, 1>(qh, q_stride, k + size_t(j) * k_stride, k_stride, n, scale, sh + j,
                         s_stride, ahead);
    });
  }

  // o rows += the p-weighted sum of the n_pos value rows from v, over the CT
  // vectors of columns from v and o; ahead as in score_tile.
  template <int H, int CT, typename Elem>
  static void value_tile(const float* p, size_t p_stride, const Elem* v, size_t v_stride,
                         int64_t n_pos, float* o, size_t o_stride, size_t ahead) {
    constexpr int kVecsPerLine = std::max<int>(1, int(64 / (W * sizeof(Elem))));
    Vec acc[H][CT];
    for (int h = 0; h < H; ++h)
      for (int c = 0; c < CT; ++c) acc[h][c] = V::load(o + size_t(h) * o_stride + size_t(c * W));
    for (int64_t j = 0; j < n_pos; ++j) {
      const Elem* vr = v + size_t(j) * v_stride;
      for (int c = 0; c < CT; c += kVecsPerLine) prefetch(vr + size_t(c * W), ahead);
      Vec vv[CT];
      for (int c = 0; c < CT; ++c) vv[c] = load(vr + c * W);
      for (int h = 0; h < H; ++h) {
        const Vec w = V::set1(p[size_t(h) * p_stride + size_t(j)]);
        for (int c = 0; c < CT; ++c) acc[h][c] = V::fmadd(w, vv[c], acc[h][c]);
      }
    }
    for (int h = 0; h < H; ++h)
      for (int c = 0; c < CT; ++c) V::store(o + size_t(h) * o_stride + size_t(c * W), acc[h][c]);
  }

  template <typename Elem>
  static void values(const float* p, size_t p_stride, int n_q, const Elem* v, size_t v_stride,
                     int64_t n_pos, int64_t n, float* o, size_t o_stride) {
    head_passes(n_q, [&]<int H>(int q0) {
      const float* ph = p + size_t(q0) * p_stride;
      float* oh = o + size_t(q0) * o_stride;
      const size_t ahead = prefetch_rows<Elem>(n) * v_stride;
      int64_t c = 0;
      for (; c + kCols * W <= n; c += kCols * W)
        value_tile<H, kCols>(ph, p_stride, v + c, v_stride, n_pos, oh + c, o_stride, ahead);
      for (; c + W <= n; c += W)
        value_tile<H, 1>(ph, p_stride, v + c, v_stride, n_pos, oh + c, o_stride, ahead);
      for (; c < n; ++c) {
        for (int h = 0; h < H; ++h) {
          float a = oh[size_t(h) * o_stride + size_t(c)];
          for (int64_t j = 0; j < n_pos; ++j)
            a += ph[size_t(h) * p_stride + size_t(j)] * scalar(v[size_t(j) * v_stride + size_t(c)]);
          oh[size_t(h) * o_stride + size_t(c)] = a;
        }
      }
    });
  }

  // exp(x) for x <= 0 (scores less their maximum): x = n ln2 + r with
  // |r| <= ln2 / 2 (ln2 in two parts, Cody and Waite, so r is exact to f32),
  // exp(r) by its Taylor polynomial of degree 6 (truncation error below
  // 1.2e-7 relative), times 2^n (V::scale2, which underflows to 0 as exp does).
  // x is first raised to -104, where exp is already 0 in f32, so that n and r
  // stay small for any finite score difference.
  static Vec vec_exp(Vec x) {
    x = V::max(x, V::set1(-104.0f));
    const Vec n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
    Vec r = V::fmadd(n, V::set1(-0.693145751953125f), x);
    r = V::fmadd(n, V::set1(-1.42860682030941723212e-6f), r);
    Vec p = V::set1(1.0f / 720.0f);
    p = V::fmadd(p, r, V::set1(1.0f / 120.0f));
    p = V::fmadd(p, r, V::set1(1.0f / 24.0f));
    p = V::fmadd(p, r, V::set1(1.0f / 6.0f));
    p = V::fmadd(p, r, V::set1(0.5f));
    p = V::fmadd(p, r, V::set1(1.0f));
    p = V::fmadd(p, r, V::set1(1.0f));
    return V::scale2(p, n);
  }

  static void softmax(float* s, int64_t n) {
    const int64_t n_vec = n / W * W;
    float mx = s[0];
    if (n_vec > 0) {
      Vec m = V::load(s);
      for (int64_t j = W; j < n_vec; j += W) m = V::max(m, V::load(s + j));
      mx = V::hmax(m);
    }
    for (int64_t j = n_vec; j < n; ++j) mx = std::max(mx, s[j]);
    const Vec vmx = V::set1(mx);
    Vec sum = V::zero();
    for (int64_t j = 0; j < n_vec; j += W) {
      const Vec e = vec_exp(V::sub(V::load(s + j), vmx));
      V::store(s + j, e);
      sum = V::add(sum, e);
    }
    float total = V::sum(sum);
    for (int64_t j = n_vec; j < n; ++j) total += (s[j] = std::exp(s[j] - mx));
    const float inv = 1.0f / total;
    const Vec vinv = V::set1(inv);
    for (int64_t j = 0; j < n_vec; j += W) V::store(s + j, V::mul(V::load(s + j), vinv));
    for (int64_t j = n_vec; j < n; ++j) s[j] *= inv;
  }

  static constexpr AttentionRowKernel kKernel{&scores<float>, &scores<uint16_t>, &values<float>,
                                              &values<uint16_t>, &softmax};
};

}  // namespace
}  // namespace dhi::kernels::cpu
