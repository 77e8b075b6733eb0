// CPU kernels against plain scalar references written here: matmul and
// get_rows over every weight type and odd shapes (one row, one block of
// columns, row counts that are not multiples of the tile or thread count, one
// and several tokens, shapes that split into several decode chunks, prefill
// row blocks and token tiles), the row-interleaved layout against the file
// layout (bit for bit, where the ISA has interleaved kernels), matmul_multi
// against one matmul per matrix (bit for bit, mixed types), RMS norm, rope
// (hand-derived angles), SwiGLU and attention (GQA, several sequences).
//
// The matmul reference is the old f32 path: dequantize the weight row and the
// activation row the kernel actually multiplies (x quantized by the pairing
// 8-bit type, as the generic quantizer does; every ISA's quantizer gives the
// same bytes, which kernels/dot's tests check), dot in double.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numbers>
#include <random>
#include <tuple>
#include <vector>

#include "core/fp16.h"
#include "kernels/cpu/dot/dot.h"
#include "kernels/cpu/dot/isa.h"
#include "kernels/cpu/ops.h"
#include "quant/quant.h"

namespace dhi::kernels::cpu {
namespace {

std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

struct Quantized {
  std::vector<uint8_t> bytes;
  std::vector<float> deq;  // what the kernel must effectively multiply by
  WeightMatrix w;
};

Quantized make_weights(TensorType t, int64_t rows, int64_t cols, uint64_t seed) {
  Quantized q;
  const auto f = randn(size_t(rows * cols), seed);
  if (t == TensorType::F32) {
    q.bytes.resize(f.size() * 4);
    std::memcpy(q.bytes.data(), f.data(), q.bytes.size());
  } else {
    auto r = dhi::quantize(t, f);
    EXPECT_TRUE(r.ok());
    q.bytes = std::move(r).value();
  }
  const uint64_t rb = *row_bytes(t, uint64_t(cols));
  q.deq.resize(f.size());
  for (int64_t r = 0; r < rows; ++r) dhi::dequantize_row(t, q.bytes.data() + r * rb, q.deq.data() + r * cols, cols);
  q.w = {q.bytes.data(), t, cols, rows, rb};
  return q;
}

constexpr TensorType kTypes[] = {
    TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0,
    TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q2_K, TensorType::Q3_K,
    TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K,
};

class MatmulTypes : public ::testing::TestWithParam<TensorType> {};

// The activation rows a matmul of weight type t multiplies by, dequantized:
// x itself for float weights, else x quantized to t's 8-bit pairing type.
// Also returns, for Q4_1/Q5_1, the bound of one extra format term per output
// (see reference_tolerance): per token and block, |d_a * sum(q_a)|.
std::vector<float> effective_activations(TensorType t, const std::vector<float>& x, int64_t tokens, int64_t cols,
                                         std::vector<double>* block_sums) {
  const DotKernel* k = dot_kernel(t, Isa::Generic);
  EXPECT_NE(k, nullptr);
  if (!k || k->act_type == TensorType::F32) return x;
  const size_t rb = size_t(act_row_bytes(k->act_type, cols));
  std::vector<uint8_t> q(rb * size_t(tokens));
  std::vector<float> out(x.size());
  for (int64_t tk = 0; tk < tokens; ++tk) {
    k->quantize_act(x.data() + tk * cols, q.data() + size_t(tk) * rb, cols);
    dequantize_row(k->act_type, q.data() + size_t(tk) * rb, out.data() + tk * cols, cols);
  }
  if (k->act_type == TensorType::Q8_1 && block_sums) {
    for (int64_t tk = 0; tk < tokens; ++tk)
      for (int64_t b = 0; b < cols / 32; ++b) {
        double s = 0.0;
        for (int j = 0; j < 32; ++j) s += out[size_t(tk * cols + b * 32 + j)];
        block_sums->push_back(std::fabs(s));
      }
  }
  return out;
}

// Within a block the kernels' integer sums are exact; what differs from the
// double reference is float rounding of the per-block scale products (a few
// ulps of each block's term; a scale and a min term may cancel) and of the
// accumulation across blocks and lanes (~sqrt(blocks)): 1e-5 (~84 f32 ulps)
// * sqrt(n / 32) * sum|w_i a_i| covers it with room to spare, and a real bug
// (a wrong element order, a dropped block or tail) is far outside it. Q4_1/Q5_1
// add their format's fp16 s = d_a * sum(q_a), used for the min product m * s:
// per block |m| * |s| * 2^-11 (half an fp16 ulp, relative).
double reference_tolerance(double mag, int64_t cols, double min_term) {
  return 1e-5 * std::sqrt(std::max(1.0, double(cols) / 32.0)) * mag + min_term + 1e-12;
}

TEST_P(MatmulTypes, MatchesScalarReferenceOnOddShapes) {
  const TensorType t = GetParam();
  const int64_t block = type_info(t).block_size;
  const int64_t k1024 = block * ((1024 + block - 1) / block);
  struct Shape { int64_t rows, cols, tokens; int threads; };
  const Shape shapes[] = {
      {1, block, 1, 1},        // one row, one block of columns
      {1, block, 5, 3},        // one row, several tokens, more threads than rows
      {13, block * 2, 1, 3},   // rows not a multiple of any tile or the threads
      {37, block * 3, 4, 2},   // prefill-like batch
      {8, block, 2, 4},        // exactly one decode tile
      // Large enough that the matmul splits into several chunks across the
      // threads (small products run on the calling thread).
      {67, k1024, 3, 3},
      {300, k1024, 1, 3},      // decode: several row chunks, a ragged last one
      {70, k1024, 200, 2},     // prefill: 3 row blocks, several token tiles
  };
  for (const Shape& s : shapes) {
    Quantized q = make_weights(t, s.rows, s.cols, uint64_t(s.rows * 1000 + s.cols));
    const auto x = randn(size_t(s.tokens * s.cols), 99);
    std::vector<double> act_block_sums;
    const auto xa = effective_activations(t, x, s.tokens, s.cols, &act_block_sums);
    std::vector<float> y(size_t(s.tokens * s.rows), -1.0f);
    ThreadPool pool(s.threads);
    matmul(pool, q.w, x.data(), s.tokens, y.data());
    const bool affine = t == TensorType::Q4_1 || t == TensorType::Q5_1;
    for (int64_t tk = 0; tk < s.tokens; ++tk) {
      for (int64_t r = 0; r < s.rows; ++r) {
        double want = 0.0, mag = 0.0, min_term = 0.0;
        for (int64_t c = 0; c < s.cols; ++c) {
          want += double(q.deq[size_t(r * s.cols + c)]) * xa[size_t(tk * s.cols + c)];
          mag += std::fabs(double(q.deq[size_t(r * s.cols + c)]) * xa[size_t(tk * s.cols + c)]);
        }
        if (affine) {
          const size_t bb = t == TensorType::Q4_1 ? sizeof(BlockQ4_1) : sizeof(BlockQ5_1);
          for (int64_t b = 0; b < s.cols / 32; ++b) {
            uint16_t mh;
            std::memcpy(&mh, q.bytes.data() + size_t(r) * q.w.row_bytes + size_t(b) * bb + 2, 2);
            const double sa = act_block_sums[size_t(tk * (s.cols / 32) + b)];
            min_term += std::fabs(double(fp16_to_f32(mh))) * (sa * 0x1p-11 + 0x1p-24) * 1.01;
          }
        }
        EXPECT_NEAR(y[size_t(tk * s.rows + r)], want, reference_tolerance(mag, s.cols, min_term))
            << tensor_type_name(t) << " rows " << s.rows << " cols " << s.cols << " token " << tk << " row " << r;
      }
    }
  }
}

// Quantizing the activations costs accuracy against f32 activations, but
// only the activation rounding: |x - d q| <= d/2 per element with d <= amax/127
// rounded up to a half, so the product moves by at most about
// sum |w_i| * amax_block / 254; check the matmul stays within that of the
// exact f32 product (this is the error the model tests budget for).
TEST_P(MatmulTypes, ActivationQuantizationErrorIsBounded) {
  const TensorType t = GetParam();
  const int64_t block = type_info(t).block_size;
  const int64_t cols = block * ((512 + block - 1) / block), rows = 40, tokens = 3;
  Quantized q = make_weights(t, rows, cols, 7);
  const auto x = randn(size_t(tokens * cols), 8);
  std::vector<float> y(size_t(tokens * rows));
  ThreadPool pool(2);
  matmul(pool, q.w, x.data(), tokens, y.data());
  // Activation scale blocks: 32 elements (Q8_0/Q8_1), 256 (Q8_K).
  const int64_t ab = dot_kernel(t, Isa::Generic)->act_type == TensorType::Q8_K ? 256 : 32;
  const bool float_act = dot_kernel(t, Isa::Generic)->act_type == TensorType::F32;
  for (int64_t tk = 0; tk < tokens; ++tk)
    for (int64_t r = 0; r < rows; ++r) {
      double exact = 0.0, bound = 0.0, mag = 0.0;
      for (int64_t b = 0; b < cols / ab; ++b) {
        double amax = 0.0, wsum = 0.0;
        for (int64_t j = 0; j < ab; ++j) {
          const double w = q.deq[size_t(r * cols + b * ab + j)], xv = x[size_t(tk * cols + b * ab + j)];
          exact += w * xv;
          mag += std::fabs(w * xv);
          amax = std::max(amax, std::fabs(xv));
          wsum += std::fabs(w);
        }
        // d <= amax/127 * (1 + 2^-10) (rounded up to a half): error <= d/2 each.
        bound += float_act ? 0.0 : wsum * amax / 254.0 * (1 + 0x1p-10);
        if (t == TensorType::Q4_1 || t == TensorType::Q5_1) {
          // Plus the fp16 rounding of s = d * sum(q), |s| <= 32 * amax (1 + 2^-10),
          // times the block min.
          const size_t bb = t == TensorType::Q4_1 ? sizeof(BlockQ4_1) : sizeof(BlockQ5_1);
          uint16_t mh;
          std::memcpy(&mh, q.bytes.data() + size_t(r) * q.w.row_bytes + size_t(b) * bb + 2, 2);
          bound += std::fabs(double(fp16_to_f32(mh))) * 32.0 * amax * (1 + 0x1p-10) * 0x1p-11;
        }
      }
      EXPECT_NEAR(y[size_t(tk * rows + r)], exact, bound + reference_tolerance(mag, cols, 0.0) + 1e-3 * bound)
          << tensor_type_name(t) << " token " << tk << " row " << r;
    }
}

TEST_P(MatmulTypes, GetRowsDequantizesTheChosenRows) {
  const TensorType t = GetParam();
  const int64_t cols = type_info(t).block_size * 2;
  Quantized q = make_weights(t, 11, cols, 5);
  const std::vector<int32_t> ids = {10, 0, 3, 3, 7};
  std::vector<float> y(ids.size() * size_t(cols));
  ThreadPool pool(2);
  get_rows(pool, q.w, ids.data(), int64_t(ids.size()), y.data());
  for (size_t i = 0; i < ids.size(); ++i) {
    for (int64_t c = 0; c < cols; ++c) {
      EXPECT_EQ(y[i * size_t(cols) + size_t(c)], q.deq[size_t(ids[i] * cols + c)]);
    }
  }
}

// The row-interleaved layout (on the ISAs whose decode kernels read it) gives
// bit-for-bit the products and rows of the file layout, on row counts that are
// and are not multiples of its 16-row groups (the tail stays in rows), for
// decode, small batches and prefill token tiles, and interleaved in slices as
// the model loader does.
void check_interleaved_layout(TensorType t) {
  const int64_t block = type_info(t).block_size;
  struct Shape { int64_t rows, cols; };
  std::vector<Shape> shapes = {Shape{1, block},  Shape{15, block},     Shape{16, block},     Shape{17, 2 * block},
                               Shape{33, 3 * block}, Shape{40, 4 * block}, Shape{300, 4 * block}};
  // Element types (F16) also on rows of whole 8-element columns with a tail.
  if (block == 1) shapes.push_back(Shape{33, 1543});
  for (const Shape s : shapes) {
    Quantized q = make_weights(t, s.rows, s.cols, uint64_t(s.rows * 7 + s.cols));
    std::vector<uint8_t> il(q.bytes.size());
    const int64_t cut = std::min<int64_t>(s.rows, 32);  // two slices when rows > 32
    interleave_weights(q.w, 0, cut, il.data());
    if (cut < s.rows) interleave_weights(q.w, cut, s.rows, il.data());
    WeightMatrix wi = q.w;
    wi.data = il.data();
    wi.layout = WeightLayout::Interleaved;
    ThreadPool pool(2);
    for (int64_t tokens : {1, 3, 4, 5, 16, 37, 200}) {
      const auto x = randn(size_t(tokens * s.cols), uint64_t(tokens));
      std::vector<float> want(size_t(tokens * s.rows), -1.0f), got(size_t(tokens * s.rows), -2.0f);
      matmul(pool, q.w, x.data(), tokens, want.data());
      matmul(pool, wi, x.data(), tokens, got.data());
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(f32_to_bits(got[i]), f32_to_bits(want[i]))
            << tensor_type_name(t) << " rows " << s.rows << " cols " << s.cols << " tokens " << tokens << " at " << i;
    }
    std::vector<int32_t> ids;
    for (int64_t r = 0; r < s.rows; r += 3) ids.push_back(int32_t(r));
    ids.push_back(int32_t(s.rows - 1));
    std::vector<float> want(ids.size() * size_t(s.cols)), got(want.size());
    get_rows(pool, q.w, ids.data(), int64_t(ids.size()), want.data());
    get_rows(pool, wi, ids.data(), int64_t(ids.size()), got.data());
    ASSERT_EQ(want, got) << tensor_type_name(t) << " rows " << s.rows;
  }
}

TEST(Kernels, InterleavedLayoutMatchesRows) {
  int tested = 0;
  for (TensorType t : kTypes) {
    if (!interleaved_layout_pays(t)) continue;
    check_interleaved_layout(t);
    if (HasFatalFailure()) return;
    ++tested;
  }
  if (tested == 0) GTEST_SKIP() << "no interleaved kernel on this ISA";
}

// matmul_multi against one matmul call per matrix, bit for bit, for decode,
// small batches and prefill token tiles on 1 to 3 threads. `mats` gives each
// matrix's type and row count; interleaved matrices where the ISA has them.
void check_multi_matches_separate(const std::vector<std::pair<TensorType, int64_t>>& mats, int64_t cols) {
  std::vector<Quantized> qs;
  std::vector<std::vector<uint8_t>> interleaved(mats.size());
  std::vector<WeightMatrix> ws;
  for (size_t i = 0; i < mats.size(); ++i) {
    qs.push_back(make_weights(mats[i].first, mats[i].second, cols, 31 + i));
    WeightMatrix w = qs.back().w;
    if (interleaved_layout_pays(w.type)) {
      interleaved[i].resize(qs.back().bytes.size());
      interleave_weights(w, 0, w.n_rows, interleaved[i].data());
      w.data = interleaved[i].data();
      w.layout = WeightLayout::Interleaved;
    }
    ws.push_back(w);
  }
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t tokens : {1, 3, 37, 200}) {
      const auto x = randn(size_t(tokens * cols), uint64_t(tokens * 10 + threads));
      std::vector<std::vector<float>> want(ws.size()), got(ws.size());
      std::vector<MatmulTarget> targets;
      for (size_t i = 0; i < ws.size(); ++i) {
        want[i].assign(size_t(tokens * ws[i].n_rows), -1.0f);
        got[i].assign(want[i].size(), -2.0f);
        matmul(pool, ws[i], x.data(), tokens, want[i].data());
        targets.push_back({ws[i], got[i].data()});
      }
      matmul_multi(pool, targets, x.data(), tokens);
      for (size_t i = 0; i < ws.size(); ++i)
        for (size_t j = 0; j < want[i].size(); ++j)
          ASSERT_EQ(f32_to_bits(got[i][j]), f32_to_bits(want[i][j]))
              << "matrix " << i << " (" << tensor_type_name(ws[i].type) << ", " << ws[i].n_rows << " rows) threads "
              << threads << " tokens " << tokens << " at " << j;
      // Two matrices of as many rows also run as gate and up of matmul_swiglu:
      // the products, then silu_mul over the whole output.
      if (ws.size() == 2 && ws[0].n_rows == ws[1].n_rows) {
        std::vector<float> gate(want[0].size(), -3.0f), up(want[1].size(), -3.0f);
        matmul_swiglu(pool, ws[0], ws[1], x.data(), tokens, gate.data(), up.data());
        silu_mul(want[0].data(), want[1].data(), int64_t(want[0].size()));
        for (size_t j = 0; j < want[0].size(); ++j) {
          ASSERT_EQ(f32_to_bits(up[j]), f32_to_bits(want[1][j])) << "swiglu up, threads " << threads << " at " << j;
          ASSERT_EQ(f32_to_bits(gate[j]), f32_to_bits(want[0][j])) << "swiglu gate, threads " << threads << " at " << j;
        }
      }
    }
  }
}

TEST_P(MatmulTypes, MultiEqualsSeparateMatmuls) {
  const TensorType t = GetParam();
  const int64_t cols = type_info(t).block_size * 4;
  check_multi_matches_separate({{t, 1}}, cols);                        // one matrix, one row
  check_multi_matches_separate({{t, 300}}, cols);                      // one matrix, several chunks
  check_multi_matches_separate({{t, 37}, {t, 15}, {t, 300}, {t, 16}}, cols);  // odd and tile-sized counts
  check_multi_matches_separate({{t, 37}, {t, 37}}, cols);              // a gate/up pair (also swiglu)
  check_multi_matches_separate({{t, 300}, {t, 300}}, cols);
}

// Different types in one call: two sharing an activation type (Q4_K, Q6_K
// with Q8_K, as Q4_K_M's attention has) beside ones that pair with others
// (Q8_0, Q4_1's Q8_1, F16's f32 rows), in a Q/K/V-like size ratio.
TEST(Kernels, MultiMixesWeightTypes) {
  check_multi_matches_separate({{TensorType::Q4_K, 192}, {TensorType::Q4_K, 32}, {TensorType::Q6_K, 32}}, 1024);
  check_multi_matches_separate({{TensorType::Q8_0, 45}, {TensorType::Q4_1, 17}, {TensorType::F16, 33},
                                {TensorType::Q6_K, 300}, {TensorType::Q8_0, 7}},
                               1024);
}

// Gate and up of different types (a file may quantize them differently)
// through matmul_swiglu, sharing an activation type and not.
TEST(Kernels, SwigluMixesWeightTypes) {
  check_multi_matches_separate({{TensorType::Q4_K, 300}, {TensorType::Q6_K, 300}}, 1024);
  check_multi_matches_separate({{TensorType::Q8_0, 33}, {TensorType::F16, 33}}, 1024);
}

// Nothing to do: no matrices, or no tokens; the outputs stay untouched.
TEST(Kernels, MultiWithoutWorkWritesNothing) {
  Quantized q = make_weights(TensorType::Q4_K, 16, 256, 3);
  std::vector<float> y(16, -5.0f);
  ThreadPool pool(2);
  const std::vector<float> x(256, 1.0f);
  matmul_multi(pool, {}, x.data(), 1);
  const MatmulTarget one[] = {{q.w, y.data()}};
  matmul_multi(pool, one, x.data(), 0);
  EXPECT_EQ(y, std::vector<float>(16, -5.0f));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MatmulTypes, ::testing::ValuesIn(kTypes),
                         [](const auto& info) { return std::string(tensor_type_name(info.param)); });

TEST(Kernels, WeightTypeSupport) {
  for (TensorType t : kTypes) EXPECT_TRUE(weight_type_supported(t)) << tensor_type_name(t);
  EXPECT_FALSE(weight_type_supported(TensorType::Q8_1));
  EXPECT_FALSE(weight_type_supported(TensorType::Q8_K));
}

// Runs in a child process: forces an unknown ISA, reports check_cpu_isa()'s
// message and whether a matmul still gives the right answer on generic kernels.
int forced_isa_child() {
  setenv("DHI_FORCE_ISA", "sse9", 1);
  const Status st = check_cpu_isa();
  std::fprintf(stderr, "%s\n", st.ok() ? "ok" : st.error().message.c_str());
  const std::vector<float> w = {1.0f, 2.0f, 3.0f, 4.0f};  // 2 rows of 2
  const std::vector<float> x = {1.0f, -1.0f};
  std::vector<float> y(2);
  ThreadPool pool(1);
  matmul(pool, {w.data(), TensorType::F32, 2, 2, 8}, x.data(), 1, y.data());
  return !st.ok() && matmul_isa_name() == "generic" && y[0] == -1.0f && y[1] == -1.0f ? 0 : 1;
}

// The ISA the matmul runs with is the active one; a bad DHI_FORCE_ISA is an
// error from check_cpu_isa() (which model setup reports), while matmul itself
// falls back to the generic kernels and stays correct. active_isa() is read
// once per process, so the forced case runs in a re-executed child.
TEST(Kernels, MatmulRunsTheActiveIsa) {
  if (std::getenv("DHI_FORCE_ISA")) GTEST_SKIP() << "DHI_FORCE_ISA is set";
  EXPECT_TRUE(check_cpu_isa().ok());
  EXPECT_EQ(matmul_isa_name(), isa_name(best_isa()));
}

// No active_isa() call may precede the death test in this test: the child
// re-runs the test from its start, and the first call fixes the ISA.
TEST(Kernels, ForcedUnknownIsaIsReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::exit(forced_isa_child()), ::testing::ExitedWithCode(0), "DHI_FORCE_ISA: unknown ISA 'sse9'");
}

TEST(Kernels, MatmulOneColumnF32) {
  const std::vector<float> w = {2.0f, -3.0f, 0.5f};  // 3 rows of 1 column
  const std::vector<float> x = {4.0f, -1.0f};        // 2 tokens
  std::vector<float> y(6);
  ThreadPool pool(2);
  matmul(pool, {w.data(), TensorType::F32, 1, 3, 4}, x.data(), 2, y.data());
  EXPECT_EQ(y, (std::vector<float>{8.0f, -12.0f, 2.0f, -2.0f, 3.0f, -0.5f}));
}

TEST(Kernels, RmsNorm) {
  // Row [3, 4]: mean square 12.5, so y = x / sqrt(12.5 + eps) * w.
  const std::vector<float> x = {3.0f, 4.0f, 0.0f, 0.0f}, w = {1.0f, 2.0f};
  std::vector<float> y(4);
  ThreadPool pool(2);
  rms_norm(pool, x.data(), w.data(), 2, 2, 1e-5f, y.data());
  const double s = 1.0 / std::sqrt(12.5 + 1e-5);
  EXPECT_NEAR(y[0], 3 * s, 1e-6);
  EXPECT_NEAR(y[1], 8 * s, 1e-6);
  EXPECT_EQ(y[2], 0.0f);  // an all-zero row stays zero (eps avoids 0/0)
  EXPECT_EQ(y[3], 0.0f);
}

TEST(Kernels, RopePairingsAndAngles) {
  // head_dim 4, n_rot 4, base 10000: pair 0 has frequency 1, pair 1 has 1/100.
  // At position p, pair i turns by p * freq_i.
  ThreadPool pool(1);
  const int32_t pos[] = {0, 3};
  for (RopePairing pairing : {RopePairing::Adjacent, RopePairing::Half}) {
    std::vector<float> x = {1, 2, 3, 4, 1, 2, 3, 4};
    RopeParams p;
    p.pairing = pairing;
    p.n_rot = 4;
    rope(pool, x.data(), 2, 1, 4, pos, p);
    EXPECT_EQ(std::vector<float>(x.begin(), x.begin() + 4), (std::vector<float>{1, 2, 3, 4}));  // position 0
    // Pair members: Adjacent (0,1),(2,3); Half (0,2),(1,3).
    const int a0 = 0, b0 = pairing == RopePairing::Adjacent ? 1 : 2;
    const int a1 = pairing == RopePairing::Adjacent ? 2 : 1, b1 = 3;
    const float in[] = {1, 2, 3, 4};
    const double t0 = 3.0, t1 = 3.0 / 100.0;
    EXPECT_NEAR(x[4 + a0], in[a0] * std::cos(t0) - in[b0] * std::sin(t0), 1e-6);
    EXPECT_NEAR(x[4 + b0], in[a0] * std::sin(t0) + in[b0] * std::cos(t0), 1e-6);
    EXPECT_NEAR(x[4 + a1], in[a1] * std::cos(t1) - in[b1] * std::sin(t1), 1e-6);
    EXPECT_NEAR(x[4 + b1], in[a1] * std::sin(t1) + in[b1] * std::cos(t1), 1e-6);
  }
  // Linear scaling by 4 and a frequency factor of 2 on pair 0: angle 3 / 4 / 2.
  std::vector<float> x = {1, 0, 0, 0};
  const float ff[] = {2.0f, 1.0f};
  RopeParams p;
  p.n_rot = 4;
  p.freq_scale = 0.25f;
  p.freq_factors = ff;
  const int32_t three = 3;
  rope(pool, x.data(), 1, 1, 4, &three, p);
  EXPECT_NEAR(x[0], std::cos(3.0 / 8.0), 1e-6);
  EXPECT_NEAR(x[1], std::sin(3.0 / 8.0), 1e-6);
  // Partial rotation: dims past n_rot are untouched.
  std::vector<float> y = {1, 2, 3, 4};
  p = RopeParams{};
  p.n_rot = 2;
  rope(pool, y.data(), 1, 1, 4, &three, p);
  EXPECT_EQ(y[2], 3.0f);
  EXPECT_EQ(y[3], 4.0f);
}

// rope keeps the angles of the last position per thread: a repeat of the
// position reuses them, and any change of the parameters (a factor's value
// behind the same pointer, the base, the scaling, n_rot) recomputes them.
TEST(Kernels, RopeAngleCacheFollowsParameters) {
  ThreadPool pool(1);
  const int32_t five = 5;
  float ff[] = {2.0f, 1.0f};
  RopeParams p;
  p.n_rot = 4;
  p.freq_factors = ff;
  const auto turn = [&](const RopeParams& rp) {
    std::vector<float> x = {1, 0, 1, 0};
    rope(pool, x.data(), 1, 1, 4, &five, rp);
    return x;
  };
  const auto first = turn(p);
  EXPECT_NEAR(first[0], std::cos(5.0 / 2.0), 1e-6);
  EXPECT_EQ(turn(p), first);
  ff[0] = 4.0f;  // same pointer, new value
  EXPECT_NEAR(turn(p)[0], std::cos(5.0 / 4.0), 1e-6);
  p.freq_factors = nullptr;
  EXPECT_NEAR(turn(p)[0], std::cos(5.0), 1e-6);
  p.freq_scale = 0.5f;
  EXPECT_NEAR(turn(p)[0], std::cos(2.5), 1e-6);
  p.base = 100.0f;  // pair 1: frequency 1/10
  EXPECT_NEAR(turn(p)[2], std::cos(2.5 / 10.0), 1e-6);
  p.n_rot = 2;  // pair 1 no longer turns
  EXPECT_EQ(turn(p)[2], 1.0f);
}

TEST(Kernels, SiluMul) {
  std::vector<float> g = {0.0f, 1.0f, -2.0f}, u = {5.0f, 2.0f, 3.0f};
  silu_mul(g.data(), u.data(), 3);
  EXPECT_FLOAT_EQ(g[0], 0.0f);
  EXPECT_NEAR(g[1], 2.0 / (1.0 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(g[2], 3.0 * -2.0 / (1.0 + std::exp(2.0)), 1e-6);
}

// (f16 cache, head-major layout): the cache as model::KvCache lays it out
// ([seq][head][pos][head_dim]) and position-major ([seq][pos][head][head_dim]).
class Attention : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

TEST_P(Attention, MatchesNaiveWithGqaAndSequences) {
  const auto [f16, head_major] = GetParam();
  const int32_t n_head = 4, n_head_kv = 2, hd = 8, n_ctx = 6, n_seq = 2;
  const int64_t kv_dim = n_head_kv * hd, stride = int64_t(n_ctx) * kv_dim;
  const int64_t head_stride = head_major ? int64_t(n_ctx) * hd : hd, pos_stride = head_major ? hd : kv_dim;
  const auto at = [&](int32_t seq, int32_t kvh, int32_t pos, int32_t d) {
    return size_t(seq * stride + kvh * head_stride + pos * pos_stride + d);
  };
  auto k = randn(size_t(n_seq * stride), 1), v = randn(size_t(n_seq * stride), 2);
  // The f16 cache: the kernel must compute with exactly the rounded values.
  std::vector<uint16_t> k16(k.size()), v16(v.size());
  f32_to_f16_row(k.data(), k16.data(), int64_t(k.size()));
  f32_to_f16_row(v.data(), v16.data(), int64_t(v.size()));
  if (f16) {
    for (size_t i = 0; i < k.size(); ++i) {
      EXPECT_NEAR(fp16_to_f32(k16[i]), k[i], std::fabs(k[i]) * 4.9e-4 + 6e-8);
      k[i] = fp16_to_f32(k16[i]);
      v[i] = fp16_to_f32(v16[i]);
    }
    std::vector<float> back(k.size());
    f16_to_f32_row(k16.data(), back.data(), int64_t(k.size()));
    EXPECT_EQ(back, k);
  }
  // Queries: (seq 0, pos 5), (seq 1, pos 0), (seq 1, pos 3).
  const int32_t seqs[] = {0, 1, 1}, pos[] = {5, 0, 3};
  const auto q = randn(size_t(3 * n_head * hd), 3);
  std::vector<float> out(q.size());
  AttentionArgs a;
  a.q = q.data();
  a.out = out.data();
  a.n_tokens = 3;
  a.n_head = n_head;
  a.n_head_kv = n_head_kv;
  a.head_dim = hd;
  a.k_cache = f16 ? static_cast<const void*>(k16.data()) : k.data();
  a.v_cache = f16 ? static_cast<const void*>(v16.data()) : v.data();
  a.kv_f16 = f16;
  a.seq_stride = stride;
  a.head_stride = head_stride;
  a.pos_stride = pos_stride;
  a.seq_ids = seqs;
  a.positions = pos;
  a.scale = 1.0f / std::sqrt(float(hd));
  ThreadPool pool(3);
  attention(pool, a);
  for (int t = 0; t < 3; ++t) {
    for (int h = 0; h < n_head; ++h) {
      const int kvh = h / 2;
      std::vector<double> w;
      double mx = -1e300, sum = 0;
      for (int j = 0; j <= pos[t]; ++j) {
        double s = 0;
        for (int d = 0; d < hd; ++d) s += double(q[size_t((t * n_head + h) * hd + d)]) * k[at(seqs[t], kvh, j, d)];
        w.push_back(s / std::sqrt(double(hd)));
        mx = std::max(mx, w.back());
      }
      for (double& x : w) sum += (x = std::exp(x - mx));
      for (int d = 0; d < hd; ++d) {
        double o = 0;
        for (int j = 0; j <= pos[t]; ++j) o += w[size_t(j)] / sum * v[at(seqs[t], kvh, j, d)];
        EXPECT_NEAR(out[size_t((t * n_head + h) * hd + d)], o, 1e-5) << t << " " << h << " " << d;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(KvTypes, Attention, ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "F16" : "F32") +
                                  (std::get<1>(info.param) ? "_HeadMajor" : "_PositionMajor");
                         });

}  // namespace
}  // namespace dhi::kernels::cpu
