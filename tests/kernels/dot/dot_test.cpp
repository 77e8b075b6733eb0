// The quantized dot kernels (kernels/cpu/dot) of every weight type on every ISA
// this CPU runs, against a scalar reference built from quant/'s dequantizers:
// dequantize the weight row, dequantize the kernel's own quantized activation
// row (or take the f32 row), dot in double. Shapes cover one block, several
// blocks and 4096+ columns; 1, 3, 17 and 64 rows; 1, 2, 5 and 8 tokens (the
// decode tile, ragged prefill tiles), with misaligned row strides and a padded
// output stride. Also: every ISA's activation quantizer gives the generic one's
// bytes, the quantizer's error bound, F16's row-interleaved layout, dispatch
// and act_row_bytes, and DHI_FORCE_ISA parsing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "kernels/cpu/dot/dot.h"
#include "kernels/cpu/dot/interleave.h"
#include "kernels/cpu/dot/isa.h"
#include "quant/quant.h"

namespace dhi::kernels::cpu {
namespace {

constexpr TensorType kWeightTypes[] = {
    TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1,
    TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0, TensorType::Q2_K, TensorType::Q3_K,
    TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K,
};

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::Generic, Isa::Avx2, Isa::Avx512})
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

// Normal values whose scale changes every 32 elements (over four decades), so
// block scales, sub-block scales and mins all vary; a few exact zeros.
std::vector<float> test_values(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(-2.0f, 2.0f);
  std::vector<float> v(n);
  float scale = 1.0f;
  for (size_t i = 0; i < n; ++i) {
    if (i % 32 == 0) scale = std::pow(10.0f, ud(rng));
    v[i] = (rng() % 97 == 0) ? 0.0f : nd(rng) * scale;
  }
  return v;
}

struct Weights {
  std::vector<uint8_t> bytes;  // rows at `stride` bytes, deliberately odd
  size_t stride = 0;
  std::vector<float> deq;      // [rows][n], quant's reference dequantization
};

Weights make_weights(TensorType t, int64_t rows, int64_t n, uint64_t seed) {
  Weights w;
  const size_t rb = size_t(*row_bytes(t, uint64_t(n)));
  w.stride = rb + 3;  // misaligns every row after the first
  w.bytes.assign(w.stride * size_t(rows), 0);
  w.deq.resize(size_t(rows * n));
  const auto f = test_values(size_t(rows * n), seed);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = w.bytes.data() + size_t(r) * w.stride;
    quantize_row(t, f.data() + r * n, row, n);
    if (t == TensorType::Q8_0) {
      // GGUF files may hold -128 codes (our quantizer never writes them):
      // the kernels' |w| trick must still get them right.
      for (int64_t b = 0; b < n / 32; b += 2) row[b * sizeof(BlockQ8_0) + 2 + (r + b) % 32] = 0x80;
    }
    dequantize_row(t, row, w.deq.data() + r * n, n);
  }
  return w;
}

struct Acts {
  std::vector<uint8_t> bytes;
  size_t stride = 0;
  std::vector<float> deq;  // [tokens][n]: what the kernel multiplies by
};

Acts make_acts(const DotKernel& k, int64_t tokens, int64_t n, uint64_t seed) {
  Acts a;
  const auto x = test_values(size_t(tokens * n), seed);
  a.stride = size_t(act_row_bytes(k.act_type, n)) + 5;
  a.bytes.assign(a.stride * size_t(tokens), 0);
  a.deq.resize(size_t(tokens * n));
  for (int64_t t = 0; t < tokens; ++t) {
    uint8_t* row = a.bytes.data() + size_t(t) * a.stride;
    if (k.act_type == TensorType::F32) {
      std::memcpy(row, x.data() + t * n, size_t(n) * 4);
    } else {
      k.quantize_act(x.data() + t * n, row, n);
    }
    dequantize_row(k.act_type, row, a.deq.data() + t * n, n);
  }
  return a;
}

// Tolerance of one output. Within a block (or sub-block) the kernels' integer
// sums are exact, so the only differences from the double reference are float
// roundings: the per-block scale products (a few ulps of each block's term,
// where a scale term and a min term may cancel, hence up to ~4x the block's
// sum of |w||a|) and the float accumulation across blocks and vector lanes
// (random-walk growth ~sqrt(blocks)). With mag = sum |w_i a_i| that is
// 1e-5 (~84 f32 ulps) * sqrt(n / 32) * mag, with room to spare; a real bug (a
// wrong nibble order, a dropped tail element, a lost block) moves the result
// by ~mag / n per element and is far outside it.
// Q4_1/Q5_1 add one format term: the Q8_1 activation carries s = d * sum(q)
// as an fp16, which the kernel uses for the block-min product m * s, so each
// block may be off by |m| * |s| * 2^-11 (half an fp16 ulp, relative).
struct Expected1 {
  double value;
  double tol;
};

Expected1 reference(TensorType wt, const Weights& w, const Acts& a, const DotKernel& k, int64_t r,
                    int64_t t, int64_t n) {
  const float* wr = w.deq.data() + r * n;
  const float* ar = a.deq.data() + t * n;
  double sum = 0.0, mag = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    sum += double(wr[i]) * double(ar[i]);
    mag += std::fabs(double(wr[i]) * double(ar[i]));
  }
  double tol = 1e-5 * std::sqrt(std::max<double>(1.0, double(n) / 32.0)) * mag + 1e-30;
  if (k.act_type == TensorType::Q8_1) {
    const uint8_t* wrow = w.bytes.data() + size_t(r) * w.stride;
    const uint8_t* arow = a.bytes.data() + size_t(t) * a.stride;
    const size_t wbytes = wt == TensorType::Q4_1 ? sizeof(BlockQ4_1) : sizeof(BlockQ5_1);
    for (int64_t b = 0; b < n / 32; ++b) {
      uint16_t mh, dh;
      std::memcpy(&mh, wrow + b * wbytes + 2, 2);
      std::memcpy(&dh, arow + b * sizeof(BlockQ8_1), 2);
      const auto* qs = reinterpret_cast<const int8_t*>(arow + b * sizeof(BlockQ8_1) + 4);
      int isum = 0;
      for (int j = 0; j < 32; ++j) isum += qs[j];
      const double s = double(fp16_to_f32(dh)) * isum;
      tol += std::fabs(double(fp16_to_f32(mh))) * (std::fabs(s) * 0x1p-11 + 0x1p-24) * 1.01;
    }
  }
  return {sum, tol};
}

struct Shape {
  int64_t n, rows, tokens;
};

std::string label(TensorType t, Isa isa, const Shape& s) {
  return std::string(tensor_type_name(t)) + " " + std::string(isa_name(isa)) + " n=" + std::to_string(s.n) +
         " rows=" + std::to_string(s.rows) + " tokens=" + std::to_string(s.tokens);
}

class GemmTest : public ::testing::TestWithParam<TensorType> {};

TEST_P(GemmTest, MatchesScalarReferenceOnEveryIsa) {
  const TensorType wt = GetParam();
  const int64_t bs = type_info(wt).block_size;
  const int64_t n_large = (4100 + bs - 1) / bs * bs;  // 4100 floats: a vector tail of 4
  uint64_t seed = 1;
  for (int64_t n : {bs, (bs == 1 ? int64_t(37) : 3 * bs), n_large}) {
    for (int64_t rows : {1, 3, 17, 64}) {
      const Weights w = make_weights(wt, rows, n, seed++);
      // 16 and 37: the AVX-512 outer-product prefill (tiles of 16 tokens) and its remainder.
      for (int64_t tokens : {1, 2, 5, 8, 16, 37}) {
        const Shape shape{n, rows, tokens};
        const uint64_t act_seed = seed++;
        std::vector<float> generic_out;
        for (Isa isa : supported_isas()) {
          const DotKernel* k = dot_kernel(wt, isa);
          ASSERT_NE(k, nullptr) << label(wt, isa, shape);
          ASSERT_EQ(k->act_type, quant_traits(wt)->vec_dot_type) << label(wt, isa, shape);
          ASSERT_EQ(k->quantize_act == nullptr, k->act_type == TensorType::F32) << label(wt, isa, shape);
          const Acts a = make_acts(*k, tokens, n, act_seed);
          const size_t out_stride = size_t(rows) + 3;
          std::vector<float> out(out_stride * size_t(tokens), -12345.0f);
          k->gemm(n, w.bytes.data(), w.stride, rows, a.bytes.data(), a.stride, tokens, out.data(), out_stride);
          for (int64_t t = 0; t < tokens; ++t) {
            for (int64_t r = 0; r < rows; ++r) {
              const Expected1 e = reference(wt, w, a, *k, r, t, n);
              const float got = out[size_t(t) * out_stride + size_t(r)];
              ASSERT_NEAR(got, e.value, e.tol) << label(wt, isa, shape) << " row " << r << " token " << t;
              if (isa == Isa::Generic) continue;
              // Every ISA quantizes activations to the same bytes (checked
              // below), so it must agree with the generic kernel within the
              // same bound.
              ASSERT_FALSE(generic_out.empty());
              ASSERT_NEAR(got, generic_out[size_t(t) * out_stride + size_t(r)], e.tol)
                  << label(wt, isa, shape) << " vs generic, row " << r << " token " << t;
            }
            for (size_t pad = size_t(rows); pad < out_stride; ++pad)
              ASSERT_EQ(out[size_t(t) * out_stride + pad], -12345.0f) << "wrote past the tile";
          }
          if (isa == Isa::Generic) generic_out = out;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllWeightTypes, GemmTest, ::testing::ValuesIn(kWeightTypes),
                         [](const auto& info) { return std::string(tensor_type_name(info.param)); });

// Rows of inputs that stress the quantizer: ordinary, exact ties (x / d =
// k + 0.5), huge (step capped at the largest half), tiny (subnormal half
// scales), all zero, and non-finite values.
std::vector<std::vector<float>> quantizer_rows() {
  std::vector<std::vector<float>> rows;
  rows.push_back(test_values(4096, 7));
  std::vector<float> ties(64);
  for (int i = 0; i < 64; ++i) ties[size_t(i)] = (i == 0 ? 127.0f : float(i % 40) - 19.5f);
  rows.push_back(ties);
  std::vector<float> huge = test_values(64, 8);
  for (float& v : huge) v *= 1e36f;
  rows.push_back(huge);
  std::vector<float> tiny = test_values(64, 9);
  for (float& v : tiny) v *= 1e-9f;
  rows.push_back(tiny);
  rows.push_back(std::vector<float>(64, 0.0f));
  std::vector<float> bad = test_values(96, 10);
  bad[3] = NAN;
  bad[40] = INFINITY;
  bad[41] = -INFINITY;
  bad[70] = NAN;
  rows.push_back(bad);
  return rows;
}

TEST(QuantizeAct, EveryIsaGivesTheGenericBytes) {
  for (TensorType wt : {TensorType::Q4_0, TensorType::Q4_1}) {  // Q8_0 and Q8_1 activations
    const DotKernel* gk = dot_kernel(wt, Isa::Generic);
    ASSERT_NE(gk, nullptr);
    const auto rows = quantizer_rows();
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& x = rows[i];
      const int64_t n = int64_t(x.size());
      std::vector<uint8_t> want(act_row_bytes(gk->act_type, n));
      gk->quantize_act(x.data(), want.data(), n);
      for (Isa isa : supported_isas()) {
        const DotKernel* k = dot_kernel(wt, isa);
        ASSERT_EQ(k->act_type, gk->act_type);
        std::vector<uint8_t> got(want.size(), 0xcd);
        k->quantize_act(x.data(), got.data(), n);
        EXPECT_EQ(got, want) << tensor_type_name(gk->act_type) << " " << isa_name(isa) << " row set " << i;
      }
    }
  }
}

// The quantizer's contract, on finite inputs: d is the smallest half at or
// above amax / 127 (so no code clamps), every element within d/2 of d * q (plus
// an ulp of the multiply by 1/d), codes in -127..127, and for Q8_1 s is the
// half nearest d * sum(q).
TEST(QuantizeAct, ErrorBoundAndScale) {
  for (TensorType wt : {TensorType::Q4_0, TensorType::Q4_1}) {
    const DotKernel* k = dot_kernel(wt, Isa::Generic);
    const bool q81 = k->act_type == TensorType::Q8_1;
    const size_t bb = q81 ? sizeof(BlockQ8_1) : sizeof(BlockQ8_0);
    const auto rows = quantizer_rows();
    for (size_t i = 0; i + 1 < rows.size(); ++i) {  // the last row holds NaN/Inf
      const auto& x = rows[i];
      std::vector<uint8_t> q(act_row_bytes(k->act_type, int64_t(x.size())));
      k->quantize_act(x.data(), q.data(), int64_t(x.size()));
      for (size_t b = 0; b < x.size() / 32; ++b) {
        const uint8_t* blk = q.data() + b * bb;
        uint16_t dh;
        std::memcpy(&dh, blk, 2);
        const float d = fp16_to_f32(dh);
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
        const float step = std::min(amax / 127.0f, 65504.0f);
        EXPECT_GE(d, step) << "block " << b;
        if (dh > 0) {
          EXPECT_LT(fp16_to_f32(uint16_t(dh - 1)), step) << "block " << b;
        }
        const auto* qs = reinterpret_cast<const int8_t*>(blk + (q81 ? 4 : 2));
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
          ASSERT_GE(qs[j], -127);
          sum += qs[j];
          if (step < 65504.0f && d > 0.0f) {
            EXPECT_LE(std::fabs(x[b * 32 + j] - d * qs[j]), d * 0.5f * (1 + 1e-6f))
                << "block " << b << " " << j;
          }
        }
        if (q81) {
          uint16_t sh;
          std::memcpy(&sh, blk + 2, 2);
          EXPECT_EQ(sh, f32_to_fp16(d * float(sum))) << "block " << b;
        }
      }
    }
  }
}

// F16's row-interleaved layout (interleave.h): a byte permutation of 16 rows
// for every row length (whole 8-element columns, a tail of 1..7 halves, a
// single column); the AVX-512 kernel's gemm_interleaved gives bit for bit its
// gemm's products of the same rows (which MatchesScalarReferenceOnEveryIsa
// ties to the reference), for decode and ragged prefill token tiles.
TEST(F16Interleave, RoundTripAndGemmMatchesRows) {
  constexpr TensorType t = TensorType::F16;
  ASSERT_TRUE(has_interleaved_layout(t));
  for (int64_t n : {1, 7, 8, 37, 256, 1543}) {
    const size_t rb = size_t(n) * 2;
    for (int64_t groups : {1, 3}) {
      const int64_t rows = 16 * groups;
      // make_weights' rows are rb + 3 bytes apart: the packing reads any stride.
      const Weights w = make_weights(t, rows, n, uint64_t(n * 10 + groups));
      std::vector<uint8_t> il(rb * size_t(rows) + 1, 0xEE), back(rb);
      for (int64_t g = 0; g < groups; ++g)
        interleave_group(t, n, w.bytes.data() + size_t(g * 16) * w.stride, w.stride, il.data() + size_t(g) * 16 * rb);
      ASSERT_EQ(il.back(), 0xEE) << "wrote past the groups, n=" << n;
      for (int64_t r = 0; r < rows; ++r) {
        deinterleave_row(t, n, il.data() + size_t(r / 16) * 16 * rb, int(r % 16), back.data());
        ASSERT_EQ(std::memcmp(back.data(), w.bytes.data() + size_t(r) * w.stride, rb), 0) << "n=" << n << " row " << r;
      }
      if (n >= 8) {  // row 1's first 8 halves follow row 0's in the first column
        ASSERT_EQ(std::memcmp(il.data() + 16, w.bytes.data() + w.stride, 16), 0) << "not interleaved, n=" << n;
      }
      if (!isa_supported(Isa::Avx512)) continue;
      const DotKernel* k = dot_kernel(t, Isa::Avx512);
      ASSERT_NE(k->gemm_interleaved, nullptr);
      for (int64_t tokens : {1, 2, 3, 4, 5, 16, 17, 37}) {
        const Acts a = make_acts(*k, tokens, n, uint64_t(tokens));
        const size_t out_stride = size_t(rows) + 3;
        std::vector<float> want(out_stride * size_t(tokens), -7.0f), got(want.size(), -7.0f);
        k->gemm(n, w.bytes.data(), w.stride, rows, a.bytes.data(), a.stride, tokens, want.data(), out_stride);
        k->gemm_interleaved(n, il.data(), groups, a.bytes.data(), a.stride, tokens, got.data(), out_stride);
        for (size_t i = 0; i < want.size(); ++i) {
          uint32_t wb, gb;
          std::memcpy(&wb, &want[i], 4);
          std::memcpy(&gb, &got[i], 4);
          ASSERT_EQ(gb, wb) << "n=" << n << " groups=" << groups << " tokens=" << tokens << " index " << i;
        }
      }
    }
  }
  // Only AVX-512 reads the layout (the model loader interleaves only there).
  EXPECT_EQ(dot_kernel(t, Isa::Generic)->gemm_interleaved, nullptr);
  if (isa_supported(Isa::Avx2)) {
    EXPECT_EQ(dot_kernel(t, Isa::Avx2)->gemm_interleaved, nullptr);
  }
  for (TensorType other : {TensorType::F32, TensorType::BF16, TensorType::Q4_0}) EXPECT_FALSE(has_interleaved_layout(other));
}

TEST(Dispatch, KernelsAndRowBytes) {
  for (Isa isa : supported_isas()) {
    for (TensorType t : kWeightTypes) EXPECT_NE(dot_kernel(t, isa), nullptr) << tensor_type_name(t);
    // Activation-only types have no weight kernel.
    EXPECT_EQ(dot_kernel(TensorType::Q8_1, isa), nullptr);
    EXPECT_EQ(dot_kernel(TensorType::Q8_K, isa), nullptr);
  }
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    if (!isa_supported(isa)) {
      EXPECT_EQ(dot_kernel(TensorType::Q4_0, isa), nullptr) << isa_name(isa);
    }
  }
  EXPECT_EQ(act_row_bytes(TensorType::F32, 64), 256u);
  EXPECT_EQ(act_row_bytes(TensorType::Q8_0, 64), 68u);
  EXPECT_EQ(act_row_bytes(TensorType::Q8_1, 64), 72u);
  EXPECT_EQ(act_row_bytes(TensorType::Q8_K, 512), 584u);
  EXPECT_EQ(act_row_bytes(TensorType::Q4_0, 64), 0u);  // not an activation type
}

TEST(Isa, NamesRoundTripAndUnknownNamesAreErrors) {
  for (Isa isa : {Isa::Generic, Isa::Avx2, Isa::Avx512}) {
    auto back = isa_from_name(isa_name(isa));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, isa);
  }
  for (const char* bad : {"", "AVX2", "avx", "sse4", "avx512 ", "neon"}) {
    auto r = isa_from_name(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("unknown ISA"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("generic, avx2, avx512"), std::string::npos) << r.error().message;
  }
  EXPECT_TRUE(isa_supported(Isa::Generic));
  EXPECT_TRUE(isa_supported(best_isa()));
}

// active_isa() reads DHI_FORCE_ISA once per process, so each case runs in a
// fresh child process (the "threadsafe" death-test style re-executes the test
// binary) that sets the variable first and reports through its exit code.
int active_isa_in_child(const char* forced, const char* want_error, Isa want_isa) {
  setenv("DHI_FORCE_ISA", forced, 1);
  const auto r = active_isa();
  if (want_error) {
    if (r.ok()) return 1;
    std::fprintf(stderr, "%s\n", r.error().message.c_str());
    return r.error().message.find(want_error) != std::string::npos ? 0 : 2;
  }
  return r.ok() && *r == want_isa ? 0 : 3;
}

TEST(Isa, ForceIsaFromEnvironment) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::exit(active_isa_in_child("bogus", "DHI_FORCE_ISA: unknown ISA 'bogus'", Isa::Generic)),
              ::testing::ExitedWithCode(0), "unknown ISA");
  EXPECT_EXIT(std::exit(active_isa_in_child("generic", nullptr, Isa::Generic)), ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(std::exit(active_isa_in_child("", nullptr, best_isa())), ::testing::ExitedWithCode(0), "");
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    const std::string name(isa_name(isa));
    if (isa_supported(isa)) {
      EXPECT_EXIT(std::exit(active_isa_in_child(name.c_str(), nullptr, isa)), ::testing::ExitedWithCode(0), "");
    } else {
      EXPECT_EXIT(std::exit(active_isa_in_child(name.c_str(), "does not support", isa)),
                  ::testing::ExitedWithCode(0), "does not support");
    }
  }
}

}  // namespace
}  // namespace dhi::kernels::cpu
