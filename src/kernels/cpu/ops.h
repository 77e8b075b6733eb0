// CPU kernels for the transformer forward pass: matrix multiplication of a
// (possibly quantized) weight matrix by a batch of f32 activations, RMS norm,
// rotary position embedding, causal attention over a KV cache, SwiGLU and the
// element-wise helpers. All work is spread over one persistent ThreadPool.
//
// Layout conventions (GGUF's): a weight matrix has n_rows rows of n_cols
// contiguous elements (ne[0] = n_cols); activations are row-major
// [n_tokens][n_cols]; outputs of matmul are [n_tokens][n_rows].
//
// matmul runs the quantized dot kernels of kernels/cpu/dot: each call
// quantizes the activation rows once into the 8-bit block type the weight type
// pairs with (Q8_0, Q8_1, Q8_K; float weights keep f32 activations) and takes
// integer dot products against the packed weight blocks, with the kernel of the
// ISA chosen once at start-up (best available, or DHI_FORCE_ISA).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "core/expected.h"
#include "core/tensor_type.h"
#include "core/thread_pool.h"

namespace dhi::kernels::cpu {

// How a matrix's rows are stored: as in the file, or row-interleaved
// (kernels/cpu/dot/interleave.h: groups of 16 rows, then the rest as rows).
enum class WeightLayout { Rows, Interleaved };

// A view of a weight matrix (in the mapped model file, or interleaved at load).
struct WeightMatrix {
  const void* data = nullptr;
  TensorType type = TensorType::F32;
  int64_t n_cols = 0;      // ne[0]: input features, contiguous
  int64_t n_rows = 0;      // ne[1]: output features
  uint64_t row_bytes = 0;  // bytes of one row (blocks of `type`)
  WeightLayout layout = WeightLayout::Rows;
};

// Whether matmul/get_rows handle weights of this type.
bool weight_type_supported(TensorType t);

// Whether the ISA in use decodes this weight type faster interleaved; only
// then should a loader interleave it (interleave_weights).
bool interleaved_layout_pays(TensorType t);

// Writes rows [row_begin, row_end) of a file-layout matrix `w` (row_begin and
// row_end multiples of 16, or row_end = n_rows) into dst, the buffer of the
// whole interleaved matrix (w.n_rows * w.row_bytes bytes): the same bytes,
// permuted. Slices let a loader release the source pages as it goes.
void interleave_weights(const WeightMatrix& w, int64_t row_begin, int64_t row_end, void* dst);

// Ok when the kernels can run with the ISA in use; the error of an unknown or
// unsupported DHI_FORCE_ISA otherwise. Whoever sets up a model on the CPU
// should call this and fail with its message: matmul itself cannot return an
// error and would run the generic kernels.
Status check_cpu_isa();

// The ISA matmul runs with ("generic", "avx2", "avx512").
std::string_view matmul_isa_name();

// y[t * n_rows + r] = sum_c W[r][c] * x[t * n_cols + c] for t < n_tokens, with
// x rounded to 8 bits per element (one scale per 32 or 256) for quantized
// weight types: the error of that rounding is the only difference from an f32
// product beyond summation order.
void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t n_tokens, float* y);

// One product of matmul_multi: y ([n_tokens][w.n_rows]) = w times the shared input.
struct MatmulTarget {
  WeightMatrix w;
  float* y = nullptr;
};

// matmul of one input x ([n_tokens][n_cols]) by several matrices of n_cols
// columns each (Q, K and V; gate and up), bit for bit what one matmul call per
// matrix gives. x is quantized once per activation type the matrices pair
// with, and one parallel region covers the rows of all of them in chunks of
// about equal bytes, so in decode the threads stream different rows and
// finish together instead of meeting at a barrier after every matrix.
void matmul_multi(ThreadPool& pool, std::span<const MatmulTarget> targets, const float* x, int64_t n_tokens);

// The SwiGLU FFN's input half: gate_out = silu(gate x) * (up x) and
// up_out = up x (each [n_tokens][gate.n_rows]; gate and up have as many rows),
// bit for bit matmul_multi over both followed by silu_mul. A work item covers
// the same rows of both matrices and applies silu_mul to them as soon as they
// are out, so SwiGLU needs no parallel region of its own.
void matmul_swiglu(ThreadPool& pool, const WeightMatrix& gate, const WeightMatrix& up, const float* x,
                   int64_t n_tokens, float* gate_out, float* up_out);

// y[i * n_cols ...] = row ids[i] of w, dequantized. ids must be in [0, n_rows).
void get_rows(ThreadPool& pool, const WeightMatrix& w, const int32_t* ids, int64_t n_ids, float* y);

// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, per row of n elements.
// x and y may alias.
void rms_norm(ThreadPool& pool, const float* x, const float* weight, int64_t n_rows, int64_t n,
              float eps, float* y);

// y[r][i] += b[i] for each of n_rows rows of n elements.
void add_bias(float* y, const float* b, int64_t n_rows, int64_t n);

// y[i] += x[i].
void add(float* y, const float* x, int64_t n);

// gate[i] = silu(gate[i]) * up[i].
void silu_mul(float* gate, const float* up, int64_t n);

enum class RopePairing {
  Adjacent,  // rotates (x[2i], x[2i+1]) — Llama's original ("NORM") layout
  Half,      // rotates (x[i], x[i + n_rot/2]) — GPT-NeoX's layout (Qwen)
};

struct RopeParams {
  RopePairing pairing = RopePairing::Adjacent;
  int32_t n_rot = 0;                    // rotated dims per head (<= head_dim)
  float base = 10000.0f;
  float freq_scale = 1.0f;              // linear scaling: position * freq_scale
  const float* freq_factors = nullptr;  // n_rot/2 divisors of each frequency (Llama 3.1), or null
};

// Rotates each head of x ([n_tokens][n_heads * head_dim]) in place by the angle
// of its token's position.
void rope(ThreadPool& pool, float* x, int64_t n_tokens, int32_t n_heads, int32_t head_dim,
          const int32_t* positions, const RopeParams& p);

// Causal attention of a batch of queries against a KV cache that already holds
// every position the queries may see. The cache holds f32 or IEEE f16
// elements (kv_f16). In K and in V, the head_dim elements of KV head h at
// position p of sequence s start at element
// s * seq_stride + h * head_stride + p * pos_stride (model::KvCache keeps each
// head's positions contiguous: pos_stride = head_dim). Query t (sequence
// seq_ids[t], position positions[t]) attends to cache positions
// 0..positions[t] of its sequence. Query head h uses KV head
// h / (n_head / n_head_kv) (grouped-query attention).
struct AttentionArgs {
  const float* q = nullptr;  // [n_tokens][n_head * head_dim]
  float* out = nullptr;      // [n_tokens][n_head * head_dim]
  int64_t n_tokens = 0;
  int32_t n_head = 0, n_head_kv = 0, head_dim = 0;
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  bool kv_f16 = false;
  int64_t seq_stride = 0;   // elements between sequences in the cache
  int64_t head_stride = 0;  // elements between KV heads of a sequence
  int64_t pos_stride = 0;   // elements between positions of a KV head
  const int32_t* seq_ids = nullptr;
  const int32_t* positions = nullptr;
  float scale = 1.0f;  // usually 1/sqrt(head_dim)
};
void attention(ThreadPool& pool, const AttentionArgs& a);

// All 65536 IEEE halves as floats (built once; 256 KB): f16 -> f32 as a load.
const float* f16_to_f32_table();

// Stores rows of n f32 values as f16 (round to nearest even) or loads them back.
void f32_to_f16_row(const float* x, uint16_t* y, int64_t n);
void f16_to_f32_row(const uint16_t* x, float* y, int64_t n);

}  // namespace dhi::kernels::cpu
