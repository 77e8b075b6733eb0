// The trait table (one entry per GGUF type id dhi supports), the float types'
// row functions, and the public entry points that validate and dispatch.
#include "quant/quant.h"

#include <array>
#include <cassert>
#include <cstring>

#include "core/fp16.h"
#include "quant/quant_internal.h"

namespace dhi {
namespace {

using namespace quant_impl;

void dequantize_row_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, size_t(n) * sizeof(float));
}
void quantize_row_f32(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, size_t(n) * sizeof(float));
}

// 16-bit elements are read with memcpy: a row may start at any even or odd
// offset of a caller's byte buffer.
void dequantize_row_f16(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    dst[i] = fp16_to_f32(h);
  }
}
void quantize_row_f16(const float* src, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = f32_to_fp16(src[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    dst[i] = bf16_to_f32(h);
  }
}
void quantize_row_bf16(const float* src, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = f32_to_bf16(src[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

// Largest type id + 1; ids without kernels keep a null entry.
constexpr size_t kTableSize = size_t(TensorType::BF16) + 1;

constexpr QuantTraits make(TensorType t, uint32_t block_size, uint32_t block_bytes, DequantizeRowFn deq,
                           QuantizeRowFn q, TensorType vec_dot) {
  return QuantTraits{t, block_size, block_bytes, deq, q, vec_dot};
}

constexpr std::array<QuantTraits, kTableSize> build_table() {
  std::array<QuantTraits, kTableSize> t{};
  auto set = [&t](const QuantTraits& e) { t[size_t(e.type)] = e; };
  using T = TensorType;
  set(make(T::F32, 1, 4, dequantize_row_f32, quantize_row_f32, T::F32));
  set(make(T::F16, 1, 2, dequantize_row_f16, quantize_row_f16, T::F32));
  set(make(T::BF16, 1, 2, dequantize_row_bf16, quantize_row_bf16, T::F32));
  set(make(T::Q4_0, QK_LEGACY, sizeof(BlockQ4_0), dequantize_row_q4_0, quantize_row_q4_0, T::Q8_0));
  set(make(T::Q4_1, QK_LEGACY, sizeof(BlockQ4_1), dequantize_row_q4_1, quantize_row_q4_1, T::Q8_1));
  set(make(T::Q5_0, QK_LEGACY, sizeof(BlockQ5_0), dequantize_row_q5_0, quantize_row_q5_0, T::Q8_0));
  set(make(T::Q5_1, QK_LEGACY, sizeof(BlockQ5_1), dequantize_row_q5_1, quantize_row_q5_1, T::Q8_1));
  set(make(T::Q8_0, QK_LEGACY, sizeof(BlockQ8_0), dequantize_row_q8_0, quantize_row_q8_0, T::Q8_0));
  set(make(T::Q8_1, QK_LEGACY, sizeof(BlockQ8_1), dequantize_row_q8_1, quantize_row_q8_1, T::Q8_1));
  set(make(T::Q2_K, QK_K, sizeof(BlockQ2_K), dequantize_row_q2_k, quantize_row_q2_k, T::Q8_K));
  set(make(T::Q3_K, QK_K, sizeof(BlockQ3_K), dequantize_row_q3_k, quantize_row_q3_k, T::Q8_K));
  set(make(T::Q4_K, QK_K, sizeof(BlockQ4_K), dequantize_row_q4_k, quantize_row_q4_k, T::Q8_K));
  set(make(T::Q5_K, QK_K, sizeof(BlockQ5_K), dequantize_row_q5_k, quantize_row_q5_k, T::Q8_K));
  set(make(T::Q6_K, QK_K, sizeof(BlockQ6_K), dequantize_row_q6_k, quantize_row_q6_k, T::Q8_K));
  set(make(T::Q8_K, QK_K, sizeof(BlockQ8_K), dequantize_row_q8_k, quantize_row_q8_k, T::Q8_K));
  return t;
}

constexpr std::array<QuantTraits, kTableSize> kTraits = build_table();

// core/tensor_type.h's geometry is not constexpr; the test suite checks every
// entry against it, and these pin the table to the block structs.
static_assert(kTraits[size_t(TensorType::Q4_K)].block_bytes == 144);
static_assert(kTraits[size_t(TensorType::Q8_K)].block_bytes == 292);
static_assert(kTraits[size_t(TensorType::Q6_K)].vec_dot_type == TensorType::Q8_K);

std::string type_label(TensorType t) {
  const auto info = tensor_type_info(uint32_t(t));
  return info ? std::string(info->name) : "type id " + std::to_string(uint32_t(t));
}

}  // namespace

const QuantTraits* quant_traits(TensorType t) {
  const auto id = size_t(t);
  if (id >= kTraits.size() || kTraits[id].dequantize_row == nullptr) return nullptr;
  return &kTraits[id];
}

Status check_row(TensorType t, int64_t n) {
  const QuantTraits* tr = quant_traits(t);
  if (tr == nullptr) return make_error("quantization: unsupported tensor type ", type_label(t));
  if (n < 0) return make_error(type_label(t), " row: negative element count ", n);
  if (n % tr->block_size != 0)
    return make_error(type_label(t), " row of ", n, " elements: not a multiple of the block size ",
                      tr->block_size);
  return {};
}

void dequantize_row(TensorType t, const void* src, float* dst, int64_t n) {
  assert(check_row(t, n).ok());
  if (const QuantTraits* tr = quant_traits(t)) tr->dequantize_row(src, dst, n);
}

void quantize_row(TensorType t, const float* src, void* dst, int64_t n) {
  assert(check_row(t, n).ok());
  if (const QuantTraits* tr = quant_traits(t)) tr->quantize_row(src, dst, n);
}

Expected<std::vector<uint8_t>> quantize(TensorType t, std::span<const float> src) {
  const auto n = int64_t(src.size());
  DHI_TRY(check_row(t, n));
  const QuantTraits* tr = quant_traits(t);
  std::vector<uint8_t> out(size_t(n / tr->block_size) * tr->block_bytes);
  if (n > 0) tr->quantize_row(src.data(), out.data(), n);
  return out;
}

Expected<std::vector<float>> dequantize(TensorType t, std::span<const uint8_t> src, int64_t n) {
  DHI_TRY(check_row(t, n));
  const QuantTraits* tr = quant_traits(t);
  // n / block_size blocks of block_bytes each; compare by division so a huge n
  // cannot overflow the product.
  const uint64_t blocks = uint64_t(n) / tr->block_size;
  if (src.size() % tr->block_bytes != 0 || src.size() / tr->block_bytes != blocks)
    return make_error(type_label(t), " data of ", src.size(), " bytes does not hold ", n, " elements (",
                      blocks, " blocks of ", tr->block_bytes, " bytes)");
  std::vector<float> out(static_cast<size_t>(n));
  if (n > 0) tr->dequantize_row(src.data(), out.data(), n);
  return out;
}

}  // namespace dhi
