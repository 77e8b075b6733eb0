// The trait table and the public entry points: geometry agrees with
// core/tensor_type.h and the block structs, activation pairings, validation of
// bad arguments (errors, not crashes) and unaligned source buffers.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "quant_test_util.h"

namespace dhi {
namespace {

const TensorType kAllTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0,
                                TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0,
                                TensorType::Q8_1, TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K,
                                TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_K};

TEST(QuantTraits, GeometryMatchesCoreTypeInfo) {
  for (TensorType t : kAllTypes) {
    const QuantTraits* tr = quant_traits(t);
    ASSERT_NE(tr, nullptr) << tensor_type_name(t);
    const TensorTypeInfo info = type_info(t);
    EXPECT_EQ(tr->type, t);
    EXPECT_EQ(tr->block_size, info.block_size) << info.name;
    EXPECT_EQ(tr->block_bytes, info.block_bytes) << info.name;
    EXPECT_NE(tr->dequantize_row, nullptr);
    EXPECT_NE(tr->quantize_row, nullptr);
  }
}

TEST(QuantTraits, BlockStructSizesMatchCoreTypeInfo) {
  EXPECT_EQ(sizeof(BlockQ4_0), type_info(TensorType::Q4_0).block_bytes);
  EXPECT_EQ(sizeof(BlockQ4_1), type_info(TensorType::Q4_1).block_bytes);
  EXPECT_EQ(sizeof(BlockQ5_0), type_info(TensorType::Q5_0).block_bytes);
  EXPECT_EQ(sizeof(BlockQ5_1), type_info(TensorType::Q5_1).block_bytes);
  EXPECT_EQ(sizeof(BlockQ8_0), type_info(TensorType::Q8_0).block_bytes);
  EXPECT_EQ(sizeof(BlockQ8_1), type_info(TensorType::Q8_1).block_bytes);
  EXPECT_EQ(sizeof(BlockQ2_K), type_info(TensorType::Q2_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ3_K), type_info(TensorType::Q3_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ4_K), type_info(TensorType::Q4_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ5_K), type_info(TensorType::Q5_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ6_K), type_info(TensorType::Q6_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ8_K), type_info(TensorType::Q8_K).block_bytes);
  EXPECT_EQ(uint32_t(QK_LEGACY), type_info(TensorType::Q4_0).block_size);
  EXPECT_EQ(uint32_t(QK_K), type_info(TensorType::Q4_K).block_size);
}

TEST(QuantTraits, ActivationTypePairings) {
  const auto dot = [](TensorType t) { return quant_traits(t)->vec_dot_type; };
  EXPECT_EQ(dot(TensorType::F32), TensorType::F32);
  EXPECT_EQ(dot(TensorType::F16), TensorType::F32);
  EXPECT_EQ(dot(TensorType::BF16), TensorType::F32);
  EXPECT_EQ(dot(TensorType::Q4_0), TensorType::Q8_0);
  EXPECT_EQ(dot(TensorType::Q5_0), TensorType::Q8_0);
  EXPECT_EQ(dot(TensorType::Q8_0), TensorType::Q8_0);
  EXPECT_EQ(dot(TensorType::Q4_1), TensorType::Q8_1);
  EXPECT_EQ(dot(TensorType::Q5_1), TensorType::Q8_1);
  for (TensorType t : {TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K,
                       TensorType::Q8_K})
    EXPECT_EQ(dot(t), TensorType::Q8_K) << tensor_type_name(t);
}

TEST(QuantTraits, UnknownTypeIdsHaveNoTraits) {
  EXPECT_EQ(quant_traits(TensorType(4)), nullptr);   // removed Q4_2
  EXPECT_EQ(quant_traits(TensorType(16)), nullptr);  // IQ2_XXS: not supported
  EXPECT_EQ(quant_traits(TensorType(31)), nullptr);
  EXPECT_EQ(quant_traits(TensorType(0xffffffffu)), nullptr);
}

TEST(CheckRow, AcceptsWholeBlocksOnly) {
  EXPECT_TRUE(check_row(TensorType::Q4_K, 0).ok());
  EXPECT_TRUE(check_row(TensorType::Q4_K, 512).ok());
  EXPECT_TRUE(check_row(TensorType::F16, 7).ok());

  const Status bad = check_row(TensorType::Q4_K, 100);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("Q4_K"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("100"), std::string::npos);
  EXPECT_NE(bad.error().message.find("256"), std::string::npos);

  EXPECT_FALSE(check_row(TensorType::Q8_0, -32).ok());
  const Status unknown = check_row(TensorType(23), 256);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("23"), std::string::npos) << unknown.error().message;
}

TEST(Conveniences, RejectBadSizesWithErrors) {
  const std::vector<float> x(100, 1.0f);
  auto q = quantize(TensorType::Q8_0, x);  // 100 is not a multiple of 32
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().message.find("Q8_0"), std::string::npos);

  const std::vector<uint8_t> bytes(144, 0);  // one Q4_K block
  EXPECT_TRUE(dequantize(TensorType::Q4_K, bytes, 256).ok());
  EXPECT_FALSE(dequantize(TensorType::Q4_K, bytes, 512).ok());  // needs 288 bytes
  EXPECT_FALSE(dequantize(TensorType::Q4_K, bytes, 255).ok());
  EXPECT_FALSE(dequantize(TensorType::Q4_K, std::span<const uint8_t>(bytes).first(143), 256).ok());
  // A huge element count must be rejected by size, not attempted.
  EXPECT_FALSE(dequantize(TensorType::Q4_K, bytes, int64_t(1) << 62).ok());
  EXPECT_FALSE(dequantize(TensorType(5), bytes, 32).ok());

  auto empty = dequantize(TensorType::Q6_K, {}, 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(RowFunctions, UnalignedSourceGivesTheSameValues) {
  // Rows inside a GGUF file are only block-aligned; the reference must not
  // assume more (UBSan would flag a misaligned member read).
  std::vector<float> x(512);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i % 37) - 18) / 7.0f;
  for (TensorType t : {TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q8_K}) {
    auto q = quantize(t, x);
    ASSERT_TRUE(q.ok());
    std::vector<uint8_t> shifted(q->size() + 1);
    std::memcpy(shifted.data() + 1, q->data(), q->size());
    std::vector<float> a(x.size()), b(x.size());
    dequantize_row(t, q->data(), a.data(), int64_t(x.size()));
    dequantize_row(t, shifted.data() + 1, b.data(), int64_t(x.size()));
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << tensor_type_name(t);

    // And quantize_row into an odd address writes the same bytes.
    std::vector<uint8_t> out(q->size() + 1);
    quantize_row(t, x.data(), out.data() + 1, int64_t(x.size()));
    EXPECT_EQ(std::memcmp(out.data() + 1, q->data(), q->size()), 0) << tensor_type_name(t);
  }
}

TEST(RowFunctions, ArbitraryBytesDecodeBlockByBlock) {
  // Every byte pattern is a valid block. Decoding random bytes must be free of
  // undefined behaviour (sanitizer builds) and a row must decode exactly as
  // its blocks do one at a time (catches stride and offset mistakes).
  std::mt19937 rng(1234);
  for (TensorType t : kAllTypes) {
    const QuantTraits* tr = quant_traits(t);
    const int64_t blocks = 3, n = blocks * tr->block_size;
    std::vector<uint8_t> bytes(size_t(blocks) * tr->block_bytes);
    for (auto& v : bytes) v = uint8_t(rng());
    std::vector<float> row(static_cast<size_t>(n)), one(tr->block_size);
    dequantize_row(t, bytes.data(), row.data(), n);
    for (int64_t b = 0; b < blocks; ++b) {
      dequantize_row(t, bytes.data() + b * tr->block_bytes, one.data(), tr->block_size);
      EXPECT_EQ(std::memcmp(one.data(), row.data() + b * tr->block_size, one.size() * sizeof(float)), 0)
          << tensor_type_name(t) << " block " << b;
    }
  }
}

}  // namespace
}  // namespace dhi
