// GGUF values: the typed accessors and constructors of gguf::Value, the names of
// the metadata value types used in error messages, and the tensor shape check
// shared by the reader and the writer.
#include "gguf/gguf.h"

#include <limits>
#include <utility>

#include "core/checked.h"

namespace dhi::gguf {

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
      return "UINT8";
    case ValueType::INT8:
      return "INT8";
    case ValueType::UINT16:
      return "UINT16";
    case ValueType::INT16:
      return "INT16";
    case ValueType::UINT32:
      return "UINT32";
    case ValueType::INT32:
      return "INT32";
    case ValueType::FLOAT32:
      return "FLOAT32";
    case ValueType::BOOL:
      return "BOOL";
    case ValueType::STRING:
      return "STRING";
    case ValueType::ARRAY:
      return "ARRAY";
    case ValueType::UINT64:
      return "UINT64";
    case ValueType::INT64:
      return "INT64";
    case ValueType::FLOAT64:
      return "FLOAT64";
  }
  return "unknown";
}

std::optional<uint64_t> Value::as_uint() const {
  if (const auto* u = std::get_if<uint64_t>(&data)) return *u;
  if (const auto* i = std::get_if<int64_t>(&data)) {
    if (*i >= 0) return uint64_t(*i);
  }
  return std::nullopt;
}

std::optional<int64_t> Value::as_int() const {
  if (const auto* i = std::get_if<int64_t>(&data)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&data)) {
    if (*u <= uint64_t(std::numeric_limits<int64_t>::max())) return int64_t(*u);
  }
  return std::nullopt;
}

std::optional<double> Value::as_float() const {
  if (const auto* d = std::get_if<double>(&data)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&data)) return double(*u);
  if (const auto* i = std::get_if<int64_t>(&data)) return double(*i);
  return std::nullopt;
}

std::optional<bool> Value::as_bool() const {
  if (const auto* b = std::get_if<bool>(&data)) return *b;
  return std::nullopt;
}

const std::string* Value::as_string() const { return std::get_if<std::string>(&data); }

const Array* Value::as_array() const {
  if (const auto* a = std::get_if<std::shared_ptr<Array>>(&data)) return a->get();
  return nullptr;
}

// The constructors narrow the value to the width of `t`, so that a value read
// back from a written file compares equal to the one that was written.
Value Value::make_uint(ValueType t, uint64_t v) {
  switch (t) {
    case ValueType::UINT8:
      v = uint8_t(v);
      break;
    case ValueType::UINT16:
      v = uint16_t(v);
      break;
    case ValueType::UINT32:
      v = uint32_t(v);
      break;
    default:
      break;
  }
  Value r;
  r.type = t;
  r.data = v;
  return r;
}

Value Value::make_int(ValueType t, int64_t v) {
  switch (t) {
    case ValueType::INT8:
      v = int8_t(v);
      break;
    case ValueType::INT16:
      v = int16_t(v);
      break;
    case ValueType::INT32:
      v = int32_t(v);
      break;
    default:
      break;
  }
  Value r;
  r.type = t;
  r.data = v;
  return r;
}

Value Value::make_float(ValueType t, double v) {
  Value r;
  r.type = t;
  r.data = t == ValueType::FLOAT32 ? double(float(v)) : v;
  return r;
}

Value Value::make_bool(bool v) {
  Value r;
  r.type = ValueType::BOOL;
  r.data = v;
  return r;
}

Value Value::make_string(std::string v) {
  Value r;
  r.type = ValueType::STRING;
  r.data = std::move(v);
  return r;
}

Value Value::make_array(ValueType elem_type, std::vector<Value> items) {
  auto a = std::make_shared<Array>();
  a->elem_type = elem_type;
  a->items = std::move(items);
  Value r;
  r.type = ValueType::ARRAY;
  r.data = std::move(a);
  return r;
}

Value Value::make_string_array(const std::vector<std::string>& v) {
  std::vector<Value> items;
  items.reserve(v.size());
  for (const auto& s : v) items.push_back(make_string(s));
  return make_array(ValueType::STRING, std::move(items));
}

Value Value::make_f32_array(const std::vector<float>& v) {
  std::vector<Value> items;
  items.reserve(v.size());
  for (float f : v) items.push_back(make_float(ValueType::FLOAT32, f));
  return make_array(ValueType::FLOAT32, std::move(items));
}

Value Value::make_i32_array(const std::vector<int32_t>& v) {
  std::vector<Value> items;
  items.reserve(v.size());
  for (int32_t i : v) items.push_back(make_int(ValueType::INT32, i));
  return make_array(ValueType::INT32, std::move(items));
}

Expected<TensorGeometry> tensor_geometry(uint32_t type_id, std::span<const uint64_t> dims) {
  if (dims.empty() || dims.size() > kMaxDims)
    return make_error("n_dims is ", dims.size(), ", expected 1 to ", kMaxDims);
  // ggml counts elements in int64_t.
  constexpr uint64_t kMaxElements = uint64_t(std::numeric_limits<int64_t>::max());
  uint64_t n = 1;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] == 0) return make_error("dimension ", d, " is 0");
    auto p = checked_mul(n, dims[d]);
    if (!p || *p > kMaxElements)
      return make_error("element count overflows at dimension ", d, " (", n, " x ", dims[d],
                        " exceeds ", kMaxElements, ")");
    n = *p;
  }
  auto info = tensor_type_info(type_id);
  if (!info) return make_error("unknown tensor type id ", type_id);
  if (dims[0] % info->block_size != 0)
    return make_error("ne[0] = ", dims[0], " is not a multiple of the ", info->name, " block size ",
                      info->block_size);
  auto bytes = checked_mul(n / info->block_size, info->block_bytes);
  if (!bytes) return make_error("byte size of ", n, " ", info->name, " elements overflows");
  return TensorGeometry{n, *bytes};
}

}  // namespace dhi::gguf
