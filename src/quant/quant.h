// Quantization layer: for every tensor type dhi handles, a scalar reference
// dequantizer (GGUF bytes -> float, bit-exact to the GGML format definition), a
// reference quantizer (float -> valid blocks) and the activation type the type's
// dot products pair with. Everything is in one trait table indexed by the type
// id; fast kernels in kernels/ are tested against these functions.
//
// Row functions take `n` elements, a multiple of the type's block size; call
// check_row() first on anything derived from a file. The conveniences quantize()
// and dequantize() validate their arguments and return errors instead.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/expected.h"
#include "core/tensor_type.h"
#include "quant/blocks_k.h"
#include "quant/blocks_legacy.h"

namespace dhi {

using DequantizeRowFn = void (*)(const void* src, float* dst, int64_t n);
using QuantizeRowFn = void (*)(const float* src, void* dst, int64_t n);

struct QuantTraits {
  TensorType type;
  uint32_t block_size;   // elements per block (same as type_info)
  uint32_t block_bytes;  // bytes per block (same as type_info)
  DequantizeRowFn dequantize_row;
  QuantizeRowFn quantize_row;
  // The type activations are quantized to for this type's dot products:
  // Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1 (its s field carries the sum the
  // block offset multiplies), Q8_K for the K-quants, F32 for the float types.
  TensorType vec_dot_type;
};

// The traits of a type, or nullptr for a type id dhi has no kernels for.
const QuantTraits* quant_traits(TensorType t);

// Ok when `t` is supported and `n` is a non-negative multiple of its block size.
Status check_row(TensorType t, int64_t n);

// Precondition: check_row(t, n) is ok. `src` needs no alignment.
void dequantize_row(TensorType t, const void* src, float* dst, int64_t n);
void quantize_row(TensorType t, const float* src, void* dst, int64_t n);

// Validating conveniences: quantize() needs src.size() to be a multiple of the
// block size; dequantize() needs src to hold exactly the bytes of n elements.
Expected<std::vector<uint8_t>> quantize(TensorType t, std::span<const float> src);
Expected<std::vector<float>> dequantize(TensorType t, std::span<const uint8_t> src, int64_t n);

}  // namespace dhi
