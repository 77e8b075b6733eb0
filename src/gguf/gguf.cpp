// GGUF values: the typed accessors and constructors of gguf::Value, and the
// names of the metadata value types used in error messages.
#include "gguf/gguf.h"

#include <limits>
#include <utility>

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

}  // namespace dhi::gguf
