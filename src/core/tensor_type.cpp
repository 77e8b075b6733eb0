#include "core/tensor_type.h"

#include <array>

namespace dhi {
namespace {

constexpr std::array<TensorTypeInfo, 15> kTypes = {{
    {TensorType::F32, "F32", 1, 4},
    {TensorType::F16, "F16", 1, 2},
    {TensorType::Q4_0, "Q4_0", 32, 18},
    {TensorType::Q4_1, "Q4_1", 32, 20},
    {TensorType::Q5_0, "Q5_0", 32, 22},
    {TensorType::Q5_1, "Q5_1", 32, 24},
    {TensorType::Q8_0, "Q8_0", 32, 34},
    {TensorType::Q8_1, "Q8_1", 32, 36},
    {TensorType::Q2_K, "Q2_K", 256, 84},
    {TensorType::Q3_K, "Q3_K", 256, 110},
    {TensorType::Q4_K, "Q4_K", 256, 144},
    {TensorType::Q5_K, "Q5_K", 256, 176},
    {TensorType::Q6_K, "Q6_K", 256, 210},
    {TensorType::Q8_K, "Q8_K", 256, 292},
    {TensorType::BF16, "BF16", 1, 2},
}};

}  // namespace

std::optional<TensorTypeInfo> tensor_type_info(uint32_t type_id) {
  for (const auto& t : kTypes)
    if (uint32_t(t.type) == type_id) return t;
  return std::nullopt;
}

std::string_view tensor_type_name(TensorType t) {
  auto info = tensor_type_info(uint32_t(t));
  return info ? info->name : "unknown";
}

std::optional<TensorType> tensor_type_from_name(std::string_view name) {
  for (const auto& t : kTypes)
    if (t.name == name) return t.type;
  return std::nullopt;
}

std::optional<uint64_t> row_bytes(TensorType t, uint64_t n) {
  auto info = tensor_type_info(uint32_t(t));
  if (!info || n % info->block_size != 0) return std::nullopt;
  uint64_t blocks = n / info->block_size;
  uint64_t r;
  if (__builtin_mul_overflow(blocks, uint64_t(info->block_bytes), &r)) return std::nullopt;
  return r;
}

}  // namespace dhi
