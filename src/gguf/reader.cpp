// GGUF reader: parses a mapped (or caller-owned) buffer into metadata and a tensor
// directory. Everything in the file is untrusted, so reads go through a bounds-
// checked cursor, every count is compared (overflow-safe) with the bytes left
// before anything is allocated from it, and every error names what was being
// read: the key, the array element or the tensor, with expected and actual values.
#include "gguf/reader.h"

#include <cstring>
#include <utility>

#include "core/checked.h"

namespace dhi::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxArrayDepth = 8;        // nesting bound: keeps recursion shallow

// Smallest encoding of one value of each type; an array of `n` such values needs
// at least n times this many bytes, which bounds n before anything is reserved.
uint64_t min_value_bytes(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::BOOL:
      return 1;
    case ValueType::UINT16:
    case ValueType::INT16:
      return 2;
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::FLOAT32:
      return 4;
    case ValueType::UINT64:
    case ValueType::INT64:
    case ValueType::FLOAT64:
      return 8;
    case ValueType::STRING:
      return 8;  // the length
    case ValueType::ARRAY:
      return 12;  // element type and count
  }
  return 1;
}

// Key length (8) + value type (4) + the smallest value (1).
constexpr uint64_t kMinKvBytes = 13;
// Name length (8) + n_dims (4) + one dimension (8) + type (4) + offset (8).
constexpr uint64_t kMinTensorInfoBytes = 32;

bool is_value_type(uint32_t t) { return t <= uint32_t(ValueType::FLOAT64); }

// Joins a context ("key 'k'") to an inner message. Array errors read on as one
// phrase ("key 'k' array element 3: ..."); others follow a colon.
Error with_context(const std::string& context, const Error& inner) {
  const std::string& m = inner.message;
  bool phrase = m.rfind("array element ", 0) == 0;
  return Error{context + (phrase ? " " : ": ") + m};
}

class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return bytes_.size() - pos_; }

  // Reads a little-endian unsigned integer of N bytes.
  template <size_t N>
  Expected<uint64_t> read_le(const char* what) {
    if (left() < N)
      return make_error(what, ": need ", N, " bytes at offset ", pos_, " but only ", left(),
                        " are left");
    uint64_t v = 0;
    for (size_t i = 0; i < N; ++i) v |= uint64_t(bytes_[pos_ + i]) << (8 * i);
    pos_ += N;
    return v;
  }
  Expected<uint64_t> u8(const char* what) { return read_le<1>(what); }
  Expected<uint64_t> u16(const char* what) { return read_le<2>(what); }
  Expected<uint64_t> u32(const char* what) { return read_le<4>(what); }
  Expected<uint64_t> u64(const char* what) { return read_le<8>(what); }

  // A length-prefixed string; `what` names it in errors ("key", "name", "string").
  Expected<std::string> string(const char* what) {
    if (left() < 8)
      return make_error(what, " length: need 8 bytes at offset ", pos_, " but only ", left(),
                        " are left");
    uint64_t n = *read_le<8>(what);
    if (n > left()) return make_error(what, " length ", n, " exceeds the ", left(), " bytes left");
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), size_t(n));
    pos_ += n;
    return s;
  }

 private:
  std::span<const uint8_t> bytes_;
  uint64_t pos_ = 0;
};

}  // namespace

// Fills a GgufFile from a buffer; a friend of GgufFile (see reader.h).
class Parser {
 public:
  Parser(std::span<const uint8_t> bytes, GgufFile& out) : cur_(bytes), out_(out) {
    out_.bytes_ = bytes;
  }

  Status run() {
    DHI_TRY(header());
    out_.kv_.reserve(size_t(n_kv_));
    for (uint64_t i = 0; i < n_kv_; ++i) DHI_TRY(key_value(i));
    DHI_TRY(alignment());
    out_.tensors_.reserve(size_t(n_tensors_));
    for (uint64_t i = 0; i < n_tensors_; ++i) DHI_TRY(tensor_info(i));
    return layout();
  }

 private:
  Status header() {
    if (cur_.left() < 4)
      return make_error("file too short for the GGUF magic: ", cur_.left(), " bytes");
    DHI_ASSIGN_OR_RETURN(uint64_t magic, cur_.u32("magic"));
    if (magic != kMagic)
      return make_error("not a GGUF file: bad magic ", hex32(uint32_t(magic)),
                        " (expected 47 47 55 46 \"GGUF\")");
    DHI_ASSIGN_OR_RETURN(uint64_t version, cur_.u32("version"));
    if (version == 1)
      return make_error(
          "GGUF version 1 is not supported (32-bit counts; only versions 2 and 3 are)");
    if (version != 2 && version != 3) {
      // A big-endian file reads as 0x02000000 or 0x03000000 here.
      bool swapped = version == 0x02000000 || version == 0x03000000;
      return make_error(
          "unsupported GGUF version ", version, " (expected 2 or 3)",
          swapped ? "; this looks like a big-endian file, which is not supported" : "");
    }
    out_.version_ = uint32_t(version);
    DHI_ASSIGN_OR_RETURN(n_tensors_, cur_.u64("tensor count"));
    DHI_ASSIGN_OR_RETURN(n_kv_, cur_.u64("metadata count"));
    DHI_TRY(check_count("metadata count", n_kv_, kMinKvBytes));
    // The tensor infos follow the metadata; bounding them against everything
    // left is a loose but allocation-safe check, redone tightly per tensor.
    return check_count("tensor count", n_tensors_, kMinTensorInfoBytes);
  }

  // `count` items of at least `min_bytes` each must fit in the bytes left.
  Status check_count(const char* what, uint64_t count, uint64_t min_bytes) {
    auto need = checked_mul(count, min_bytes);
    if (!need || *need > cur_.left())
      return make_error(what, " ", count, " needs at least ", count, " x ", min_bytes,
                        " bytes but only ", cur_.left(), " are left");
    return {};
  }

  Status key_value(uint64_t i) {
    auto key = cur_.string("key");
    if (!key.ok())
      return with_context("metadata entry " + std::to_string(i) + " of " + std::to_string(n_kv_),
                          key.error());
    std::string ctx = "key '" + *key + "'";
    auto type = value_type(ctx);
    if (!type.ok()) return type.error();
    auto value = read_value(*type, 0);
    if (!value.ok()) return with_context(ctx, value.error());
    auto [it, inserted] = out_.kv_index_.emplace(*key, out_.kv_.size());
    if (!inserted)
      return make_error("duplicate key '", *key, "' (metadata entries ", it->second, " and ", i,
                        ")");
    out_.kv_.emplace_back(std::move(*key), std::move(*value));
    return {};
  }

  Expected<ValueType> value_type(const std::string& ctx) {
    auto t = cur_.u32("value type");
    if (!t.ok()) return with_context(ctx, t.error());
    if (!is_value_type(uint32_t(*t)))
      return make_error(ctx, ": unknown value type ", *t, " (expected 0 to 12)");
    return ValueType(*t);
  }

  Expected<Value> read_value(ValueType t, int depth) {
    switch (t) {
      case ValueType::UINT8:
        return uint_value<1>(t);
      case ValueType::UINT16:
        return uint_value<2>(t);
      case ValueType::UINT32:
        return uint_value<4>(t);
      case ValueType::UINT64:
        return uint_value<8>(t);
      case ValueType::INT8:
        return int_value<1>(t);
      case ValueType::INT16:
        return int_value<2>(t);
      case ValueType::INT32:
        return int_value<4>(t);
      case ValueType::INT64:
        return int_value<8>(t);
      case ValueType::FLOAT32: {
        DHI_ASSIGN_OR_RETURN(uint64_t bits, cur_.u32("FLOAT32 value"));
        float f;
        uint32_t b32 = uint32_t(bits);
        std::memcpy(&f, &b32, 4);
        return Value::make_float(t, f);
      }
      case ValueType::FLOAT64: {
        DHI_ASSIGN_OR_RETURN(uint64_t bits, cur_.u64("FLOAT64 value"));
        double d;
        std::memcpy(&d, &bits, 8);
        return Value::make_float(t, d);
      }
      case ValueType::BOOL: {
        DHI_ASSIGN_OR_RETURN(uint64_t b, cur_.u8("BOOL value"));
        if (b > 1) return make_error("BOOL value is ", b, ", expected 0 or 1");
        return Value::make_bool(b == 1);
      }
      case ValueType::STRING: {
        DHI_ASSIGN_OR_RETURN(std::string s, cur_.string("string"));
        return Value::make_string(std::move(s));
      }
      case ValueType::ARRAY:
        return array_value(depth);
    }
    return make_error("unknown value type ", uint32_t(t));
  }

  template <size_t N>
  Expected<Value> uint_value(ValueType t) {
    DHI_ASSIGN_OR_RETURN(uint64_t v, cur_.read_le<N>(value_type_name(t)));
    return Value::make_uint(t, v);
  }

  template <size_t N>
  Expected<Value> int_value(ValueType t) {
    DHI_ASSIGN_OR_RETURN(uint64_t v, cur_.read_le<N>(value_type_name(t)));
    // Sign-extend from N bytes (two's complement, as the file stores it).
    constexpr unsigned kShift = 64 - 8 * N;
    int64_t s = int64_t(v << kShift) >> kShift;
    return Value::make_int(t, s);
  }

  Expected<Value> array_value(int depth) {
    if (depth >= kMaxArrayDepth)
      return make_error("arrays nested deeper than ", kMaxArrayDepth, " levels");
    DHI_ASSIGN_OR_RETURN(uint64_t et, cur_.u32("array element type"));
    if (!is_value_type(uint32_t(et)))
      return make_error("unknown array element type ", et, " (expected 0 to 12)");
    ValueType elem = ValueType(et);
    DHI_ASSIGN_OR_RETURN(uint64_t n, cur_.u64("array length"));
    auto need = checked_mul(n, min_value_bytes(elem));
    if (!need || *need > cur_.left())
      return make_error("array of ", n, " ", value_type_name(elem), " needs at least ", n, " x ",
                        min_value_bytes(elem), " bytes but only ", cur_.left(), " are left");
    std::vector<Value> items;
    items.reserve(size_t(n));
    for (uint64_t i = 0; i < n; ++i) {
      auto v = read_value(elem, depth + 1);
      if (!v.ok()) return with_context("array element " + std::to_string(i), v.error());
      items.push_back(std::move(*v));
    }
    return Value::make_array(elem, std::move(items));
  }

  Status alignment() {
    const Value* v = out_.find("general.alignment");
    if (!v) return {};
    if (v->type != ValueType::UINT32)
      return make_error("key 'general.alignment': expected UINT32, got ", value_type_name(v->type));
    uint64_t a = *v->as_uint();
    if (!is_valid_alignment(a))
      return make_error("key 'general.alignment': ", a, " is not a nonzero power of two");
    out_.alignment_ = a;
    return {};
  }

  Status tensor_info(uint64_t i) {
    auto name = cur_.string("name");
    if (!name.ok())
      return with_context("tensor info " + std::to_string(i) + " of " + std::to_string(n_tensors_),
                          name.error());
    TensorInfo t;
    t.name = std::move(*name);
    std::string ctx = "tensor '" + t.name + "'";
    auto fail = [&](const Error& e) { return with_context(ctx, e); };

    auto n_dims = cur_.u32("n_dims");
    if (!n_dims.ok()) return fail(n_dims.error());
    // Checked here already, before it bounds how many dimensions are read.
    if (*n_dims == 0 || *n_dims > kMaxDims)
      return make_error(ctx, ": n_dims is ", *n_dims, ", expected 1 to ", kMaxDims);
    for (uint64_t d = 0; d < *n_dims; ++d) {
      auto ne = cur_.u64("dimension");
      if (!ne.ok()) return fail(ne.error());
      t.dims.push_back(*ne);
    }
    auto type_id = cur_.u32("tensor type");
    if (!type_id.ok()) return fail(type_id.error());
    auto offset = cur_.u64("data offset");
    if (!offset.ok()) return fail(offset.error());

    auto geometry = tensor_geometry(uint32_t(*type_id), t.dims);
    if (!geometry.ok()) return fail(geometry.error());
    t.type = TensorType(*type_id);
    t.offset = *offset;
    t.n_elements = geometry->n_elements;
    t.n_bytes = geometry->n_bytes;

    auto [it, inserted] = out_.tensor_index_.emplace(t.name, out_.tensors_.size());
    if (!inserted)
      return make_error("duplicate tensor name '", t.name, "' (tensors ", it->second, " and ", i,
                        ")");
    out_.tensors_.push_back(std::move(t));
    return {};
  }

  // Places the data section and checks that every tensor lies aligned inside it.
  Status layout() {
    uint64_t a = out_.alignment_;
    auto data_offset = checked_align_up(cur_.pos(), a);
    if (!data_offset) return make_error("data section offset overflows");
    out_.data_offset_ = *data_offset;
    uint64_t size = out_.bytes_.size();
    for (auto& t : out_.tensors_) {
      if (t.offset % a != 0)
        return make_error("tensor '", t.name, "': data offset ", t.offset,
                          " is not a multiple of the alignment ", a);
      auto begin = checked_add(*data_offset, t.offset);
      auto end = begin ? checked_add(*begin, t.n_bytes) : std::nullopt;
      if (!end || *end > size)
        return make_error("tensor '", t.name, "': data of ", t.n_bytes, " bytes at offset ",
                          t.offset, " in the data section (which starts at ", *data_offset,
                          ") runs past the end of the file (", size, " bytes)");
      t.data = out_.bytes_.data() + *begin;
    }
    return {};
  }

  static std::string hex32(uint32_t v) {
    static const char* kHex = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 4; ++i) {
      uint32_t b = (v >> (8 * i)) & 0xff;
      if (i) s += ' ';
      s += kHex[b >> 4];
      s += kHex[b & 15];
    }
    return s;
  }

  Cursor cur_;
  GgufFile& out_;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
};

namespace {

Expected<GgufFile> parse_with_context(std::span<const uint8_t> bytes, const std::string& context,
                                      GgufFile file) {
  Parser p(bytes, file);
  Status s = p.run();
  if (!s.ok()) return Error{context + ": " + s.error().message};
  return file;
}

}  // namespace

Expected<GgufFile> GgufFile::parse(std::span<const uint8_t> bytes) {
  return parse_with_context(bytes, "GGUF buffer", GgufFile());
}

Expected<GgufFile> GgufFile::open(const std::string& path) {
  DHI_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::open(path));
  // The mapping moves into the result; its address (and so every tensor's data
  // pointer) stays the same.
  std::span<const uint8_t> bytes = mapped.bytes();
  GgufFile file;
  file.file_ = std::move(mapped);
  return parse_with_context(bytes, path, std::move(file));
}

const Value* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(std::string(key));
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

// Getter errors start with the file path when there is one.
std::string GgufFile::key_context(std::string_view key) const {
  std::string s;
  if (!file_.path().empty()) s = file_.path() + ": ";
  s += "key '";
  s += key;
  s += "'";
  return s;
}

Error GgufFile::missing_key(std::string_view key) const {
  return make_error(key_context(key), " not found");
}

Error GgufFile::wrong_type(std::string_view key, const char* expected, const Value& v) const {
  return make_error(key_context(key), ": expected ", expected, ", got ", describe(v));
}

std::string GgufFile::describe(const Value& v) {
  std::string s = value_type_name(v.type);
  if (const Array* a = v.as_array())
    s = s + " of " + value_type_name(a->elem_type);
  else if (auto i = v.as_int(); i && *i < 0)
    s += " value " + std::to_string(*i);
  return s;
}

Expected<uint64_t> GgufFile::get_uint(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return missing_key(key);
  auto u = v->as_uint();
  if (!u) return wrong_type(key, "an unsigned integer", *v);
  return *u;
}

Expected<uint64_t> GgufFile::get_uint_or(std::string_view key, uint64_t def) const {
  return find(key) ? get_uint(key) : Expected<uint64_t>(def);
}

Expected<double> GgufFile::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return missing_key(key);
  auto f = v->as_float();
  if (!f) return wrong_type(key, "a number", *v);
  return *f;
}

Expected<double> GgufFile::get_float_or(std::string_view key, double def) const {
  return find(key) ? get_float(key) : Expected<double>(def);
}

Expected<bool> GgufFile::get_bool_or(std::string_view key, bool def) const {
  const Value* v = find(key);
  if (!v) return def;
  auto b = v->as_bool();
  if (!b) return wrong_type(key, "BOOL", *v);
  return *b;
}

Expected<std::string> GgufFile::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return missing_key(key);
  const std::string* s = v->as_string();
  if (!s) return wrong_type(key, "STRING", *v);
  return *s;
}

Expected<std::string> GgufFile::get_string_or(std::string_view key, std::string def) const {
  return find(key) ? get_string(key) : Expected<std::string>(std::move(def));
}

Expected<const Array*> GgufFile::get_array(std::string_view key, ValueType elem_type) const {
  const Value* v = find(key);
  if (!v) return missing_key(key);
  const Array* a = v->as_array();
  if (!a || a->elem_type != elem_type)
    return wrong_type(key, (std::string("ARRAY of ") + value_type_name(elem_type)).c_str(), *v);
  return a;
}

}  // namespace dhi::gguf
