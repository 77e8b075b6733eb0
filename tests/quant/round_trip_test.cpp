// Quantize -> dequantize round trips for every type on multi-block rows of
// random, one-signed, mixed-magnitude, large, tiny and constant data. Two error
// bounds are checked per element:
//
//  1. The stored bound: half of the quantization step recorded in the element's
//     own block (d/2, |d|/2, d*sc_j/2, |d*s_j|/2 ...). Rounding to the nearest
//     level gives exactly this when nothing clamps, so it fails whenever a
//     quantizer lets a scale shrink below the block's range.
//  2. An a-priori bound from the data amplitude A alone (|x| <= A), derived in
//     apriori_bound() from each quantizer's construction; it fails when scales
//     are needlessly coarse.
//
// Both allow a few float ulps of arithmetic (kSlack relative to the block).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "core/fp16.h"
#include "quant_test_util.h"

namespace dhi {
namespace {

constexpr float kSlack = 2e-6f;  // relative to the block's largest magnitude

template <typename Block>
Block block_at(const std::vector<uint8_t>& row, int64_t i) {
  Block b;
  std::memcpy(&b, row.data() + i * int64_t(sizeof(Block)), sizeof(Block));
  return b;
}

float h2f(uint16_t h) { return fp16_to_f32(h); }

// Half the step of element e, read from its block in the quantized row.
float stored_half_step(TensorType t, const std::vector<uint8_t>& row, int64_t e) {
  const int64_t blk32 = e / 32, blk256 = e / 256;
  const int in256 = int(e % 256);
  switch (t) {
    case TensorType::Q4_0: return std::fabs(h2f(block_at<BlockQ4_0>(row, blk32).d)) / 2;
    case TensorType::Q4_1: return h2f(block_at<BlockQ4_1>(row, blk32).d) / 2;
    case TensorType::Q5_0: return std::fabs(h2f(block_at<BlockQ5_0>(row, blk32).d)) / 2;
    case TensorType::Q5_1: return h2f(block_at<BlockQ5_1>(row, blk32).d) / 2;
    case TensorType::Q8_0: return h2f(block_at<BlockQ8_0>(row, blk32).d) / 2;
    case TensorType::Q8_1: return h2f(block_at<BlockQ8_1>(row, blk32).d) / 2;
    case TensorType::Q2_K: {
      const auto b = block_at<BlockQ2_K>(row, blk256);
      return h2f(b.d) * float(b.scales[in256 / 16] & 15) / 2;
    }
    case TensorType::Q3_K: {
      const auto b = block_at<BlockQ3_K>(row, blk256);
      int8_t s[16];
      unpack_scales_q3_k(b.scales, s);
      return std::fabs(h2f(b.d) * float(s[in256 / 16])) / 2;
    }
    case TensorType::Q4_K: {
      const auto b = block_at<BlockQ4_K>(row, blk256);
      uint8_t sc, m;
      unpack_scale_min_k4(in256 / 32, b.scales, sc, m);
      return h2f(b.d) * float(sc) / 2;
    }
    case TensorType::Q5_K: {
      const auto b = block_at<BlockQ5_K>(row, blk256);
      uint8_t sc, m;
      unpack_scale_min_k4(in256 / 32, b.scales, sc, m);
      return h2f(b.d) * float(sc) / 2;
    }
    case TensorType::Q6_K: {
      const auto b = block_at<BlockQ6_K>(row, blk256);
      return std::fabs(h2f(b.d) * float(b.scales[in256 / 16])) / 2;
    }
    case TensorType::Q8_K: return block_at<BlockQ8_K>(row, blk256).d / 2;
    default: return 0.0f;
  }
}

// Worst-case error for data with |x| <= A (A large enough that no scale is an
// fp16 subnormal). "up" = 1 + 2^-10 covers rounding a scale up to a half.
float apriori_bound(TensorType t, float a) {
  const float up = 1.001f;
  // Affine K fit (Q2_K/Q4_K/Q5_K): dmin <= A/smax*up, so the quantized offset is
  // below A + A*up/smax and the range below A*(2 + up/smax); the step rounds up
  // by at most d <= max_step*up/smax. Error <= step/2.
  auto affine_k = [a, up](float qmax, float smax) {
    return 0.5f * a * (2.0f + up / smax) / qmax * (1.0f + up / smax);
  };
  // Symmetric fit with q in [-N, N-1]: symmetric_step() picks |s| <= A/(N - 1/2);
  // the K types round it up by at most d <= |s|max*up/smax. Error <= |step|/2.
  auto symmetric = [a](float n, float growth) { return 0.5f * a / (n - 0.5f) * growth; };
  switch (t) {
    case TensorType::Q8_0:
    case TensorType::Q8_1: return 0.5f * a / 127.0f * up;
    case TensorType::Q8_K: return 0.5f * a / 127.0f * 1.000001f;  // float d
    case TensorType::Q4_0: return symmetric(8, up);
    case TensorType::Q5_0: return symmetric(16, up);
    // d = (max - m)/levels rounded up, m = min rounded down: range <= 2A(1+2^-11).
    case TensorType::Q4_1: return 0.5f * 2.0f * a / 15.0f * up * up;
    case TensorType::Q5_1: return 0.5f * 2.0f * a / 31.0f * up * up;
    case TensorType::Q2_K: return affine_k(3, 15);
    case TensorType::Q4_K: return affine_k(15, 63);
    case TensorType::Q5_K: return affine_k(31, 63);
    case TensorType::Q3_K: return symmetric(4, 1.0f + up / 31.0f);
    case TensorType::Q6_K: return symmetric(32, 1.0f + up / 127.0f);
    default: return 0.0f;
  }
}

enum class Data { Uniform, Positive, Negative, MixedMagnitude, Large, Tiny, Constant };

struct DataSet {
  Data kind;
  const char* name;
  float amplitude;  // |x| <= amplitude; 0 where the a-priori bound is not checked
};

constexpr DataSet kDataSets[] = {
    {Data::Uniform, "uniform", 1.0f},     {Data::Positive, "positive", 2.0f},
    {Data::Negative, "negative", 3.0f},   {Data::MixedMagnitude, "mixed", 1.0f},
    {Data::Large, "large", 1000.0f},      {Data::Tiny, "tiny", 0.0f},
    {Data::Constant, "constant", 0.75f},
};

std::vector<float> make_data(Data kind, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float r = u(rng);
    switch (kind) {
      case Data::Uniform: x[i] = r; break;
      case Data::Positive: x[i] = 1.25f + 0.75f * r; break;   // [0.5, 2]
      case Data::Negative: x[i] = -2.0f + r; break;           // [-3, -1]
      // Each group of 16 gets a scale 2^-k, k = 3*(i/16) mod 8 (0, 3, 6, 1, 4, 7, 2, 5, ...),
      // so neighbouring sub-blocks of 16 and of 32 need different scales.
      case Data::MixedMagnitude: x[i] = std::ldexp(r, -int((3 * (i / 16)) % 8)); break;
      case Data::Large: x[i] = 1000.0f * r; break;
      case Data::Tiny: x[i] = 1e-3f * r; break;
      case Data::Constant: x[i] = 0.75f; break;
    }
  }
  return x;
}

const TensorType kAllTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0,
                                TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0,
                                TensorType::Q8_1, TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K,
                                TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_K};

bool is_float_type(TensorType t) {
  return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16;
}

class RoundTrip : public ::testing::TestWithParam<TensorType> {};

TEST_P(RoundTrip, ErrorWithinStoredAndAprioriBounds) {
  const TensorType t = GetParam();
  const QuantTraits* tr = quant_traits(t);
  ASSERT_NE(tr, nullptr);
  const int64_t n = 4 * 256;  // 4 K-blocks, 32 legacy blocks
  uint32_t seed = 1;
  for (const DataSet& ds : kDataSets) {
    SCOPED_TRACE(ds.name);
    const auto x = make_data(ds.kind, n, seed++);
    auto q = quantize(t, x);
    ASSERT_TRUE(q.ok());
    ASSERT_EQ(q->size(), size_t(n / tr->block_size) * tr->block_bytes);
    const auto y = test::dequant(t, *q, n);
    for (int64_t e = 0; e < n; ++e) {
      const float err = std::fabs(x[e] - y[e]);
      if (is_float_type(t)) {
        // Round to nearest: half an ulp of the target format, relative.
        const float rel = t == TensorType::F32 ? 0.0f : t == TensorType::F16 ? std::ldexp(1.0f, -11)
                                                                             : std::ldexp(1.0f, -8);
        const float floor_abs = t == TensorType::F16 ? std::ldexp(1.0f, -25) : 0.0f;  // subnormal halves
        ASSERT_LE(err, std::fabs(x[e]) * rel + floor_abs) << e;
        continue;
      }
      const int64_t bs = tr->block_size, b0 = e / bs * bs;
      float block_max = 0.0f;
      for (int64_t k = b0; k < b0 + bs; ++k) block_max = std::max({block_max, std::fabs(x[k]), std::fabs(y[k])});
      const float slack = kSlack * block_max;
      ASSERT_LE(err, stored_half_step(t, *q, e) + slack) << "element " << e << " x=" << x[e] << " y=" << y[e];
      if (ds.amplitude > 0.0f) {
        ASSERT_LE(err, apriori_bound(t, ds.amplitude) + slack) << "element " << e;
      }
    }
  }
}

TEST_P(RoundTrip, AllZeroRowIsExactlyZero) {
  const TensorType t = GetParam();
  const int64_t n = 2 * 256;
  const std::vector<float> x(size_t(n), 0.0f);
  auto q = quantize(t, x);
  ASSERT_TRUE(q.ok());
  const auto y = test::dequant(t, *q, n);
  for (int64_t e = 0; e < n; ++e) ASSERT_EQ(y[e], 0.0f) << e;
}

TEST_P(RoundTrip, NonFiniteInputStaysWellDefined) {
  // Garbage in must not mean undefined behaviour (UBSan checks the float->int
  // conversions); the quant types still reconstruct the finite elements' block.
  const TensorType t = GetParam();
  const int64_t n = 256;
  auto x = make_data(Data::Uniform, n, 99);
  x[3] = NAN;
  x[40] = INFINITY;
  x[100] = -INFINITY;
  x[200] = 1e30f;
  auto q = quantize(t, x);
  ASSERT_TRUE(q.ok());
  const auto y = test::dequant(t, *q, n);
  if (is_float_type(t)) return;
  for (int64_t e = 0; e < n; ++e) {
    if (e != 200) {
      ASSERT_TRUE(std::isfinite(y[e])) << e;
    }
  }
}

std::string type_param_name(const ::testing::TestParamInfo<TensorType>& info) {
  return std::string(tensor_type_name(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, RoundTrip, ::testing::ValuesIn(kAllTypes), type_param_name);

TEST(ActivationTypes, Q8KBlockSumsAreSumsOfSixteenQuants) {
  const auto x = make_data(Data::Uniform, 512, 7);
  auto q = quantize(TensorType::Q8_K, x);
  ASSERT_TRUE(q.ok());
  for (int64_t blk = 0; blk < 2; ++blk) {
    const auto b = block_at<BlockQ8_K>(*q, blk);
    for (int k = 0; k < 16; ++k) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += b.qs[16 * k + j];
      EXPECT_EQ(b.bsums[k], sum) << blk << " " << k;
    }
  }
}

TEST(ActivationTypes, Q8_1SumFieldIsScaleTimesQuantSum) {
  const auto x = make_data(Data::Positive, 64, 8);
  auto q = quantize(TensorType::Q8_1, x);
  ASSERT_TRUE(q.ok());
  for (int64_t blk = 0; blk < 2; ++blk) {
    const auto b = block_at<BlockQ8_1>(*q, blk);
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += b.qs[j];
    EXPECT_EQ(b.s, f32_to_fp16(fp16_to_f32(b.d) * float(sum)));
    EXPECT_GT(sum, 0);  // all inputs positive
  }
}

TEST(ActivationTypes, EightBitQuantizersNeverWriteMinus128) {
  // Symmetric data whose extreme is negative: -128 would be the natural code.
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[i] = float(i % 32) / 31.0f - 1.0f;  // [-1, 0]
  for (TensorType t : {TensorType::Q8_0, TensorType::Q8_K}) {
    auto q = quantize(t, x);
    ASSERT_TRUE(q.ok());
    const size_t qs_off = t == TensorType::Q8_0 ? 2 : 4;
    const size_t bytes = t == TensorType::Q8_0 ? 34 : 292, count = t == TensorType::Q8_0 ? 32 : 256;
    for (size_t blk = 0; blk < q->size() / bytes; ++blk)
      for (size_t j = 0; j < count; ++j) EXPECT_NE(int8_t((*q)[blk * bytes + qs_off + j]), -128);
  }
}

}  // namespace
}  // namespace dhi
