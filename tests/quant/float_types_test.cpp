// F32, F16 and BF16 rows: decoding of hand-picked bit patterns and the
// round-to-nearest-even behaviour of the float -> half/bfloat16 quantizers at
// exact ties, where the expected bits follow from the IEEE definitions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "quant_test_util.h"

namespace dhi {
namespace {

std::vector<uint8_t> halves_to_bytes(const std::vector<uint16_t>& h) {
  std::vector<uint8_t> b(2 * h.size());
  for (size_t i = 0; i < h.size(); ++i) test::put_u16(b, 2 * i, h[i]);
  return b;
}

std::vector<uint16_t> quantize_to_halves(TensorType t, const std::vector<float>& x) {
  auto r = quantize(t, x);
  EXPECT_TRUE(r.ok());
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < h.size(); ++i) h[i] = test::get_u16(r->data() + 2 * i);
  return h;
}

TEST(FloatTypes, F16DecodesKnownPatterns) {
  const auto y = test::dequant(TensorType::F16,
                               halves_to_bytes({0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00, 0x3555, 0x0400}), 8);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -2.0f);
  EXPECT_EQ(y[2], 65504.0f);                   // largest finite half: (2 - 2^-10) * 2^15
  EXPECT_EQ(y[3], std::ldexp(1.0f, -24));      // smallest subnormal
  EXPECT_TRUE(y[4] == 0.0f && std::signbit(y[4]));
  EXPECT_EQ(y[5], std::numeric_limits<float>::infinity());
  EXPECT_EQ(y[6], 0.333251953125f);            // (1 + 0x155/1024) * 2^-2
  EXPECT_EQ(y[7], std::ldexp(1.0f, -14));      // smallest normal
}

TEST(FloatTypes, F16RoundsToNearestEven) {
  const float ulp = std::ldexp(1.0f, -10);  // half ulp spacing at 1.0
  const std::vector<float> x = {
      1.0f + ulp / 2,                               // tie between 0x3c00 and 0x3c01: even -> 0x3c00
      1.0f + 3 * ulp / 2,                           // tie between 0x3c01 and 0x3c02: even -> 0x3c02
      1.0f + ulp / 2 + std::ldexp(1.0f, -20),       // just above the tie -> 0x3c01
      65519.0f,                                     // below the overflow midpoint 65520 -> 65504
      65520.0f,                                     // the midpoint rounds to even: infinity
      std::ldexp(1.0f, -25),                        // half the smallest subnormal: tie -> +0
      std::ldexp(3.0f, -25),                        // 1.5 subnormal units: tie -> 2 units
      -std::ldexp(1.0f, -25) - std::ldexp(1.0f, -35),  // just past the tie, negative -> 0x8001
  };
  const auto h = quantize_to_halves(TensorType::F16, x);
  EXPECT_EQ(h[0], 0x3c00);
  EXPECT_EQ(h[1], 0x3c02);
  EXPECT_EQ(h[2], 0x3c01);
  EXPECT_EQ(h[3], 0x7bff);
  EXPECT_EQ(h[4], 0x7c00);
  EXPECT_EQ(h[5], 0x0000);
  EXPECT_EQ(h[6], 0x0002);
  EXPECT_EQ(h[7], 0x8001);
}

TEST(FloatTypes, Bf16DecodesAndRoundsToNearestEven) {
  const auto y = test::dequant(TensorType::BF16, halves_to_bytes({0x3f80, 0xc040, 0x7f80, 0x0001}), 4);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -3.0f);  // sign, exponent 128, mantissa 0x40 << 16 = 1.5
  EXPECT_EQ(y[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(y[3], std::ldexp(1.0f, -133));  // the float subnormal 2^-126 * 2^-7

  const float ulp = std::ldexp(1.0f, -7);  // bf16 spacing at 1.0
  const auto h = quantize_to_halves(TensorType::BF16, {1.0f + ulp / 2, 1.0f + 3 * ulp / 2,
                                                       1.0f + ulp / 2 + std::ldexp(1.0f, -20),
                                                       std::numeric_limits<float>::quiet_NaN()});
  EXPECT_EQ(h[0], 0x3f80);
  EXPECT_EQ(h[1], 0x3f82);
  EXPECT_EQ(h[2], 0x3f81);
  EXPECT_EQ(h[3] & 0x7f80, 0x7f80);  // NaN stays NaN: exponent all ones...
  EXPECT_NE(h[3] & 0x007f, 0);       // ...and a nonzero mantissa
}

TEST(FloatTypes, F32IsTheIdentityOnBytes) {
  const std::vector<float> x = {1.5f, -0.0f, std::ldexp(1.0f, -140), 3.4e38f, -7.25f};
  auto q = quantize(TensorType::F32, x);
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size(), x.size() * 4);
  EXPECT_EQ(std::memcmp(q->data(), x.data(), q->size()), 0);
  const auto y = test::dequant(TensorType::F32, *q, int64_t(x.size()));
  EXPECT_EQ(std::memcmp(y.data(), x.data(), q->size()), 0);
}

}  // namespace
}  // namespace dhi
