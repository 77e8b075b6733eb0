// GGUF writer (version 3): header, metadata in insertion order, tensor infos, then
// the tensor data, each tensor at a multiple of the alignment from the start of
// the aligned data section. Little-endian regardless of the host.
#include "gguf/writer.h"

#include <algorithm>
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

std::vector<uint8_t> GgufWriter::header_bytes(const std::vector<TensorHeader>& tensors) const {
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
  out.u64(tensors.size());
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
  for (const auto& t : tensors) {
    out.str(*t.name);
    out.u32(t.dims->size());
    for (uint64_t d : *t.dims) out.u64(d);
    out.u32(uint32_t(t.type));
    out.u64(offset);
    offset = *checked_align_up(offset + t.n_bytes, align);
  }
  out.pad_to(align);
  return out.take();
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  std::vector<TensorHeader> infos;
  for (const auto& t : tensors_) infos.push_back({&t.name, t.type, &t.dims, t.data.size()});
  Out out;
  out.bytes(header_bytes(infos));
  const uint64_t align = alignment_ == 0 ? 1 : alignment_;
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

Expected<GgufStreamWriter> GgufStreamWriter::create(const std::string& path, const GgufWriter& metadata,
                                                   const std::vector<TensorDecl>& tensors) {
  if (!metadata.tensors_.empty())
    return make_error(path, ": the stream writer's metadata writer holds ", metadata.tensors_.size(), " tensors");
  if (!is_valid_alignment(metadata.alignment_))
    return make_error(path, ": alignment ", metadata.alignment_, " is not a power of two that fits 32 bits");
  GgufStreamWriter w;
  w.path_ = path;
  w.alignment_ = metadata.alignment_;
  std::vector<GgufWriter::TensorHeader> infos;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorDecl& t = tensors[i];
    const std::string ctx = "tensor '" + t.name + "'";
    for (size_t j = 0; j < i; ++j)
      if (tensors[j].name == t.name) return make_error(path, ": duplicate ", ctx);
    auto geometry = tensor_geometry(uint32_t(t.type), t.dims);
    if (!geometry.ok()) return make_error(path, ": ", ctx, ": ", geometry.error().message);
    w.sizes_.push_back(geometry->n_bytes);
    infos.push_back({&t.name, t.type, &t.dims, geometry->n_bytes});
  }
  const std::vector<uint8_t> header = metadata.header_bytes(infos);
  w.file_ = std::fopen(path.c_str(), "wb");
  if (!w.file_) return make_error(path, ": cannot create: ", std::strerror(errno));
  DHI_TRY(w.put(header.data(), header.size()));
  // Zero-byte tensors need no data: start at the first tensor that has some.
  while (w.current_ < w.sizes_.size() && w.sizes_[w.current_] == 0) ++w.current_;
  return w;
}

GgufStreamWriter::GgufStreamWriter(GgufStreamWriter&& o) noexcept { *this = std::move(o); }

GgufStreamWriter& GgufStreamWriter::operator=(GgufStreamWriter&& o) noexcept {
  if (this != &o) {
    if (file_) std::fclose(file_);
    path_ = std::move(o.path_);
    file_ = std::exchange(o.file_, nullptr);
    alignment_ = o.alignment_;
    sizes_ = std::move(o.sizes_);
    current_ = o.current_;
    written_in_current_ = o.written_in_current_;
    file_bytes_ = o.file_bytes_;
  }
  return *this;
}

GgufStreamWriter::~GgufStreamWriter() {
  if (file_) std::fclose(file_);
}

Status GgufStreamWriter::put(const void* data, size_t n) {
  if (n == 0) return {};
  if (std::fwrite(data, 1, n, file_) != n)
    return make_error(path_, ": write failed at byte ", file_bytes_, ": ", std::strerror(errno));
  file_bytes_ += n;
  return {};
}

Status GgufStreamWriter::write(const void* data, size_t n) {
  if (!file_) return make_error(path_, ": write after finish");
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    if (current_ >= sizes_.size()) return make_error(path_, ": ", n, " bytes beyond the declared tensors");
    const uint64_t take = std::min<uint64_t>(n, sizes_[current_] - written_in_current_);
    DHI_TRY(put(p, size_t(take)));
    p += take;
    n -= size_t(take);
    written_in_current_ += take;
    if (written_in_current_ == sizes_[current_]) {
      written_in_current_ = 0;
      // The next tensor starts at the alignment; the last one needs no padding.
      do {
        ++current_;
      } while (current_ < sizes_.size() && sizes_[current_] == 0);
      if (current_ < sizes_.size() && file_bytes_ % alignment_ != 0) {
        const std::vector<uint8_t> zeros(size_t(alignment_ - file_bytes_ % alignment_), 0);
        DHI_TRY(put(zeros.data(), zeros.size()));
      }
    }
  }
  return {};
}

Expected<uint64_t> GgufStreamWriter::finish() {
  if (!file_) return make_error(path_, ": finish called twice");
  if (current_ < sizes_.size()) {
    return make_error(path_, ": tensor ", current_, " has ", written_in_current_, " of ", sizes_[current_],
                      " bytes (", sizes_.size() - current_, " tensors unfinished)");
  }
  std::FILE* f = std::exchange(file_, nullptr);
  if (std::fclose(f) != 0) return make_error(path_, ": close failed: ", std::strerror(errno));
  return file_bytes_;
}

}  // namespace dhi::gguf
