// Block structs of the GGML "K-quant" types: super-blocks of QK_K = 256
// elements split into sub-blocks that each carry a small quantized scale (and,
// for the affine types, a quantized min), themselves scaled by fp16 super-block
// scales. Byte-exact GGUF layouts; fp16 fields are raw binary16 bits.
//
// Layout facts every kernel must agree on (element index i in 0..255):
//   Q2_K  x = d*(sc&15)*q - dmin*(sc>>4), sc = scales[i/16], q 2 bits:
//         qs[(i/128)*32 + i%32] >> (2*((i%128)/32)).
//   Q3_K  x = d*(s-32)*(q-4), s a 6-bit scale for sub-block i/16 (packing
//         below), q = low 2 bits as in Q2_K plus bit (i/32) of hmask[i%32] as
//         the third bit (a set bit means "no -4": q - 4 + 4).
//   Q4_K  x = d*sc_j*q - dmin*m_j, j = i/32, 6-bit sc_j/m_j packed in 12 bytes;
//         q is nibble ((i%64)/32) of qs[(i/64)*32 + i%32].
//   Q5_K  as Q4_K plus a fifth bit: bit (i/32) of qh[i%32].
//   Q6_K  x = d*scales[i/16]*(q-32); low 4 bits are nibble ((i%128)/64) of
//         ql[(i/128)*64 + ((i%64)/32)*32 + i%32], high 2 bits are bits
//         2*((i%128)/32) of qh[(i/128)*32 + i%32].
//   Q8_K  x = d*qs[i] with a float d; bsums[k] = sum of qs[16k..16k+15].
//
// Q4_K/Q5_K 6-bit scale packing (scales[12]), j = sub-block 0..7:
//   j < 4:  sc_j = scales[j] & 63,            m_j = scales[j+4] & 63
//   j >= 4: sc_j = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4,
//           m_j  = (scales[j+4] >> 4) | (scales[j]   >> 6) << 4
// Q3_K 6-bit scale packing (scales[12]), k = sub-block 0..15:
//   low 4 bits:  k < 8 ? scales[k] & 15 : scales[k-8] >> 4
//   high 2 bits: (scales[8 + k%4] >> (2*(k/4))) & 3
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "quant/blocks_legacy.h"

namespace dhi {

inline constexpr int QK_K = 256;         // elements per super-block
inline constexpr int K_SCALE_SIZE = 12;  // packed 6-bit scale bytes (Q3_K, Q4_K, Q5_K)

struct BlockQ2_K {
  uint8_t scales[QK_K / 16];  // per 16 elements: low nibble scale, high nibble min
  uint8_t qs[QK_K / 4];       // 2-bit quants
  uint16_t d;                 // fp16 super-scale of the scales
  uint16_t dmin;              // fp16 super-scale of the mins
};

struct BlockQ3_K {
  uint8_t hmask[QK_K / 8];         // third (high) bit of each quant
  uint8_t qs[QK_K / 4];            // low 2 bits
  uint8_t scales[K_SCALE_SIZE];    // 16 6-bit scales, biased by 32
  uint16_t d;
};

struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[K_SCALE_SIZE];    // 8 6-bit scales and 8 6-bit mins
  uint8_t qs[QK_K / 2];            // 4-bit quants
};

struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];            // fifth bit of each quant
  uint8_t qs[QK_K / 2];            // low 4 bits
};

struct BlockQ6_K {
  uint8_t ql[QK_K / 2];            // low 4 bits
  uint8_t qh[QK_K / 4];            // high 2 bits
  int8_t scales[QK_K / 16];        // signed 8-bit sub-block scales
  uint16_t d;
};

struct BlockQ8_K {
  float d;                         // a float, not fp16: activations need the range
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];        // sums of groups of 16 quants, for the K-quant mins
};

static_assert(sizeof(BlockQ2_K) == 84 && offsetof(BlockQ2_K, qs) == 16 && offsetof(BlockQ2_K, d) == 80 &&
              offsetof(BlockQ2_K, dmin) == 82);
static_assert(sizeof(BlockQ3_K) == 110 && offsetof(BlockQ3_K, qs) == 32 && offsetof(BlockQ3_K, scales) == 96 &&
              offsetof(BlockQ3_K, d) == 108);
static_assert(sizeof(BlockQ4_K) == 144 && offsetof(BlockQ4_K, scales) == 4 && offsetof(BlockQ4_K, qs) == 16);
static_assert(sizeof(BlockQ5_K) == 176 && offsetof(BlockQ5_K, scales) == 4 && offsetof(BlockQ5_K, qh) == 16 &&
              offsetof(BlockQ5_K, qs) == 48);
static_assert(sizeof(BlockQ6_K) == 210 && offsetof(BlockQ6_K, qh) == 128 && offsetof(BlockQ6_K, scales) == 192 &&
              offsetof(BlockQ6_K, d) == 208);
static_assert(sizeof(BlockQ8_K) == 292 && offsetof(BlockQ8_K, qs) == 4 && offsetof(BlockQ8_K, bsums) == 260);

static_assert(std::is_trivially_copyable_v<BlockQ2_K> && std::is_standard_layout_v<BlockQ2_K>);
static_assert(std::is_trivially_copyable_v<BlockQ3_K> && std::is_standard_layout_v<BlockQ3_K>);
static_assert(std::is_trivially_copyable_v<BlockQ4_K> && std::is_standard_layout_v<BlockQ4_K>);
static_assert(std::is_trivially_copyable_v<BlockQ5_K> && std::is_standard_layout_v<BlockQ5_K>);
static_assert(std::is_trivially_copyable_v<BlockQ6_K> && std::is_standard_layout_v<BlockQ6_K>);
static_assert(std::is_trivially_copyable_v<BlockQ8_K> && std::is_standard_layout_v<BlockQ8_K>);

// Unpacks sub-block j's 6-bit scale and min from a Q4_K/Q5_K scales array.
inline void unpack_scale_min_k4(int j, const uint8_t* scales, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = scales[j] & 63;
    m = scales[j + 4] & 63;
  } else {
    sc = uint8_t((scales[j + 4] & 15) | ((scales[j - 4] >> 6) << 4));
    m = uint8_t((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

// Unpacks the 16 Q3_K scales, bias removed (range -32..31).
inline void unpack_scales_q3_k(const uint8_t* scales, int8_t out[16]) {
  for (int k = 0; k < 16; ++k) {
    int low = k < 8 ? (scales[k] & 15) : (scales[k - 8] >> 4);
    int high = (scales[8 + k % 4] >> (2 * (k / 4))) & 3;
    out[k] = int8_t((low | (high << 4)) - 32);
  }
}

}  // namespace dhi
