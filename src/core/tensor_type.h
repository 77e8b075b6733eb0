// Tensor element types as numbered by GGUF (ggml's type ids), with the block
// geometry every layer needs to size a tensor. The block structs and kernels live
// in quant/; quant/ static_asserts that its structs match the sizes here.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace dhi {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
};

struct TensorTypeInfo {
  TensorType type;
  std::string_view name;
  uint32_t block_size;   // elements per block
  uint32_t block_bytes;  // bytes per block
};

// Returns the geometry of a supported type id, or nullopt for an id dhi does not
// handle (the caller reports it with the tensor's name).
std::optional<TensorTypeInfo> tensor_type_info(uint32_t type_id);
inline TensorTypeInfo type_info(TensorType t) { return *tensor_type_info(uint32_t(t)); }
std::string_view tensor_type_name(TensorType t);
std::optional<TensorType> tensor_type_from_name(std::string_view name);

// Bytes of one row of `n` elements; nullopt when n is not a multiple of the block.
std::optional<uint64_t> row_bytes(TensorType t, uint64_t n);

}  // namespace dhi
