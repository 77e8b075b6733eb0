// Handmade blocks of the legacy types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1):
// raw bytes written here by hand, expected values derived from the GGML format
// definition with the scales chosen as powers of two so every expected value is
// exact in float. Spot values are worked out by hand in the comments; the loops
// restate the definition per element ("element i lives in byte i % 16, low
// nibble when i < 16"), independently of the dequantizer's own loop structure.
#include <gtest/gtest.h>

#include "quant_test_util.h"

namespace dhi {
namespace {

using test::dequant;
using test::put_u16;

TEST(HandmadeQ4_0, LowNibblesAreFirstHalfHighNibblesSecondHalf) {
  std::vector<uint8_t> b(2 * 18);
  // Block 0: d = 0.5, qs[j] = j (low) | 15 - j (high).
  put_u16(b, 0, test::kHalfHalf);
  for (int j = 0; j < 16; ++j) b[2 + j] = uint8_t(j | (15 - j) << 4);
  // Block 1: d = -2, qs[j] = 0x8f for even j, 0x70 for odd j.
  put_u16(b, 18, test::kHalfMinusTwo);
  for (int j = 0; j < 16; ++j) b[20 + j] = (j % 2 == 0) ? 0x8f : 0x70;

  const auto y = dequant(TensorType::Q4_0, b, 64);
  // x = d * (q - 8).
  EXPECT_EQ(y[0], -4.0f);   // q = 0
  EXPECT_EQ(y[15], 3.5f);   // q = 15
  EXPECT_EQ(y[16], 3.5f);   // high nibble of qs[0] = 15
  EXPECT_EQ(y[31], -4.0f);  // high nibble of qs[15] = 0
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], float(j - 8) * 0.5f) << j;
    EXPECT_EQ(y[16 + j], float(7 - j) * 0.5f) << j;
    // Block 1: even j: low 0xf -> (15 - 8) * -2 = -14, high 0x8 -> 0;
    //          odd j:  low 0x0 -> (0 - 8) * -2 = 16,  high 0x7 -> 2.
    EXPECT_EQ(y[32 + j], j % 2 == 0 ? -14.0f : 16.0f) << j;
    EXPECT_EQ(y[48 + j], j % 2 == 0 ? 0.0f : 2.0f) << j;
  }
}

TEST(HandmadeQ4_1, ScaleAndOffset) {
  std::vector<uint8_t> b(20);
  put_u16(b, 0, test::kHalfQuarter);     // d = 0.25
  put_u16(b, 2, test::kHalfMinusThree);  // m = -3
  for (int j = 0; j < 16; ++j) b[4 + j] = uint8_t((15 - j) | j << 4);
  const auto y = dequant(TensorType::Q4_1, b, 32);
  // x = d * q + m.
  EXPECT_EQ(y[0], 0.75f);   // 15 * 0.25 - 3
  EXPECT_EQ(y[16], -3.0f);  // 0 * 0.25 - 3
  EXPECT_EQ(y[31], 0.75f);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], float(15 - j) * 0.25f - 3.0f) << j;
    EXPECT_EQ(y[16 + j], float(j) * 0.25f - 3.0f) << j;
  }
}

TEST(HandmadeQ5_0, HighBitPlaneIsOneBitPerElementInOrder) {
  std::vector<uint8_t> b(22);
  put_u16(b, 0, test::kHalfOne);
  const uint8_t qh[4] = {0xa5, 0x0f, 0x00, 0xf1};  // the word 0xf1000fa5
  for (int k = 0; k < 4; ++k) b[2 + k] = qh[k];
  for (int j = 0; j < 16; ++j) b[6 + j] = uint8_t(j | (15 - j) << 4);
  const auto y = dequant(TensorType::Q5_0, b, 32);
  // x = d * ((nibble | high << 4) - 16), high = bit i of the qh word.
  EXPECT_EQ(y[0], 0.0f);     // nibble 0, bit 0 of 0xa5 = 1: 16 - 16
  EXPECT_EQ(y[1], -15.0f);   // nibble 1, bit 1 of 0xa5 = 0: 1 - 16
  EXPECT_EQ(y[8], 8.0f);     // nibble 8, bit 8 = bit 0 of 0x0f = 1: 24 - 16
  EXPECT_EQ(y[16], -1.0f);   // nibble 15 (high of qs[0]), bit 16 = 0: 15 - 16
  EXPECT_EQ(y[24], 7.0f);    // nibble 7 (high of qs[8]), bit 24 = bit 0 of 0xf1 = 1: 23 - 16
  EXPECT_EQ(y[25], -10.0f);  // nibble 6, bit 25 = bit 1 of 0xf1 = 0: 6 - 16
  EXPECT_EQ(y[28], 3.0f);    // nibble 3, bit 28 = bit 4 of 0xf1 = 1: 19 - 16
  EXPECT_EQ(y[31], 0.0f);    // nibble 0, bit 31 = 1: 16 - 16
  const uint32_t word = 0xf1000fa5u;
  for (int i = 0; i < 32; ++i) {
    const int nibble = i < 16 ? i : 15 - (i - 16);
    const int q = nibble | int((word >> i) & 1) << 4;
    EXPECT_EQ(y[i], float(q - 16)) << i;
  }
}

TEST(HandmadeQ5_1, HighBitsScaleAndOffset) {
  std::vector<uint8_t> b(24);
  put_u16(b, 0, test::kHalfHalf);  // d = 0.5
  put_u16(b, 2, test::kHalfOne);   // m = 1
  const uint8_t qh[4] = {0x01, 0x80, 0x00, 0xff};  // the word 0xff008001
  for (int k = 0; k < 4; ++k) b[4 + k] = qh[k];
  for (int j = 0; j < 16; ++j) b[8 + j] = uint8_t(j | (15 - j) << 4);
  const auto y = dequant(TensorType::Q5_1, b, 32);
  // x = d * q + m.
  EXPECT_EQ(y[0], 9.0f);    // nibble 0 + high bit 0 set: 16 * 0.5 + 1
  EXPECT_EQ(y[7], 4.5f);    // nibble 7, bit 7 clear: 7 * 0.5 + 1
  EXPECT_EQ(y[15], 16.5f);  // nibble 15, bit 15 set: 31 * 0.5 + 1
  EXPECT_EQ(y[16], 8.5f);   // nibble 15, bit 16 clear: 15 * 0.5 + 1
  EXPECT_EQ(y[24], 12.5f);  // nibble 7, bit 24 set: 23 * 0.5 + 1
  const uint32_t word = 0xff008001u;
  for (int i = 0; i < 32; ++i) {
    const int nibble = i < 16 ? i : 15 - (i - 16);
    const int q = nibble | int((word >> i) & 1) << 4;
    EXPECT_EQ(y[i], float(q) * 0.5f + 1.0f) << i;
  }
}

TEST(HandmadeQ8_0, SignedBytesTimesScale) {
  std::vector<uint8_t> b(34);
  put_u16(b, 0, test::kHalfEighth);  // d = 0.125
  for (int j = 0; j < 32; ++j) b[2 + j] = uint8_t(int8_t(j * 8 - 128));
  const auto y = dequant(TensorType::Q8_0, b, 32);
  EXPECT_EQ(y[0], -16.0f);  // q = -128 decodes even though dhi never writes it
  EXPECT_EQ(y[31], 15.0f);  // q = 120
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], float(j - 16)) << j;
}

TEST(HandmadeQ8_1, SignedBytesTimesScaleIgnoringSum) {
  std::vector<uint8_t> b(36);
  put_u16(b, 0, test::kHalfQuarter);  // d = 0.25
  put_u16(b, 2, 0x1234);              // s is for dot products only
  for (int j = 0; j < 32; ++j) b[4 + j] = uint8_t(int8_t(100 - 7 * j));
  const auto y = dequant(TensorType::Q8_1, b, 32);
  EXPECT_EQ(y[0], 25.0f);
  EXPECT_EQ(y[31], -29.25f);  // (100 - 217) * 0.25
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], float(100 - 7 * j) * 0.25f) << j;
}

}  // namespace
}  // namespace dhi
