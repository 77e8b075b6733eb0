// Quantized matrix products for the CPU: weights stay in their packed GGUF
// blocks; activations are quantized once per matmul into the 8-bit block type
// the weight type pairs with (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K
// for the K-quants; float weights take f32 activations), so the inner loops are
// integer multiply-adds. One kernel per (weight type, ISA); an ISA without a
// specialised kernel for a type falls back to the generic one.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/tensor_type.h"
#include "kernels/cpu/dot/isa.h"

namespace dhi::kernels::cpu {

struct DotKernel {
  TensorType act_type = TensorType::F32;  // the activation row format the kernel reads

  // Converts one activation row of n floats (n a multiple of the weight's block
  // size) into act_type; null when act_type is F32 (rows are used as they are).
  void (*quantize_act)(const float* x, void* out, int64_t n) = nullptr;

  // out[t * out_stride + r] = dot(weight row r, activation row t)
  //   for r < n_rows, t < n_tokens; every row has n elements.
  // Weight rows are w_stride bytes apart, activation rows act_stride bytes apart.
  // Decode calls it with n_tokens = 1; prefill with a tile of tokens, so a kernel
  // can keep several weight rows and tokens in registers at once.
  void (*gemm)(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* act,
               size_t act_stride, int64_t n_tokens, float* out, size_t out_stride) = nullptr;

  // The same product on n_groups groups of 16 rows in the row-interleaved
  // layout (interleave.h), starting at w: out[t * out_stride + r] for
  // r < 16 * n_groups. Null where the ISA has no kernel for that layout; the
  // weights are interleaved at load only where it is set.
  void (*gemm_interleaved)(int64_t n, const void* w, int64_t n_groups, const void* act, size_t act_stride,
                           int64_t n_tokens, float* out, size_t out_stride) = nullptr;
  // interleave.h's interleave_group (the same bytes), vectorised: the model
  // loader interleaves every such matrix once. Set with gemm_interleaved.
  void (*interleave_group)(int64_t n, const uint8_t* src, size_t src_stride, uint8_t* dst) = nullptr;
};

// The kernel for `weight_type` on `isa`, or null for an unsupported weight type.
const DotKernel* dot_kernel(TensorType weight_type, Isa isa);

// Bytes of one activation row of n elements in `act_type`.
uint64_t act_row_bytes(TensorType act_type, int64_t n);

namespace detail {
// Each ISA's translation units (compiled with that ISA's flags) provide these;
// each returns null for a type it does not specialise.
const DotKernel* generic_legacy_kernel(TensorType w);   // F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
const DotKernel* generic_kquant_kernel(TensorType w);   // Q2_K, Q3_K, Q4_K, Q5_K, Q6_K
const DotKernel* avx2_legacy_kernel(TensorType w);
const DotKernel* avx2_kquant_kernel(TensorType w);
const DotKernel* avx512_legacy_kernel(TensorType w);
const DotKernel* avx512_kquant_kernel(TensorType w);
}  // namespace detail

}  // namespace dhi::kernels::cpu
