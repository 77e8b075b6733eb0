// Helpers shared by the quant tests: building raw block bytes by hand and
// dequantizing them through the public API.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "quant/quant.h"

namespace dhi::test {

// A few binary16 constants, spelled out so the expected values below are easy
// to follow: sign | 5-bit exponent (bias 15) | 10-bit mantissa.
inline constexpr uint16_t kHalfOne = 0x3c00;        // 2^0
inline constexpr uint16_t kHalfTwo = 0x4000;        // 2^1
inline constexpr uint16_t kHalfHalf = 0x3800;       // 2^-1
inline constexpr uint16_t kHalfQuarter = 0x3400;    // 2^-2
inline constexpr uint16_t kHalfEighth = 0x3000;     // 2^-3
inline constexpr uint16_t kHalfSixteenth = 0x2c00;  // 2^-4
inline constexpr uint16_t kHalfMinusTwo = 0xc000;   // -2^1
inline constexpr uint16_t kHalfMinusThree = 0xc200; // -(1 + 2^-1) * 2^1

// Writes a little-endian 16-bit value at byte offset `off`.
inline void put_u16(std::vector<uint8_t>& b, size_t off, uint16_t v) {
  b.at(off) = uint8_t(v & 0xff);
  b.at(off + 1) = uint8_t(v >> 8);
}

inline uint16_t get_u16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }

// Dequantizes `bytes` as `n` elements of type `t`; fails the test on error.
inline std::vector<float> dequant(TensorType t, const std::vector<uint8_t>& bytes, int64_t n) {
  auto r = dequantize(t, bytes, n);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  if (!r.ok()) return std::vector<float>(size_t(n), NAN);
  return std::move(r).value();
}

}  // namespace dhi::test
