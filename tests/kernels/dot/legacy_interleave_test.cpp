// The row-interleaved Q8_0 layout (kernels/cpu/dot/interleave.h) and the
// AVX-512 kernels that read it (dot_avx512_legacy.cpp): the layout is a byte
// permutation (every row of a group comes back exactly, with -128 codes and
// odd block counts), the vectorised interleaving writes the portable one's
// bytes, and gemm_interleaved gives bit-for-bit the file-layout kernel's
// products of the same rows (which dot_test.cpp ties to the scalar reference)
// for decode, every small-batch remainder, prefill tiles and their ragged
// ends, over one block, an odd number of blocks and long rows.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "kernels/cpu/dot/dot.h"
#include "kernels/cpu/dot/interleave.h"
#include "quant/blocks_legacy.h"
#include "quant/quant.h"

namespace dhi::kernels::cpu {
namespace {

constexpr size_t kBlockBytes = sizeof(BlockQ8_0);

// Quantized random rows, one -128 code per block (GGUF files may hold them;
// our quantizer never writes one) and scales that vary by block.
std::vector<uint8_t> q8_rows(int64_t rows, int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> scale(0.01f, 10.0f);
  std::vector<float> f(size_t(rows * n));
  for (size_t i = 0; i < f.size(); i += 32) {
    const float s = scale(rng);
    for (size_t j = 0; j < 32; ++j) f[i + j] = nd(rng) * s;
  }
  std::vector<uint8_t> bytes(size_t(rows * n / 32) * kBlockBytes);
  const size_t rb = size_t(n / 32) * kBlockBytes;
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = bytes.data() + size_t(r) * rb;
    quantize_row(TensorType::Q8_0, f.data() + r * n, row, n);
    for (int64_t b = 0; b < n / 32; ++b) row[size_t(b) * kBlockBytes + 2 + size_t(r + 3 * b) % 32] = 0x80;
  }
  return bytes;
}

TEST(Q8_0Interleave, RowsRoundTrip) {
  ASSERT_TRUE(has_interleaved_layout(TensorType::Q8_0));
  for (int64_t n : {32, 96, 1536}) {
    std::mt19937 rng{uint32_t(n)};
    const size_t rb = size_t(n / 32) * kBlockBytes;
    const std::vector<uint8_t> rows = q8_rows(16, n, rng);
    std::vector<uint8_t> group(16 * rb + 1, 0xEE), back(rb);
    interleave_group(TensorType::Q8_0, n, rows.data(), rb, group.data());
    ASSERT_EQ(group.back(), 0xEE) << "wrote past the group";
    ASSERT_NE(std::memcmp(rows.data(), group.data(), rows.size()), 0) << "not interleaved";
    // The first column: the 16 rows' d's, then quant byte 0..3 of rows 0..15.
    for (int r = 0; r < 16; ++r) {
      ASSERT_EQ(std::memcmp(group.data() + 2 * r, rows.data() + size_t(r) * rb, 2), 0) << "d of row " << r;
      ASSERT_EQ(std::memcmp(group.data() + 32 + 4 * r, rows.data() + size_t(r) * rb + 2, 4), 0) << "qs of row " << r;
    }
    for (int r = 0; r < 16; ++r) {
      deinterleave_row(TensorType::Q8_0, n, group.data(), r, back.data());
      ASSERT_EQ(std::memcmp(back.data(), rows.data() + size_t(r) * rb, rb), 0) << "n=" << n << " row " << r;
    }
  }
}

TEST(Q8_0Interleave, GemmMatchesFileLayout) {
  if (!isa_supported(Isa::Avx512)) GTEST_SKIP() << "avx512 not supported on this CPU";
  const DotKernel* k = detail::avx512_legacy_kernel(TensorType::Q8_0);
  ASSERT_NE(k->gemm_interleaved, nullptr);
  ASSERT_NE(k->interleave_group, nullptr);
  for (int64_t n : {32, 96, 1536})
    for (int64_t groups : {1, 3})
      for (int64_t tokens : {1, 2, 3, 4, 5, 15, 16, 17, 18, 33, 37}) {
        std::mt19937 rng(uint32_t(n * 7 + groups * 3 + tokens));
        const int64_t rows = 16 * groups;
        const size_t rb = size_t(n / 32) * kBlockBytes;
        const std::vector<uint8_t> w = q8_rows(rows, n, rng);
        // Interleaved at an odd address: the kernel must not assume alignment.
        std::vector<uint8_t> il(w.size() + 1), fast(w.size() + 1, 0x5A);
        for (int64_t g = 0; g < groups; ++g) {
          interleave_group(TensorType::Q8_0, n, w.data() + size_t(g) * 16 * rb, rb, il.data() + 1 + size_t(g) * 16 * rb);
          k->interleave_group(n, w.data() + size_t(g) * 16 * rb, rb, fast.data() + 1 + size_t(g) * 16 * rb);
        }
        ASSERT_EQ(std::memcmp(fast.data() + 1, il.data() + 1, w.size()), 0) << "n=" << n;
        const size_t act_stride = size_t(act_row_bytes(k->act_type, n)) + 3;
        std::vector<uint8_t> act(act_stride * size_t(tokens) + 1);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        for (int64_t t = 0; t < tokens; ++t) {
          std::vector<float> x(static_cast<size_t>(n));
          for (float& v : x) v = nd(rng);
          k->quantize_act(x.data(), act.data() + 1 + size_t(t) * act_stride, n);
        }
        const size_t out_stride = size_t(rows) + 2;
        std::vector<float> want(out_stride * size_t(tokens), -7.0f), got(want.size(), -7.0f);
        k->gemm(n, w.data(), rb, rows, act.data() + 1, act_stride, tokens, want.data(), out_stride);
        k->gemm_interleaved(n, il.data() + 1, groups, act.data() + 1, act_stride, tokens, got.data(), out_stride);
        for (size_t i = 0; i < want.size(); ++i)
          ASSERT_EQ(f32_to_bits(got[i]), f32_to_bits(want[i]))
              << "n=" << n << " groups=" << groups << " tokens=" << tokens << " index " << i;
      }
}

// Only AVX-512 reads the interleaved Q8_0 (and F16, see dot_test) layout; the
// other legacy types and ISAs keep the file layout.
TEST(Q8_0Interleave, OnlyAvx512Q8_0HasTheKernels) {
  EXPECT_EQ(detail::generic_legacy_kernel(TensorType::Q8_0)->gemm_interleaved, nullptr);
  EXPECT_EQ(detail::avx2_legacy_kernel(TensorType::Q8_0)->gemm_interleaved, nullptr);
  for (TensorType t : {TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1}) {
    EXPECT_FALSE(has_interleaved_layout(t)) << tensor_type_name(t);
    EXPECT_EQ(detail::avx512_legacy_kernel(t)->gemm_interleaved, nullptr) << tensor_type_name(t);
  }
}

}  // namespace
}  // namespace dhi::kernels::cpu
