// libFuzzer entry point for the GGUF reader. Any input must parse or give an
// error, never crash; every value of a parsed file is visited, every tensor's
// bytes are touched (ASan sees reads past the buffer), and the parsed content is
// written again with GgufWriter and re-read, which must give the same content.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "gguf/reader.h"
#include "gguf/writer.h"

namespace {

using dhi::gguf::Array;
using dhi::gguf::GgufFile;
using dhi::gguf::Value;
using dhi::gguf::ValueType;

volatile uint64_t g_sink;

void touch(const Value& v) {
  uint64_t h = uint64_t(v.type);
  if (auto u = v.as_uint()) h += *u;
  if (auto i = v.as_int()) h += uint64_t(*i);
  if (auto f = v.as_float()) h += std::isnan(*f) ? 1 : uint64_t(int64_t(*f > 0 ? 1 : -1));
  if (auto b = v.as_bool()) h += *b;
  if (const std::string* s = v.as_string()) {
    for (char c : *s) h += uint8_t(c);
  }
  if (const Array* a = v.as_array()) {
    h += uint64_t(a->elem_type) + a->items.size();
    for (const Value& item : a->items) touch(item);
  }
  g_sink = g_sink + h;
}

bool same_value(const Value& a, const Value& b) {
  if (a.type != b.type) return false;
  if (a.type == ValueType::FLOAT32 || a.type == ValueType::FLOAT64) {
    double x = *a.as_float(), y = *b.as_float();
    return x == y || (std::isnan(x) && std::isnan(y));
  }
  if (a.type != ValueType::ARRAY) return a.data == b.data;
  const Array* x = a.as_array();
  const Array* y = b.as_array();
  if (x->elem_type != y->elem_type || x->items.size() != y->items.size()) return false;
  for (size_t i = 0; i < x->items.size(); ++i)
    if (!same_value(x->items[i], y->items[i])) return false;
  return true;
}

void check_round_trip(const GgufFile& f) {
  dhi::gguf::GgufWriter w(f.alignment());
  for (const auto& [key, value] : f.metadata()) w.set(key, value);
  for (const auto& t : f.tensors()) {
    if (!w.add_tensor(t.name, t.type, t.dims, std::vector<uint8_t>(t.data, t.data + t.n_bytes))
             .ok())
      __builtin_trap();  // the reader accepted a tensor the writer refuses
  }
  std::vector<uint8_t> bytes = w.to_bytes();
  auto g = GgufFile::parse(bytes);
  if (!g.ok()) __builtin_trap();
  if (g->metadata().size() != f.metadata().size() || g->tensors().size() != f.tensors().size())
    __builtin_trap();
  for (size_t i = 0; i < f.metadata().size(); ++i) {
    if (g->metadata()[i].first != f.metadata()[i].first) __builtin_trap();
    if (!same_value(g->metadata()[i].second, f.metadata()[i].second)) __builtin_trap();
  }
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const auto& a = f.tensors()[i];
    const auto& b = g->tensors()[i];
    if (a.name != b.name || a.dims != b.dims || a.type != b.type || a.n_bytes != b.n_bytes ||
        a.n_elements != b.n_elements)
      __builtin_trap();
    for (uint64_t k = 0; k < a.n_bytes; ++k)
      if (a.data[k] != b.data[k]) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = GgufFile::parse(std::span<const uint8_t>(data, size));
  if (!f.ok()) {
    g_sink = g_sink + f.error().message.size();
    return 0;
  }
  for (const auto& [key, value] : f->metadata()) {
    touch(value);
    // The getters must agree with find() and never fail on a present key for
    // reasons other than its type.
    if (f->find(key) != &value) __builtin_trap();
    (void)f->get_uint(key);
    (void)f->get_float(key);
    (void)f->get_string(key);
    (void)f->get_bool_or(key, false);
    (void)f->get_array(key, ValueType::STRING);
  }
  for (const auto& t : f->tensors()) {
    if (f->find_tensor(t.name) != &t) __builtin_trap();
    if (t.n_bytes == 0 || t.data == nullptr) __builtin_trap();
    g_sink = g_sink + t.data[0] + t.data[t.n_bytes - 1];
  }
  // A legal alignment of up to 2^31 makes the rewritten file that large (the
  // writer really pads to it); the round trip is checked for sane alignments only.
  if (f->alignment() <= (uint64_t(1) << 16)) check_round_trip(*f);
  return 0;
}
