// AVX-512 (F/BW/DQ/VL + VNNI) kernels for the float and legacy quant types: the
// shared x86 kernels of dot_x86_legacy.h built with vpdpbusd (one instruction
// for the u8 x s8 block products, no int16 saturation step) and 32 vector
// registers, which allow 4 x 4 register tiles.
//
// Prefill of the symmetric types (Q4_0, Q5_0, Q8_0) against 16 or more tokens
// takes an outer-product kernel instead. The activations of 16 tokens are laid
// out once per call token-minor: for each block, eight vectors whose lane t holds
// token t's bytes 4g..4g+3 (made unsigned by adding 128). One vpdpbusd with a
// weight dword broadcast from memory then advances 16 (row, token) sums by four
// products each: a block is 8 instructions for 16 tokens, with no horizontal
// reduction, where the register-tile kernel spends about five instructions per
// (row, token) pair and block. Per block and row:
//   sum_i w_i a_i = sum_i c_i (a_i + 128) - 128 sum_i c_i - o sum_i a_i
// with c the signed codes (Q8_0: q, o = 0; Q4_0/Q5_0: the unsigned codes,
// o = 8/16), so the corrections are a per-(row, block) constant and a per-
// (token, block) activation sum; the block's float scale then multiplies 16
// integer sums at once.
//
// Q8_0 also has kernels on the row-interleaved layout (interleave.h) that the
// model loader uses on this ISA: decode and small batches, prefill on rows
// unpacked from the groups into the outer-product kernel, and the vectorised
// interleaving (see the section below).
#define DHI_X86_VNNI 1
#include "kernels/cpu/dot/dot_x86_legacy.h"
#include "kernels/cpu/dot/interleave.h"
#include "kernels/cpu/dot/transpose_avx512.h"

// GCC 12's avx512fintrin.h builds several intrinsics on a self-initialised
// "undefined" vector that -Wmaybe-uninitialized reports; the value is never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

namespace dhi::kernels::cpu {
namespace {

constexpr int kTileTokens = 16;
constexpr int kOuterRows = 4;  // rows per pass: 8 independent vpdpbusd chains

// One block of a 16-token tile, token-minor.
struct OuterBlock {
  alignas(64) uint8_t ua[8][kTileTokens][4];  // a + 128, bytes 4g..4g+3 of token t
  alignas(64) float d[kTileTokens];           // the tokens' block scales
  alignas(64) int32_t sum[kTileTokens];       // sum of the tokens' 32 quants
};

void build_outer_tile(const uint8_t* act, size_t act_stride, int64_t t0, int64_t n_blocks, OuterBlock* out) {
  for (int t = 0; t < kTileTokens; ++t) {
    const uint8_t* row = act + size_t(t0 + t) * act_stride;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = row + size_t(b) * sizeof(BlockQ8_0);
      OuterBlock& o = out[b];
      o.d[t] = half_to_float(blk + offsetof(BlockQ8_0, d));
      const uint8_t* qs = blk + offsetof(BlockQ8_0, qs);
      int32_t s = 0;
      for (int i = 0; i < kQK; ++i) s += int8_t(qs[i]);
      o.sum[t] = s;
      for (int g = 0; g < 8; ++g) {
        const uint32_t w = load_unaligned<uint32_t>(qs + 4 * g) ^ 0x80808080u;
        std::memcpy(o.ua[g][t], &w, 4);
      }
    }
  }
}

// The signed codes c of a block (see the file comment) and the offset o.
template <typename W>
__m256i signed_codes(const uint8_t* block) {
  if constexpr (std::is_same_v<W, Q8_0>) {
    return load256(block + offsetof(BlockQ8_0, qs));
  } else {
    return W::codes(block);
  }
}
template <typename W>
constexpr int kCodeOffset = std::is_same_v<W, Q8_0> ? 0 : W::kOffset;

// Unpacked rows (kOuterRows per pass, or an interleaved group's 16): their
// codes as bytes (so vpdpbusd can broadcast a dword of them from memory), block
// scales, and 128 * sum(c).
struct OuterRows {
  std::vector<uint8_t> codes;   // [row][block][32]
  std::vector<float> d;         // [row][block]
  std::vector<int32_t> c128;    // [row][block]

  void resize(int64_t rows, int64_t n_blocks) {
    codes.resize(size_t(rows * n_blocks * kQK));
    d.resize(size_t(rows * n_blocks));
    c128.resize(size_t(rows * n_blocks));
  }
};

template <typename W>
void unpack_rows(const GemmArgs& a, int64_t r0, int rows, int64_t n_blocks, OuterRows& o) {
  o.resize(kOuterRows, n_blocks);
  for (int r = 0; r < rows; ++r) {
    const uint8_t* wr = a.w_row(r0 + r);
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = wr + size_t(b) * W::kBytes;
      const __m256i c = signed_codes<W>(blk);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.codes.data() + size_t((r * n_blocks + b) * kQK)), c);
      // sum of the 32 signed bytes: vpdpbusd against 1s (u8) as the unsigned side.
      const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), c);
      __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
      h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
      o.c128[size_t(r * n_blocks + b)] = 128 * _mm_cvtsi128_si32(h);
      o.d[size_t(r * n_blocks + b)] = half_to_float(blk);  // d is the first field of every symmetric block
    }
  }
}

// Rows r0..r0+R-1 (rows base.. of `rows`) against one tile.
template <typename W, int R>
void outer_pass(const GemmArgs& a, const OuterRows& rows, int base, int64_t n_blocks, const OuterBlock* tile,
                int64_t r0, int64_t t0) {
  __m512 acc[R];
  for (auto& v : acc) v = _mm512_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const OuterBlock& tb = tile[b];
    __m512i even[R], odd[R];
    for (int r = 0; r < R; ++r) even[r] = odd[r] = _mm512_setzero_si512();
    const uint8_t* code[R];
    for (int r = 0; r < R; ++r) code[r] = rows.codes.data() + size_t(((base + r) * n_blocks + b) * kQK);
    for (int g = 0; g < 8; g += 2) {
      const __m512i u0 = _mm512_load_si512(tb.ua[g]);
      const __m512i u1 = _mm512_load_si512(tb.ua[g + 1]);
      for (int r = 0; r < R; ++r) {
        even[r] = _mm512_dpbusd_epi32(even[r], u0, _mm512_set1_epi32(load_unaligned<int32_t>(code[r] + 4 * g)));
        odd[r] = _mm512_dpbusd_epi32(odd[r], u1, _mm512_set1_epi32(load_unaligned<int32_t>(code[r] + 4 * g + 4)));
      }
    }
    __m512i off = _mm512_setzero_si512();
    if constexpr (kCodeOffset<W> != 0) off = _mm512_mullo_epi32(_mm512_load_si512(tb.sum), _mm512_set1_epi32(kCodeOffset<W>));
    const __m512 da = _mm512_load_ps(tb.d);
    for (int r = 0; r < R; ++r) {
      const size_t i = size_t((base + r) * n_blocks + b);
      const __m512i corr = _mm512_add_epi32(_mm512_set1_epi32(rows.c128[i]), off);
      const __m512i isum = _mm512_sub_epi32(_mm512_add_epi32(even[r], odd[r]), corr);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(_mm512_set1_ps(rows.d[i]), da), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    alignas(64) float v[kTileTokens];
    _mm512_store_ps(v, acc[r]);
    for (int t = 0; t < kTileTokens; ++t) a.at(r0 + r, t0 + t) = v[t];
  }
}

// The outer-product passes over rows [0, n_rows) of `a` and its first n_tiles
// 16-token tiles. unpack(r0, nr, rows) puts rows r0..r0+nr-1 into `rows` (or
// finds them there) and returns the index of row r0 in it.
template <typename W, typename Unpack>
void outer_tiles(const GemmArgs& a, int64_t n_rows, int64_t n_tiles, Unpack&& unpack) {
  const int64_t n_blocks = a.n / kQK;
  thread_local std::vector<OuterBlock> tiles;
  thread_local OuterRows rows;
  tiles.resize(size_t(n_tiles * n_blocks));
  for (int64_t i = 0; i < n_tiles; ++i) build_outer_tile(a.act, a.act_stride, kTileTokens * i, n_blocks, &tiles[size_t(i * n_blocks)]);
  for (int64_t r0 = 0; r0 < n_rows; r0 += kOuterRows) {
    const int nr = int(std::min<int64_t>(kOuterRows, n_rows - r0));
    const int base = unpack(r0, nr, rows);
    for (int64_t i = 0; i < n_tiles; ++i) {
      const OuterBlock* tile = &tiles[size_t(i * n_blocks)];
      switch (nr) {
        case 4: outer_pass<W, 4>(a, rows, base, n_blocks, tile, r0, kTileTokens * i); break;
        case 3: outer_pass<W, 3>(a, rows, base, n_blocks, tile, r0, kTileTokens * i); break;
        case 2: outer_pass<W, 2>(a, rows, base, n_blocks, tile, r0, kTileTokens * i); break;
        default: outer_pass<W, 1>(a, rows, base, n_blocks, tile, r0, kTileTokens * i); break;
      }
    }
  }
}

template <typename W>
void outer_gemm(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* act, size_t act_stride,
                int64_t n_tokens, float* out, size_t out_stride) {
  constexpr DotKernel kTiled = quant_kernel<W>();
  if (n_tokens < kTileTokens) {
    kTiled.gemm(n, w, w_stride, n_rows, act, act_stride, n_tokens, out, out_stride);
    return;
  }
  const GemmArgs a{n, static_cast<const uint8_t*>(w), w_stride, static_cast<const uint8_t*>(act), act_stride, out,
                   out_stride};
  const int64_t n_tiles = n_tokens / kTileTokens;
  outer_tiles<W>(a, n_rows, n_tiles, [&](int64_t r0, int nr, OuterRows& rows) {
    unpack_rows<W>(a, r0, nr, n / kQK, rows);
    return 0;
  });
  if (const int64_t rest = n_tokens - kTileTokens * n_tiles; rest > 0) {
    kTiled.gemm(n, w, w_stride, n_rows, a.act + size_t(kTileTokens * n_tiles) * act_stride, act_stride, rest,
                out + size_t(kTileTokens * n_tiles) * out_stride, out_stride);
  }
}

// ---- Q8_0 on the row-interleaved layout (interleave.h) -------------------------
//
// A column (16 rows of one block, 544 bytes): the rows' fp16 d at 0, then qs
// unit u (bytes 4u..4u+3) of row r at 32 + 64u + 4r. Lane r of every vector
// below is row r. The quants stay signed in memory (the layout is a byte
// permutation, so nothing else that reads it must undo a transform); the
// kernel flips their sign bits in registers (q + 128, one vpxord per line
// shared by the tokens) and seeds vpdpbusd with -128 * (sum of the activation
// dword), as the file-layout kernel does, so each lane gets the exact dword
// sum of q * a of its row.
//
// The results are bit-identical to the file layout's: decode and small
// batches keep QuantTile's eight partial sums per (row, token), one per dword
// g of the block, each advanced by an FMA of float(sum_g) and d_w * d_a, and
// add them in hsum's order at the end (the file layout's Q8_0 kernel on this
// ISA has always summed in that order, which is not the generic kernel's
// block-serial order: results agree with DHI_FORCE_ISA=generic to rounding,
// as they did before). Prefill (16-token tiles) runs the outer-product kernel
// above on rows unpacked 16 at a time from the columns.
constexpr size_t kQ8Column = kInterleaveRows * sizeof(BlockQ8_0);
constexpr size_t kQ8Quants = 2 * kInterleaveRows;  // the d's come first
// Eight partial-sum vectors per token: two tokens fill half the registers.
constexpr int kQ8GroupTokens = 2;
// No software prefetch: a thread's groups are one sequential stream, which
// the hardware prefetchers follow (prefetching 1-17 KB ahead into L1 or L2
// measured the same or slower from DRAM, unlike the K-quant columns).

inline __m512i load512(const uint8_t* p) { return _mm512_loadu_si512(p); }

template <int T>
void q8_group(const uint8_t* grp, int64_t n_blocks, const uint8_t* const* arow, float* out, size_t out_stride) {
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  __m512 part[T][8];
  for (auto& p : part)
    for (__m512& v : p) v = _mm512_setzero_ps();
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* col = grp + size_t(b) * kQ8Column;
    const __m512 dw = _mm512_cvtph_ps(load256(col));
    const uint8_t* qa[T];
    alignas(32) int32_t seed[T][8];
    __m512 scale[T];
    for (int t = 0; t < T; ++t) {
      const uint8_t* ab = arow[t] + size_t(b) * sizeof(BlockQ8_0);
      qa[t] = ab + offsetof(BlockQ8_0, qs);
      const __m256i z = _mm256_setzero_si256();
      _mm256_store_si256(reinterpret_cast<__m256i*>(seed[t]),
                         _mm256_sub_epi32(z, _mm256_dpbusd_epi32(z, _mm256_set1_epi8(char(0x80)), load256(qa[t]))));
      scale[t] = _mm512_mul_ps(dw, _mm512_set1_ps(half_to_float(ab)));
    }
    for (int g = 0; g < 8; ++g) {
      const __m512i wu = _mm512_xor_si512(load512(col + kQ8Quants + 64 * g), flip);
      for (int t = 0; t < T; ++t) {
        const __m512i isum = _mm512_dpbusd_epi32(_mm512_set1_epi32(seed[t][g]), wu,
                                                 _mm512_set1_epi32(load_unaligned<int32_t>(qa[t] + 4 * g)));
        part[t][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale[t], part[t][g]);
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    const __m512* p = part[t];
    const __m512 even = _mm512_add_ps(_mm512_add_ps(p[0], p[4]), _mm512_add_ps(p[2], p[6]));
    const __m512 odd = _mm512_add_ps(_mm512_add_ps(p[1], p[5]), _mm512_add_ps(p[3], p[7]));
    _mm512_storeu_ps(out + size_t(t) * out_stride, _mm512_add_ps(even, odd));
  }
}

// unpack_rows' result for the 16 rows of a group, straight from its columns:
// one dword transpose turns two columns' 16 quant lines into each row's codes
// of both blocks; the code sums are vpdpbusd against ones on the same lines.
void unpack_q8_group(const uint8_t* grp, int64_t n_blocks, OuterRows& o) {
  o.resize(kInterleaveRows, n_blocks);
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t b = 0; b < n_blocks; b += 2) {
    const int nb = n_blocks - b >= 2 ? 2 : 1;
    __m512i v[16];
    for (int k = 0; k < 2; ++k) {
      if (k == nb) {
        for (int u = 0; u < 8; ++u) v[8 * k + u] = _mm512_setzero_si512();
        continue;
      }
      const uint8_t* col = grp + size_t(b + k) * kQ8Column;
      __m512i sum = _mm512_setzero_si512();
      for (int u = 0; u < 8; ++u) {
        v[8 * k + u] = load512(col + kQ8Quants + 64 * u);
        sum = _mm512_dpbusd_epi32(sum, ones, v[8 * k + u]);
      }
      alignas(64) int32_t c128[16];
      alignas(64) float d[16];
      _mm512_store_si512(c128, _mm512_slli_epi32(sum, 7));
      _mm512_store_ps(d, _mm512_cvtph_ps(load256(col)));
      for (int r = 0; r < kInterleaveRows; ++r) {
        o.c128[size_t(r * n_blocks + b + k)] = c128[r];
        o.d[size_t(r * n_blocks + b + k)] = d[r];
      }
    }
    transpose16x16_epi32(v);
    for (int r = 0; r < kInterleaveRows; ++r) {
      uint8_t* dst = o.codes.data() + size_t((r * n_blocks + b) * kQK);
      if (nb == 2) {
        _mm512_storeu_si512(dst, v[r]);
      } else {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_castsi512_si256(v[r]));
      }
    }
  }
}

void q8_gemm_interleaved(int64_t n, const void* w, int64_t n_groups, const void* act, size_t act_stride,
                         int64_t n_tokens, float* out, size_t out_stride) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* ab = static_cast<const uint8_t*>(act);
  const int64_t n_blocks = n / kQK;
  const size_t group_bytes = size_t(n_blocks) * kQ8Column;
  int64_t done = 0;
  if (n_tokens >= kTileTokens) {
    const int64_t n_tiles = n_tokens / kTileTokens;
    const GemmArgs a{n, wb, 0, ab, act_stride, out, out_stride};
    outer_tiles<Q8_0>(a, kInterleaveRows * n_groups, n_tiles, [&](int64_t r0, int, OuterRows& rows) {
      if (r0 % kInterleaveRows == 0) unpack_q8_group(wb + size_t(r0 / kInterleaveRows) * group_bytes, n_blocks, rows);
      return int(r0 % kInterleaveRows);
    });
    done = kTileTokens * n_tiles;
  }
  for (int64_t grp = 0; grp < n_groups; ++grp) {
    const uint8_t* gw = wb + size_t(grp) * group_bytes;
    for (int64_t t = done; t < n_tokens; t += kQ8GroupTokens) {
      const uint8_t* arow[kQ8GroupTokens];
      for (int i = 0; i < kQ8GroupTokens; ++i) arow[i] = ab + size_t(std::min(t + i, n_tokens - 1)) * act_stride;
      float* o = out + size_t(t) * out_stride + size_t(grp) * kInterleaveRows;
      if (n_tokens - t >= kQ8GroupTokens) {
        q8_group<2>(gw, n_blocks, arow, o, out_stride);
      } else {
        q8_group<1>(gw, n_blocks, arow, o, out_stride);
      }
    }
  }
}

// interleave.h's interleave_group for Q8_0, vectorised: the quants of two
// blocks of 16 rows (16 x 64 bytes) become two columns' lines in one dword
// transpose; the d's are 2-byte copies.
void q8_interleave_group(int64_t n, const uint8_t* src, size_t stride, uint8_t* dst) {
  const int64_t n_blocks = n / kQK;
  for (int64_t b = 0; b < n_blocks; b += 2) {
    const int nb = n_blocks - b >= 2 ? 2 : 1;
    __m512i v[16];
    for (int r = 0; r < kInterleaveRows; ++r) {
      const uint8_t* blk = src + size_t(r) * stride + size_t(b) * sizeof(BlockQ8_0);
      const __m256i q0 = load256(blk + offsetof(BlockQ8_0, qs));
      const __m256i q1 = nb == 2 ? load256(blk + sizeof(BlockQ8_0) + offsetof(BlockQ8_0, qs)) : _mm256_setzero_si256();
      v[r] = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
    }
    transpose16x16_epi32(v);
    for (int k = 0; k < nb; ++k) {
      uint8_t* col = dst + size_t(b + k) * kQ8Column;
      for (int u = 0; u < 8; ++u) _mm512_storeu_si512(col + kQ8Quants + 64 * u, v[8 * k + u]);
      for (int r = 0; r < kInterleaveRows; ++r)
        std::memcpy(col + 2 * r, src + size_t(r) * stride + size_t(b + k) * sizeof(BlockQ8_0) + offsetof(BlockQ8_0, d), 2);
    }
  }
}

template <typename W>
constexpr DotKernel outer_kernel() {
  return DotKernel{TensorType::Q8_0, quantize_8bit<false>, outer_gemm<W>};
}

constexpr DotKernel kOuterQ4_0 = outer_kernel<Q4_0>();
constexpr DotKernel kOuterQ5_0 = outer_kernel<Q5_0>();
// Q8_0 also reads the row-interleaved layout.
constexpr DotKernel kOuterQ8_0{TensorType::Q8_0, quantize_8bit<false>, outer_gemm<Q8_0>, q8_gemm_interleaved,
                               q8_interleave_group};

// ---- F16 in the row-interleaved layout (interleave.h) -----------------------
// Decode: in a group's column the 8 halves of rows 2p and 2p+1 are 32
// adjacent bytes, so one 512-bit vcvtph2ps widens both and one 512-bit FMA
// (the column's 8 activations in both halves) advances both rows: ~4.3
// instructions per 64 bytes against ~10 in the row kernel (four 16-byte
// vcvtph2ps, four FMAs, activation loads, prefetches). Each row keeps its 8
// lanes and its order of operations (lane k sums elements i = k mod 8, then
// the same hsum and tail), so the result is bit for bit the row kernel's.
// A group is one sequential stream that the hardware prefetcher follows; on
// Zen 4 it streams ~31 GB/s from DRAM on one core when the memory has huge
// pages (the model loader asks for them), ~21 GB/s on 4 KB pages, like the row
// kernel; software prefetches (T0, T1, NTA; 512 B to 2 KB ahead) only slowed
// it down, so there are none.
void f16_group_decode(int64_t n, const uint8_t* group, const uint8_t* x, float* out) {
  constexpr int kPairs = int(kInterleaveRows) / 2;
  __m512 acc[kPairs];
  for (auto& v : acc) v = _mm512_setzero_ps();
  const int64_t n8 = n & ~int64_t(7);
  const size_t column = size_t(kInterleaveRows) * 16;  // 8 halves of 16 rows
  for (int64_t i = 0; i < n8; i += 8) {
    const uint8_t* col = group + size_t(i / 8) * column;
    const __m512 xv = _mm512_broadcast_f32x8(_mm256_loadu_ps(reinterpret_cast<const float*>(x + 4 * i)));
    for (int p = 0; p < kPairs; ++p) {
      const __m512 w = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(col + 32 * p)));
      acc[p] = _mm512_fmadd_ps(w, xv, acc[p]);
    }
  }
  const uint8_t* tails = group + size_t(n8 / 8) * column;
  const size_t tail_bytes = 2 * size_t(n - n8);
  for (int r = 0; r < int(kInterleaveRows); ++r) {
    const __m512 a = acc[r / 2];
    float s = hsum(r % 2 ? _mm512_extractf32x8_ps(a, 1) : _mm512_castps512_ps256(a));
    const uint8_t* tail = tails + size_t(r) * tail_bytes;
    for (int64_t i = n8; i < n; ++i) s += F16W::load1(tail + 2 * size_t(i - n8)) * load_unaligned<float>(x + 4 * i);
    out[r] = s;
  }
}

// Prefill: each group's 16 rows are copied back into the file's row layout
// (one 16-byte unit per row and column, in L1/L2) and multiplied by the row
// kernel, so the results are the row kernel's to the bit and the speed is its
// speed less the copy, which a call's token tile (16 to 80 tokens) amortises.
// Tiles read straight from the groups (512-bit row pairs x 6 tokens, 256-bit
// 4-row tiles, with and without L1-sized column slices) all ran ~10% below
// the row kernel.
constexpr DotKernel kF16Rows = float_kernel<F16W>();
constexpr size_t kPrefillUnpackBytes = 256 * 1024;  // unpacked rows per call: a quarter of Zen 4's L2

void f16_unpack_group(int64_t n, const uint8_t* group, uint8_t* rows) {
  const int64_t n8 = n & ~int64_t(7);
  const size_t row_bytes = 2 * size_t(n), column = size_t(kInterleaveRows) * 16;
  for (int64_t c = 0; c < n8 / 8; ++c) {
    const uint8_t* col = group + size_t(c) * column;
    for (int r = 0; r < int(kInterleaveRows); ++r)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(rows + size_t(r) * row_bytes + 16 * size_t(c)),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(col + 16 * r)));
  }
  const size_t tail_bytes = 2 * size_t(n - n8);
  const uint8_t* tails = group + size_t(n8 / 8) * column;
  for (int r = 0; r < int(kInterleaveRows) && tail_bytes; ++r)
    std::memcpy(rows + size_t(r) * row_bytes + 2 * size_t(n8), tails + size_t(r) * tail_bytes, tail_bytes);
}

// gemm_interleaved (dot.h) for F16.
void f16_gemm_groups(int64_t n, const void* w, int64_t n_groups, const void* act, size_t act_stride,
                     int64_t n_tokens, float* out, size_t out_stride) {
  const size_t group_bytes = size_t(kInterleaveRows) * 2 * size_t(n);
  const auto* wb = static_cast<const uint8_t*>(w);
  if (n_tokens == 1) {
    for (int64_t g = 0; g < n_groups; ++g)
      f16_group_decode(n, wb + size_t(g) * group_bytes, static_cast<const uint8_t*>(act), out + size_t(g) * kInterleaveRows);
    return;
  }
  // As many groups per row-kernel call as fit in kPrefillUnpackBytes: every
  // call reads the token tile's activations again, so calls of one group each
  // would read them 16 rows at a time.
  const int64_t per_call = std::max<int64_t>(1, int64_t(kPrefillUnpackBytes / group_bytes));
  thread_local std::vector<uint8_t> rows;
  rows.resize(size_t(std::min(per_call, n_groups)) * group_bytes);
  for (int64_t g0 = 0; g0 < n_groups; g0 += per_call) {
    const int64_t g1 = std::min(n_groups, g0 + per_call);
    for (int64_t g = g0; g < g1; ++g) f16_unpack_group(n, wb + size_t(g) * group_bytes, rows.data() + size_t(g - g0) * group_bytes);
    kF16Rows.gemm(n, rows.data(), 2 * size_t(n), (g1 - g0) * kInterleaveRows, act, act_stride, n_tokens,
                  out + size_t(g0) * kInterleaveRows, out_stride);
  }
}

constexpr DotKernel kF16Groups = [] {
  DotKernel k = kF16Rows;
  k.gemm_interleaved = f16_gemm_groups;
  return k;
}();

}  // namespace

namespace detail {
const DotKernel* avx512_legacy_kernel(TensorType w) {
  switch (w) {
    case TensorType::Q4_0: return &kOuterQ4_0;
    case TensorType::Q5_0: return &kOuterQ5_0;
    case TensorType::Q8_0: return &kOuterQ8_0;
    case TensorType::F16: return &kF16Groups;
    default: return x86_legacy_kernel(w);
  }
}
}  // namespace detail

}  // namespace dhi::kernels::cpu
