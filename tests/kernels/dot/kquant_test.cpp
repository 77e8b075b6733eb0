// Tests of the K-quant dot kernels (dot_*_kquant.cpp) on every ISA this CPU
// runs: gemm against the scalar reference (quant's dequantizers and a double
// dot product) over each type and several row/token/length shapes, SIMD gemm
// outputs bit-for-bit equal to the generic kernel's, the SIMD Q8_K quantizers
// byte-for-byte against the generic one, and guards that the SIMD providers
// really are specialised and that the dispatcher hands them out.
// Throughput is measured by bench/matmul_bench.cpp, not here.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/fp16.h"
#include "kernels/cpu/dot/dot.h"
#include "kernels/cpu/dot/interleave.h"
#include "quant/quant.h"

namespace dhi::kernels::cpu {
namespace {

constexpr TensorType kKTypes[] = {TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K,
                                  TensorType::Q6_K};
constexpr Isa kIsas[] = {Isa::Generic, Isa::Avx2, Isa::Avx512};

const DotKernel* kquant_kernel(TensorType t, Isa isa) {
  switch (isa) {
    case Isa::Generic: return detail::generic_kquant_kernel(t);
    case Isa::Avx2: return detail::avx2_kquant_kernel(t);
    case Isa::Avx512: return detail::avx512_kquant_kernel(t);
  }
  return nullptr;
}

struct KLayout {
  size_t block_bytes;
  int d_offset;     // byte offset of the fp16 d
  int dmin_offset;  // of the fp16 dmin, or -1
};

KLayout k_layout(TensorType t) {
  switch (t) {
    case TensorType::Q2_K: return {sizeof(BlockQ2_K), 80, 82};
    case TensorType::Q3_K: return {sizeof(BlockQ3_K), 108, -1};
    case TensorType::Q4_K: return {sizeof(BlockQ4_K), 0, 2};
    case TensorType::Q5_K: return {sizeof(BlockQ5_K), 0, 2};
    case TensorType::Q6_K: return {sizeof(BlockQ6_K), 208, -1};
    default: return {0, 0, -1};
  }
}

// Random bytes are a valid block of every K type (all scale and quant bit
// patterns mean something); only the fp16 super-scales are replaced by finite,
// moderate values of either sign so sums stay far from float overflow.
void fill_random_row(TensorType t, uint8_t* row, int64_t n, std::mt19937& rng) {
  const KLayout l = k_layout(t);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> mag(0.001f, 0.05f);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    uint8_t* blk = row + size_t(b) * l.block_bytes;
    for (size_t i = 0; i < l.block_bytes; ++i) blk[i] = uint8_t(byte(rng));
    auto put = [&](int off) {
      const uint16_t h = f32_to_fp16(byte(rng) < 128 ? -mag(rng) : mag(rng));
      std::memcpy(blk + off, &h, 2);
    };
    put(l.d_offset);
    if (l.dmin_offset >= 0) put(l.dmin_offset);
  }
}

// Activations with a different magnitude per super-block, so the per-block
// Q8_K scales differ.
std::vector<float> random_acts(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_real_distribution<float> scale(0.05f, 20.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float s = scale(rng);
    for (int i = 0; i < QK_K; ++i) x[size_t(b * QK_K + i)] = s * g(rng);
  }
  return x;
}

// The affine types' min term magnitude bound per element: |dmin| * 63.
double min_term_bound(TensorType t, const uint8_t* blk) {
  const KLayout l = k_layout(t);
  if (l.dmin_offset < 0) return 0.0;
  uint16_t h;
  std::memcpy(&h, blk + l.dmin_offset, 2);
  return std::fabs(double(fp16_to_f32(h))) * 63.0;
}

struct GemmCase {
  TensorType type;
  Isa isa;
  int64_t n, rows, tokens;
};

// Runs the kernel on padded, deliberately misaligned buffers (rows one byte
// past an allocation's start, strides that are not multiples of anything) and
// compares each output with a double dot of the dequantized weight row and the
// dequantized Q8_K activation row.
//
// Tolerance: the kernels' integer sums are exact; what differs from the double
// reference is float rounding only: quant's dequantizer rounds d*sc, *q and
// -dmin*m (<= 3 roundings per element, relative 2^-24 each, of a magnitude at
// most |w_i| + 2|dmin*m_i|), the Q8_K dequantizer rounds da*q once, and the
// kernel rounds the int->float conversions and two products per super-block
// and then adds n/256 block results in float. With M = sum_i |a_i|(|w_i| +
// 2*63*|dmin|) bounding every such term, the error is below (n/256 + 8) * 2^-24
// * M; the test allows twice that.
void check_gemm(const GemmCase& c) {
  const DotKernel* k = kquant_kernel(c.type, c.isa);
  ASSERT_NE(k, nullptr);
  ASSERT_EQ(k->act_type, TensorType::Q8_K);
  std::mt19937 rng(uint32_t(c.n * 131 + c.rows * 17 + c.tokens * 3 + int(c.type)));
  const KLayout l = k_layout(c.type);
  const size_t row_bytes = size_t(c.n / QK_K) * l.block_bytes;
  const size_t w_stride = row_bytes + 5;
  const size_t act_bytes = size_t(c.n / QK_K) * sizeof(BlockQ8_K);
  const size_t act_stride = act_bytes + 3;
  const size_t out_stride = size_t(c.rows) + 2;

  std::vector<uint8_t> wbuf(1 + w_stride * size_t(c.rows));
  uint8_t* w = wbuf.data() + 1;
  for (int64_t r = 0; r < c.rows; ++r) fill_random_row(c.type, w + size_t(r) * w_stride, c.n, rng);

  std::vector<uint8_t> abuf(1 + act_stride * size_t(c.tokens));
  uint8_t* act = abuf.data() + 1;
  std::vector<std::vector<float>> act_deq(size_t(c.tokens), std::vector<float>(size_t(c.n)));
  for (int64_t t = 0; t < c.tokens; ++t) {
    const std::vector<float> x = random_acts(c.n, rng);
    k->quantize_act(x.data(), act + size_t(t) * act_stride, c.n);
    dequantize_row(TensorType::Q8_K, act + size_t(t) * act_stride, act_deq[size_t(t)].data(), c.n);
  }

  const float sentinel = -12345.0f;
  std::vector<float> out(out_stride * size_t(c.tokens), sentinel);
  k->gemm(c.n, w, w_stride, c.rows, act, act_stride, c.tokens, out.data(), out_stride);

  // Every kernel reduces each super-block to the same two exact integers and
  // combines them with the same float expression in block order (see
  // dot_kquant_internal.h), so the SIMD outputs equal the generic ones exactly.
  if (c.isa != Isa::Generic) {
    std::vector<float> want(out.size(), sentinel);
    kquant_kernel(c.type, Isa::Generic)
        ->gemm(c.n, w, w_stride, c.rows, act, act_stride, c.tokens, want.data(), out_stride);
    for (size_t i = 0; i < out.size(); ++i)
      ASSERT_EQ(f32_to_bits(out[i]), f32_to_bits(want[i])) << tensor_type_name(c.type) << " " << isa_name(c.isa)
                                                           << " n=" << c.n << " rows=" << c.rows
                                                           << " tokens=" << c.tokens << " index " << i;
  }

  std::vector<float> wdeq(size_t(c.n));
  for (int64_t r = 0; r < c.rows; ++r) {
    const uint8_t* wrow = w + size_t(r) * w_stride;
    dequantize_row(c.type, wrow, wdeq.data(), c.n);
    for (int64_t t = 0; t < c.tokens; ++t) {
      double ref = 0.0, mag = 0.0;
      for (int64_t i = 0; i < c.n; ++i) {
        const double a = act_deq[size_t(t)][size_t(i)];
        ref += double(wdeq[size_t(i)]) * a;
        const double minb = min_term_bound(c.type, wrow + size_t(i / QK_K) * l.block_bytes);
        mag += std::fabs(a) * (std::fabs(double(wdeq[size_t(i)])) + 2.0 * minb);
      }
      const double tol = 2.0 * (double(c.n / QK_K) + 8.0) * std::ldexp(1.0, -24) * mag;
      const double got = out[size_t(t) * out_stride + size_t(r)];
      ASSERT_NEAR(got, ref, tol) << tensor_type_name(c.type) << " " << isa_name(c.isa) << " n=" << c.n
                                 << " rows=" << c.rows << " tokens=" << c.tokens << " r=" << r << " t=" << t;
    }
  }
  // Padding between output rows is untouched.
  for (int64_t t = 0; t < c.tokens; ++t)
    for (size_t r = size_t(c.rows); r < out_stride; ++r) ASSERT_EQ(out[size_t(t) * out_stride + r], sentinel);
}

class KQuantGemm : public ::testing::TestWithParam<std::tuple<TensorType, Isa>> {};

TEST_P(KQuantGemm, MatchesScalarReference) {
  const auto [type, isa] = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << isa_name(isa) << " not supported on this CPU";
  for (int64_t n : {256, 512, 4096})
    for (int64_t rows : {1, 3, 17})
      for (int64_t tokens : {1, 3, 8, 16, 37}) {
        check_gemm({type, isa, n, rows, tokens});
        if (HasFatalFailure()) return;
      }
}

// Tokens 1..9 and 16..33 cover every tile remainder of the token loops (tiles
// of 8 tokens, and of 16 with a remainder of up to 15 on the smaller tiles).
TEST_P(KQuantGemm, EveryTokenTileRemainder) {
  const auto [type, isa] = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << isa_name(isa) << " not supported on this CPU";
  for (int64_t tokens = 1; tokens <= 33; tokens += tokens < 9 || tokens >= 16 ? 1 : 7) {
    check_gemm({type, isa, 512, 2, tokens});
    if (HasFatalFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypesAllIsas, KQuantGemm,
                         ::testing::Combine(::testing::ValuesIn(kKTypes), ::testing::ValuesIn(kIsas)),
                         [](const auto& info) {
                           return std::string(tensor_type_name(std::get<0>(info.param))) + "_" +
                                  std::string(isa_name(std::get<1>(info.param)));
                         });

// The interleaved layout is a byte permutation: every row of a group comes
// back exactly, and the group takes 16 rows' bytes.
TEST(KQuantInterleave, RowsRoundTrip) {
  for (TensorType t : {TensorType::Q4_K, TensorType::Q6_K}) {
    ASSERT_TRUE(has_interleaved_layout(t));
    for (int64_t n : {256, 768}) {
      std::mt19937 rng(uint32_t(n) + uint32_t(t));
      const size_t rb = size_t(n / QK_K) * k_layout(t).block_bytes;
      std::vector<uint8_t> rows(16 * rb), group(16 * rb + 1, 0xEE), back(rb);
      std::uniform_int_distribution<int> byte(0, 255);
      for (uint8_t& b : rows) b = uint8_t(byte(rng));
      interleave_group(t, n, rows.data(), rb, group.data());
      ASSERT_EQ(group.back(), 0xEE) << "wrote past the group";
      ASSERT_NE(std::memcmp(rows.data(), group.data(), rows.size()), 0) << "not interleaved";
      for (int r = 0; r < 16; ++r) {
        deinterleave_row(t, n, group.data(), r, back.data());
        ASSERT_EQ(std::memcmp(back.data(), rows.data() + size_t(r) * rb, rb), 0) << tensor_type_name(t) << " row " << r;
      }
    }
  }
  for (TensorType t : {TensorType::Q2_K, TensorType::Q4_0}) EXPECT_FALSE(has_interleaved_layout(t));
}

// gemm_interleaved on groups of 16 rows gives bit-for-bit the generic kernel's
// products of the same rows (which MatchesScalarReference ties to the scalar
// reference), for decode, every small-batch remainder and prefill tiles.
TEST(KQuantInterleave, GemmMatchesGeneric) {
  if (!isa_supported(Isa::Avx512)) GTEST_SKIP() << "avx512 not supported on this CPU";
  for (TensorType t : {TensorType::Q4_K, TensorType::Q6_K}) {
    const DotKernel* k = kquant_kernel(t, Isa::Avx512);
    ASSERT_NE(k->gemm_interleaved, nullptr) << tensor_type_name(t);
    for (int64_t n : {256, 512, 4096})
      for (int64_t groups : {1, 3})
        for (int64_t tokens : {1, 2, 3, 4, 5, 9, 15, 16, 17, 37}) {
          std::mt19937 rng(uint32_t(n * 7 + groups * 3 + tokens));
          const int64_t rows = 16 * groups;
          const size_t rb = size_t(n / QK_K) * k_layout(t).block_bytes;
          std::vector<uint8_t> w(rb * size_t(rows)), il(w.size() + 1);
          for (int64_t r = 0; r < rows; ++r) fill_random_row(t, w.data() + size_t(r) * rb, n, rng);
          for (int64_t g = 0; g < groups; ++g)
            interleave_group(t, n, w.data() + size_t(g) * 16 * rb, rb, il.data() + 1 + size_t(g) * 16 * rb);
          // The kernel's vectorised interleaving writes the same bytes.
          std::vector<uint8_t> fast(il.size(), 0x5A);
          ASSERT_NE(k->interleave_group, nullptr);
          for (int64_t g = 0; g < groups; ++g)
            k->interleave_group(n, w.data() + size_t(g) * 16 * rb, rb, fast.data() + 1 + size_t(g) * 16 * rb);
          ASSERT_EQ(std::memcmp(fast.data() + 1, il.data() + 1, w.size()), 0) << tensor_type_name(t) << " n=" << n;
          const size_t act_stride = size_t(n / QK_K) * sizeof(BlockQ8_K) + 3;
          std::vector<uint8_t> act(act_stride * size_t(tokens) + 1);
          for (int64_t i = 0; i < tokens; ++i) {
            const std::vector<float> x = random_acts(n, rng);
            k->quantize_act(x.data(), act.data() + 1 + size_t(i) * act_stride, n);
          }
          const size_t out_stride = size_t(rows) + 2;
          std::vector<float> want(out_stride * size_t(tokens), -7.0f), got(want.size(), -7.0f);
          kquant_kernel(t, Isa::Generic)
              ->gemm(n, w.data(), rb, rows, act.data() + 1, act_stride, tokens, want.data(), out_stride);
          k->gemm_interleaved(n, il.data() + 1, groups, act.data() + 1, act_stride, tokens, got.data(), out_stride);
          for (size_t i = 0; i < want.size(); ++i)
            ASSERT_EQ(f32_to_bits(got[i]), f32_to_bits(want[i])) << tensor_type_name(t) << " n=" << n << " groups="
                                                                 << groups << " tokens=" << tokens << " index " << i;
        }
  }
  // Only the types with an interleaved kernel have one, and only on AVX-512.
  for (TensorType t : kKTypes) {
    EXPECT_EQ(kquant_kernel(t, Isa::Generic)->gemm_interleaved, nullptr) << tensor_type_name(t);
    EXPECT_EQ(kquant_kernel(t, Isa::Avx2)->gemm_interleaved, nullptr) << tensor_type_name(t);
    EXPECT_EQ(kquant_kernel(t, Isa::Avx512)->gemm_interleaved != nullptr, has_interleaved_layout(t))
        << tensor_type_name(t);
    EXPECT_EQ(kquant_kernel(t, Isa::Avx512)->interleave_group != nullptr, has_interleaved_layout(t))
        << tensor_type_name(t);
  }
}

// Inputs for the quantizer comparison: ordinary values plus every edge the
// rounding and clamping must agree on.
std::vector<float> quantizer_inputs(std::mt19937& rng) {
  std::vector<float> x = random_acts(16 * QK_K, rng);
  float* b = x.data();
  // Block 1: all zeros (d = 0). Block 2: exact halves (amax 127 -> d = 1, so
  // x/d lands on .5 ties, which round away from zero).
  std::fill(b + QK_K, b + 2 * QK_K, 0.0f);
  for (int i = 0; i < QK_K; ++i) b[2 * QK_K + i] = float(i % 127) - 63.5f;
  b[2 * QK_K + 7] = 127.0f;
  b[2 * QK_K + 8] = -0.5f;
  b[2 * QK_K + 9] = 0.5f;
  b[2 * QK_K + 10] = -0.0f;
  // Block 3: NaN and infinities among finite values (ignored for the scale;
  // NaN -> 0, +-inf -> +-127).
  b[3 * QK_K + 0] = std::numeric_limits<float>::quiet_NaN();
  b[3 * QK_K + 17] = std::numeric_limits<float>::infinity();
  b[3 * QK_K + 200] = -std::numeric_limits<float>::infinity();
  // Block 4: all NaN. Block 5: huge and tiny magnitudes. Block 6: one element.
  std::fill(b + 4 * QK_K, b + 5 * QK_K, std::numeric_limits<float>::quiet_NaN());
  for (int i = 0; i < QK_K; ++i) b[5 * QK_K + i] = (i % 2 ? 3.0e38f : -1.0e-38f) * float(i % 7);
  std::fill(b + 6 * QK_K, b + 7 * QK_K, 0.0f);
  b[6 * QK_K + 255] = -1.0e-30f;
  // Block 7: values just around the half-way points after scaling.
  for (int i = 0; i < QK_K; ++i) b[7 * QK_K + i] = std::nextafter(float(i % 64) + 0.5f, i % 3 ? 0.0f : 100.0f);
  b[7 * QK_K] = 127.0f;
  return x;
}

class KQuantQuantizeAct : public ::testing::TestWithParam<std::tuple<TensorType, Isa>> {};

TEST_P(KQuantQuantizeAct, IdenticalToGeneric) {
  const auto [type, isa] = GetParam();
  if (!isa_supported(isa)) GTEST_SKIP() << isa_name(isa) << " not supported on this CPU";
  const DotKernel* k = kquant_kernel(type, isa);
  const DotKernel* g = kquant_kernel(type, Isa::Generic);
  ASSERT_NE(k, nullptr);
  ASSERT_NE(k->quantize_act, nullptr);
  std::mt19937 rng(7);
  for (int rep = 0; rep < 4; ++rep) {
    const std::vector<float> x = quantizer_inputs(rng);
    const int64_t n = int64_t(x.size());
    const size_t bytes = size_t(n / QK_K) * sizeof(BlockQ8_K);
    std::vector<uint8_t> want(bytes + 1, 0xAA), got(bytes + 1, 0x55);
    g->quantize_act(x.data(), want.data(), n);
    k->quantize_act(x.data(), got.data() + 1, n);  // misaligned destination
    ASSERT_EQ(std::memcmp(want.data(), got.data() + 1, bytes), 0) << isa_name(isa) << " rep " << rep;
    // The reference itself: within d/2 of every finite input, bsums consistent.
    for (int64_t b = 0; b < n / QK_K; ++b) {
      BlockQ8_K blk;
      std::memcpy(&blk, want.data() + size_t(b) * sizeof(BlockQ8_K), sizeof(blk));
      for (int s = 0; s < 16; ++s) {
        int sum = 0;
        for (int i = 0; i < 16; ++i) sum += blk.qs[16 * s + i];
        ASSERT_EQ(sum, blk.bsums[s]);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypesAllIsas, KQuantQuantizeAct,
                         ::testing::Combine(::testing::ValuesIn(kKTypes), ::testing::ValuesIn(kIsas)),
                         [](const auto& info) {
                           return std::string(tensor_type_name(std::get<0>(info.param))) + "_" +
                                  std::string(isa_name(std::get<1>(info.param)));
                         });

// Each SIMD provider must return its own kernels for all five K types: a
// provider that handed back the generic kernel (or nothing) would still pass
// the accuracy tests while silently running the slow path.
TEST(KQuantProviders, SimdPathsAreSpecialised) {
  for (TensorType t : kKTypes) {
    const DotKernel* g = detail::generic_kquant_kernel(t);
    ASSERT_NE(g, nullptr) << tensor_type_name(t);
    for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
      const DotKernel* k = kquant_kernel(t, isa);
      ASSERT_NE(k, nullptr) << tensor_type_name(t) << " " << isa_name(isa);
      EXPECT_NE(k, g) << tensor_type_name(t) << " " << isa_name(isa);
      EXPECT_NE(k->gemm, g->gemm) << tensor_type_name(t) << " " << isa_name(isa);
      EXPECT_NE(k->quantize_act, g->quantize_act) << tensor_type_name(t) << " " << isa_name(isa);
    }
    EXPECT_NE(detail::avx2_kquant_kernel(t)->gemm, detail::avx512_kquant_kernel(t)->gemm) << tensor_type_name(t);
  }
  for (TensorType t : {TensorType::F32, TensorType::Q4_0, TensorType::Q8_0, TensorType::Q8_K})
    for (Isa isa : kIsas) EXPECT_EQ(kquant_kernel(t, isa), nullptr) << tensor_type_name(t) << " " << isa_name(isa);
}

// The dispatcher hands out exactly these kernels on every ISA the CPU runs, so
// a K type on AVX-512 really runs the AVX-512 kernel and not a fallback.
TEST(KQuantProviders, DispatcherPicksTheIsaKernel) {
  for (TensorType t : kKTypes) {
    for (Isa isa : kIsas) {
      if (!isa_supported(isa)) continue;
      EXPECT_EQ(dot_kernel(t, isa), kquant_kernel(t, isa)) << tensor_type_name(t) << " " << isa_name(isa);
      if (isa != Isa::Generic) {
        EXPECT_NE(dot_kernel(t, isa), dot_kernel(t, Isa::Generic)) << tensor_type_name(t) << " " << isa_name(isa);
      }
    }
    EXPECT_EQ(act_row_bytes(TensorType::Q8_K, 4096), 16 * sizeof(BlockQ8_K));
  }
}

}  // namespace
}  // namespace dhi::kernels::cpu
