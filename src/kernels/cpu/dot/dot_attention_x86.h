// Private to dot_avx2_attention.cpp and dot_avx512_attention.cpp: the attention
// row kernels of attention_rows.h written once over a vector-width traits type
// (V::W floats per register) and compiled with each ISA's flags.
//
// scores keeps four key rows' dot products in four accumulators and reduces
// them together (one horizontal reduction per four scores instead of one per
// score); values keeps 4 x W output floats in registers while it walks the
// value rows; softmax takes W scores per step with a polynomial exp (see
// vec_exp). Tails (n not a multiple of W, n_pos not a multiple of 4) take the
// same path one register or one element at a time, so any head size works.
//
// Internal linkage throughout (see dot_internal.h for why).
#pragma once

#include <immintrin.h>

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

  static void to_f32(const uint16_t* src, size_t src_stride, int64_t n_rows, int64_t n, float* dst) {
    for (int64_t r = 0; r < n_rows; ++r) {
      const uint16_t* s = src + size_t(r) * src_stride;
      float* d = dst + r * n;
      int64_t i = 0;
      for (; i + W <= n; i += W) V::store(d + i, V::load_half(s + i));
      for (; i < n; ++i) d[i] = _cvtsh_ss(s[i]);
    }
  }

  // dot(x, y) over the tail elements [i0, n).
  static float tail_dot(const float* x, const float* y, int64_t i0, int64_t n) {
    float t = 0.0f;
    for (int64_t i = i0; i < n; ++i) t += x[i] * y[i];
    return t;
  }

  static void scores(const float* q, size_t q_stride, int n_q, const float* k, size_t k_stride, int64_t n_pos,
                     int64_t n, float scale, float* s, size_t s_stride) {
    const int64_t n_vec = n / W * W;
    for (int iq = 0; iq < n_q; ++iq) {
      const float* qr = q + size_t(iq) * q_stride;
      float* sr = s + size_t(iq) * s_stride;
      int64_t j = 0;
      for (; j + 4 <= n_pos; j += 4) {
        const float* k0 = k + size_t(j) * k_stride;
        const float* k1 = k0 + k_stride;
        const float* k2 = k1 + k_stride;
        const float* k3 = k2 + k_stride;
        Vec a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
        for (int64_t i = 0; i < n_vec; i += W) {
          const Vec x = V::load(qr + i);
          a0 = V::fmadd(x, V::load(k0 + i), a0);
          a1 = V::fmadd(x, V::load(k1 + i), a1);
          a2 = V::fmadd(x, V::load(k2 + i), a2);
          a3 = V::fmadd(x, V::load(k3 + i), a3);
        }
        __m128 sum = attn_reduce4(V::fold(a0), V::fold(a1), V::fold(a2), V::fold(a3));
        if (n_vec < n) {
          sum = _mm_add_ps(sum, _mm_setr_ps(tail_dot(qr, k0, n_vec, n), tail_dot(qr, k1, n_vec, n),
                                            tail_dot(qr, k2, n_vec, n), tail_dot(qr, k3, n_vec, n)));
        }
        _mm_storeu_ps(sr + j, _mm_mul_ps(sum, _mm_set1_ps(scale)));
      }
      for (; j < n_pos; ++j) {
        const float* kr = k + size_t(j) * k_stride;
        Vec a = V::zero();
        for (int64_t i = 0; i < n_vec; i += W) a = V::fmadd(V::load(qr + i), V::load(kr + i), a);
        sr[j] = scale * (V::sum(a) + tail_dot(qr, kr, n_vec, n));
      }
    }
  }

  static void values(const float* p, size_t p_stride, int n_q, const float* v, size_t v_stride, int64_t n_pos,
                     int64_t n, float* o, size_t o_stride) {
    for (int iq = 0; iq < n_q; ++iq) {
      const float* pr = p + size_t(iq) * p_stride;
      float* orow = o + size_t(iq) * o_stride;
      int64_t c = 0;
      for (; c + 4 * W <= n; c += 4 * W) {
        Vec a0 = V::load(orow + c), a1 = V::load(orow + c + W);
        Vec a2 = V::load(orow + c + 2 * W), a3 = V::load(orow + c + 3 * W);
        for (int64_t j = 0; j < n_pos; ++j) {
          const Vec w = V::set1(pr[j]);
          const float* vr = v + size_t(j) * v_stride + c;
          a0 = V::fmadd(w, V::load(vr), a0);
          a1 = V::fmadd(w, V::load(vr + W), a1);
          a2 = V::fmadd(w, V::load(vr + 2 * W), a2);
          a3 = V::fmadd(w, V::load(vr + 3 * W), a3);
        }
        V::store(orow + c, a0);
        V::store(orow + c + W, a1);
        V::store(orow + c + 2 * W, a2);
        V::store(orow + c + 3 * W, a3);
      }
      for (; c + W <= n; c += W) {
        Vec a = V::load(orow + c);
        for (int64_t j = 0; j < n_pos; ++j) a = V::fmadd(V::set1(pr[j]), V::load(v + size_t(j) * v_stride + c), a);
        V::store(orow + c, a);
      }
      for (; c < n; ++c) {
        float a = orow[c];
        for (int64_t j = 0; j < n_pos; ++j) a += pr[j] * v[size_t(j) * v_stride + size_t(c)];
        orow[c] = a;
      }
    }
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

  static constexpr AttentionRowKernel kKernel{&to_f32, &scores, &values, &softmax};
};

}  // namespace
}  // namespace dhi::kernels::cpu
