// Private to the AVX-512 translation units of the row-interleaved layout
// (dot_avx512_kquant_interleaved.cpp, dot_avx512_legacy.cpp): the 16 x 16
// dword transpose that turns 16 rows' 64-byte runs into 16 interleaved lines
// (interleave.h) and back. Internal linkage, as dot_internal.h explains.
#pragma once

#include <immintrin.h>

// The unpack intrinsics of the transpose are built on an "undefined" vector,
// which GCC 12 reports as -Wuninitialized (in the including file too, where
// the transpose is inlined); never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace dhi::kernels::cpu {
namespace {

// Transposes 16 x 16 dwords in place: v[i] lane j <-> v[j] lane i.
inline void transpose16x16_epi32(__m512i* v) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    v[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    v[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    v[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    v[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // v[4a + b] now holds, in 128-bit lane L, column 4L + b of rows 4a..4a+3;
  // column c = 4L + b gathers lane L of v[b], v[4 + b], v[8 + b], v[12 + b].
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_i32x4(v[i], v[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_i32x4(v[i], v[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_i32x4(v[i + 8], v[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_i32x4(v[i + 8], v[i + 12], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    v[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
    v[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
    v[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xdd);
  }
}

}  // namespace
}  // namespace dhi::kernels::cpu
