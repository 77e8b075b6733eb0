// Block structs of the legacy GGML quant types (32 elements per block): Q4_0,
// Q4_1, Q5_0, Q5_1, Q8_0, Q8_1. These are the on-disk GGUF layouts byte for byte
// (little-endian, no padding), shared by every kernel: the CPU reference, the
// SIMD paths and, later, CUDA. Half-precision fields are stored as raw IEEE
// binary16 bits (uint16_t) and converted with core/fp16.h.
//
// Element order within a block (the part that is easy to get wrong): for the
// 4- and 5-bit types, qs[j] holds element j in its low nibble and element j+16
// in its high nibble; for the 5-bit types, bit i of the little-endian 32-bit
// word qh is the fifth (high) bit of element i.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace dhi {

static_assert(std::endian::native == std::endian::little,
              "GGUF blocks are little-endian; dhi reads them in place");

inline constexpr int QK_LEGACY = 32;  // elements per legacy block

// x = d * (q - 8), q in 0..15.
struct BlockQ4_0 {
  uint16_t d;                    // fp16 scale
  uint8_t qs[QK_LEGACY / 2];     // nibbles
};

// x = d * q + m, q in 0..15.
struct BlockQ4_1 {
  uint16_t d;                    // fp16 scale
  uint16_t m;                    // fp16 offset (the block minimum)
  uint8_t qs[QK_LEGACY / 2];
};

// x = d * (q - 16), q in 0..31: low 4 bits in qs, high bit in qh.
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];                 // 32 high bits, bit i belongs to element i
  uint8_t qs[QK_LEGACY / 2];
};

// x = d * q + m, q in 0..31.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[QK_LEGACY / 2];
};

// x = d * q, q in -128..127 (dhi's quantizer only produces -127..127).
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[QK_LEGACY];
};

// Q8_0 plus s = d * sum(qs): the activation type for Q4_1/Q5_1 dot products,
// where the block offset m multiplies the sum of the activations.
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[QK_LEGACY];
};

static_assert(sizeof(BlockQ4_0) == 18 && offsetof(BlockQ4_0, qs) == 2);
static_assert(sizeof(BlockQ4_1) == 20 && offsetof(BlockQ4_1, qs) == 4);
static_assert(sizeof(BlockQ5_0) == 22 && offsetof(BlockQ5_0, qh) == 2 && offsetof(BlockQ5_0, qs) == 6);
static_assert(sizeof(BlockQ5_1) == 24 && offsetof(BlockQ5_1, qh) == 4 && offsetof(BlockQ5_1, qs) == 8);
static_assert(sizeof(BlockQ8_0) == 34 && offsetof(BlockQ8_0, qs) == 2);
static_assert(sizeof(BlockQ8_1) == 36 && offsetof(BlockQ8_1, qs) == 4);

static_assert(std::is_trivially_copyable_v<BlockQ4_0> && std::is_standard_layout_v<BlockQ4_0>);
static_assert(std::is_trivially_copyable_v<BlockQ4_1> && std::is_standard_layout_v<BlockQ4_1>);
static_assert(std::is_trivially_copyable_v<BlockQ5_0> && std::is_standard_layout_v<BlockQ5_0>);
static_assert(std::is_trivially_copyable_v<BlockQ5_1> && std::is_standard_layout_v<BlockQ5_1>);
static_assert(std::is_trivially_copyable_v<BlockQ8_0> && std::is_standard_layout_v<BlockQ8_0>);
static_assert(std::is_trivially_copyable_v<BlockQ8_1> && std::is_standard_layout_v<BlockQ8_1>);

}  // namespace dhi
