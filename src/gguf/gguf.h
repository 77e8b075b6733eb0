// GGUF (versions 2 and 3): the in-memory form of a file's metadata and tensor
// directory, shared by the reader and the writer. Format reference: the GGUF
// specification in ggml's docs (little-endian; header, key/value metadata, tensor
// infos, then tensor data at `general.alignment`).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/expected.h"
#include "core/tensor_type.h"

namespace dhi::gguf {

inline constexpr uint64_t kDefaultAlignment = 32;  // when `general.alignment` is absent
inline constexpr uint32_t kMaxDims = 4;            // ggml tensors have at most 4 dimensions

enum class ValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};
const char* value_type_name(ValueType t);

struct Value;
// An array keeps its element type even when empty; nested arrays are allowed.
struct Array {
  ValueType elem_type = ValueType::UINT8;
  std::vector<Value> items;
};

struct Value {
  ValueType type = ValueType::UINT8;
  std::variant<uint64_t, int64_t, double, bool, std::string, std::shared_ptr<Array>> data;

  // Typed views; nullopt if the value is not of a compatible type. Integer
  // accessors accept any integer type whose value fits.
  std::optional<uint64_t> as_uint() const;
  std::optional<int64_t> as_int() const;
  std::optional<double> as_float() const;  // FLOAT32/FLOAT64 (and integers)
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;
  const Array* as_array() const;

  // `t` must be an unsigned (make_uint), signed (make_int) or float (make_float)
  // type; the value is narrowed to the width of `t`, as a file would store it.
  static Value make_uint(ValueType t, uint64_t v);
  static Value make_int(ValueType t, int64_t v);
  static Value make_float(ValueType t, double v);
  static Value make_bool(bool v);
  static Value make_string(std::string v);
  static Value make_array(ValueType elem_type, std::vector<Value> items);
  // Convenience for the common arrays (vocab strings, scores, token types, merges).
  static Value make_string_array(const std::vector<std::string>& v);
  static Value make_f32_array(const std::vector<float>& v);
  static Value make_i32_array(const std::vector<int32_t>& v);
};

struct TensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // ne[0] first: ne[0] is the contiguous (row) length
  TensorType type = TensorType::F32;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapped file (reader only)
};

// `general.alignment` must be a nonzero power of two that fits its UINT32.
inline bool is_valid_alignment(uint64_t a) {
  return a != 0 && (a & (a - 1)) == 0 && a <= UINT32_MAX;
}

struct TensorGeometry {
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
};
// Checks a tensor shape for a type id, for the reader and the writer alike: 1 to
// kMaxDims dimensions, none zero, an element count that fits ggml's int64, a known
// type, ne[0] a multiple of its block size, a byte size that fits 64 bits. The
// error says what is wrong without naming the tensor; callers prefix the name.
Expected<TensorGeometry> tensor_geometry(uint32_t type_id, std::span<const uint64_t> dims);

}  // namespace dhi::gguf
