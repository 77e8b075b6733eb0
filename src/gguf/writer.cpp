// GGUF writer (version 3): header, metadata in insertion order, tensor infos, then
// the tensor data, each tensor at a multiple of the alignment from the start of
// the aligned data section. Little-endian regardless of the host.
#include "gguf/writer.h"

#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "core/checked.h"

namespace dhi::gguf {
namespace {

const char* const kAlignmentKey = "general.alignment";

class Out {
 public:
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b_.push_back(uint8_t(v >> (8 * i)));
  }
  void u32(uint64_t v) { le(v, 4); }
  void u64(uint64_t v) { le(v, 8); }
  void str(const std::string& s) {
    u64(s.size());
    b_.insert(b_.end(), s.begin(), s.end());
  }
  void bytes(const std::vector<uint8_t>& d) { b_.insert(b_.end(), d.begin(), d.end()); }
  void pad_to(uint64_t align) {
    if (b_.size() % align != 0) b_.resize(b_.size() + align - b_.size() % align, 0);
  }
  size_t size() const { return b_.size(); }
  std::vector<uint8_t> take() { return std::move(b_); }

  // The payload of a value (without its type tag) encoded as `t`.
  void value(ValueType t, const Value& v) {
    switch (t) {
      case ValueType::UINT8:
      case ValueType::INT8:
        le(int_bits(v), 1);
        break;
      case ValueType::UINT16:
      case ValueType::INT16:
        le(int_bits(v), 2);
        break;
      case ValueType::UINT32:
      case ValueType::INT32:
        le(int_bits(v), 4);
        break;
      case ValueType::UINT64:
      case ValueType::INT64:
        le(int_bits(v), 8);
        break;
      case ValueType::FLOAT32: {
        float f = float(v.as_float().value_or(0.0));
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        u32(bits);
        break;
      }
      case ValueType::FLOAT64: {
        double d = v.as_float().value_or(0.0);
        uint64_t bits;
        std::memcpy(&bits, &d, 8);
        u64(bits);
        break;
      }
      case ValueType::BOOL:
        le(v.as_bool().value_or(false) ? 1 : 0, 1);
        break;
      case ValueType::STRING: {
        const std::string* s = v.as_string();
        str(s ? *s : std::string());
        break;
      }
      case ValueType::ARRAY: {
        const Array* a = v.as_array();
        ValueType elem = a ? a->elem_type : ValueType::UINT8;
        u32(uint32_t(elem));
        u64(a ? a->items.size() : 0);
        if (a)
          for (const Value& item : a->items) value(elem, item);
        break;
      }
    }
  }

 private:
  // Two's-complement bits of an integer value; truncated to the width by le().
  static uint64_t int_bits(const Value& v) {
    if (const auto* u = std::get_if<uint64_t>(&v.data)) return *u;
    if (const auto* i = std::get_if<int64_t>(&v.data)) return uint64_t(*i);
    return 0;
  }

  std::vector<uint8_t> b_;
};

// A value whose payload matches its declared type (arrays: every item matches the
// element type), so that to_bytes() writes exactly what was given.
[[maybe_unused]] bool well_formed(const Value& v) {
  switch (v.type) {
    case ValueType::FLOAT32:
    case ValueType::FLOAT64:
      return std::holds_alternative<double>(v.data);
    case ValueType::BOOL:
      return std::holds_alternative<bool>(v.data);
    case ValueType::STRING:
      return std::holds_alternative<std::string>(v.data);
    case ValueType::ARRAY: {
      const Array* a = v.as_array();
      if (!a) return false;
      for (const Value& item : a->items)
        if (item.type != a->elem_type || !well_formed(item)) return false;
      return true;
    }
    default:
      return std::holds_alternative<uint64_t>(v.data) || std::holds_alternative<int64_t>(v.data);
  }
}

}  // namespace

void GgufWriter::set(const std::string& key, Value value) {
  assert(well_formed(value) && "gguf::Value payload does not match its type");
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::set_u32(const std::string& key, uint32_t v) {
  set(key, Value::make_uint(ValueType::UINT32, v));
}
void GgufWriter::set_f32(const std::string& key, float v) {
  set(key, Value::make_float(ValueType::FLOAT32, v));
}
void GgufWriter::set_bool(const std::string& key, bool v) { set(key, Value::make_bool(v)); }
void GgufWriter::set_string(const std::string& key, std::string v) {
  set(key, Value::make_string(std::move(v)));
}

Status GgufWriter::add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> dims,
                              std::vector<uint8_t> data) {
  std::string ctx = "tensor '" + name + "'";
  for (const auto& t : tensors_)
    if (t.name == name) return make_error("duplicate ", ctx);
  auto geometry = tensor_geometry(uint32_t(type), dims);
  if (!geometry.ok()) return make_error(ctx, ": ", geometry.error().message);
  if (geometry->n_bytes != data.size())
    return make_error(ctx, ": data has ", data.size(), " bytes, expected ", geometry->n_bytes);
  tensors_.push_back({name, type, std::move(dims), std::move(data)});
  return {};
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  // An invalid alignment still gives bytes (readers reject them, which corrupted-
  // file tests use); write_file() refuses it.
  const uint64_t align = alignment_ == 0 ? 1 : alignment_;
  const bool write_alignment = alignment_ != kDefaultAlignment;
  bool has_alignment_key = false;
  for (const auto& kv : kv_) has_alignment_key |= kv.first == kAlignmentKey;
  const Value align_value = Value::make_uint(ValueType::UINT32, alignment_);

  Out out;
  out.u32(0x46554747);  // "GGUF"
  out.u32(3);
  out.u64(tensors_.size());
  out.u64(kv_.size() + (write_alignment && !has_alignment_key ? 1 : 0));
  // The layout's alignment is the constructor's; a set() general.alignment is
  // overwritten with it so that the file stays self-consistent.
  if (write_alignment && !has_alignment_key) {
    out.str(kAlignmentKey);
    out.u32(uint32_t(ValueType::UINT32));
    out.value(ValueType::UINT32, align_value);
  }
  for (const auto& [key, value] : kv_) {
    const Value& v = key == kAlignmentKey ? align_value : value;
    out.str(key);
    out.u32(uint32_t(v.type));
    out.value(v.type, v);
  }

  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    out.str(t.name);
    out.u32(t.dims.size());
    for (uint64_t d : t.dims) out.u64(d);
    out.u32(uint32_t(t.type));
    out.u64(offset);
    offset = *checked_align_up(offset + t.data.size(), align);
  }
  out.pad_to(align);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (i) out.pad_to(align);
    out.bytes(tensors_[i].data);
  }
  return out.take();
}

Status GgufWriter::write_file(const std::string& path) const {
  if (!is_valid_alignment(alignment_))
    return make_error(path, ": alignment ", alignment_, " is not a power of two that fits 32 bits");
  std::vector<uint8_t> bytes = to_bytes();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return make_error(path, ": cannot create: ", std::strerror(errno));
  size_t written = std::fwrite(bytes.data(), 1, bytes.size(), f);
  bool ok = written == bytes.size();
  int err = ok ? 0 : errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok)
    return make_error(path, ": write failed after ", written, " of ", bytes.size(),
                      " bytes: ", std::strerror(err));
  return {};
}

}  // namespace dhi::gguf
