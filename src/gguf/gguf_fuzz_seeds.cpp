// Writes a small seed corpus for gguf_reader_fuzz into a folder: valid GGUF files
// from GgufWriter covering every value type, nested and empty arrays, several
// tensor types, a custom alignment and a version-2 header.
#include <cstdio>
#include <string>
#include <vector>

#include "gguf/writer.h"

using dhi::gguf::GgufWriter;
using dhi::gguf::Value;
using dhi::gguf::ValueType;

namespace {

bool save(const std::string& dir, const std::string& name, const std::vector<uint8_t>& bytes) {
  std::string path = dir + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    std::fprintf(stderr, "%s: cannot create\n", path.c_str());
    return false;
  }
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok) std::fprintf(stderr, "%s: write failed\n", path.c_str());
  return ok;
}

std::vector<uint8_t> tensor_bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(seed + i * 7);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  bool ok = true;

  ok &= save(dir, "empty.gguf", GgufWriter().to_bytes());

  GgufWriter all;
  all.set("u8", Value::make_uint(ValueType::UINT8, 200));
  all.set("i8", Value::make_int(ValueType::INT8, -5));
  all.set("u16", Value::make_uint(ValueType::UINT16, 60000));
  all.set("i16", Value::make_int(ValueType::INT16, -30000));
  all.set_u32("u32", 4000000000u);
  all.set("i32", Value::make_int(ValueType::INT32, -2000000000));
  all.set_f32("f32", 1.5f);
  all.set_bool("bool", true);
  all.set_string("general.architecture", "llama");
  all.set("u64", Value::make_uint(ValueType::UINT64, 1ull << 40));
  all.set("i64", Value::make_int(ValueType::INT64, -(1ll << 40)));
  all.set("f64", Value::make_float(ValueType::FLOAT64, 0.25));
  all.set("tokens", Value::make_string_array({"<unk>", "<s>", "</s>", "a", "b"}));
  all.set("scores", Value::make_f32_array({0.f, -1.f, -2.f, -3.f, -4.f}));
  all.set("types", Value::make_i32_array({2, 3, 3, 1, 1}));
  all.set("empty", Value::make_array(ValueType::UINT64, {}));
  all.set("nested", Value::make_array(ValueType::ARRAY, {Value::make_i32_array({1, 2}),
                                                         Value::make_string_array({"x"}),
                                                         Value::make_array(ValueType::BOOL, {})}));
  ok &= all.add_tensor("a", dhi::TensorType::F32, {4, 2}, tensor_bytes(32, 1)).ok();
  ok &= all.add_tensor("b", dhi::TensorType::Q4_0, {32}, tensor_bytes(18, 2)).ok();
  std::vector<uint8_t> all_bytes = all.to_bytes();
  ok &= save(dir, "all_types.gguf", all_bytes);
  std::vector<uint8_t> v2 = all_bytes;
  v2[4] = 2;  // version 2 has the same layout as version 3
  ok &= save(dir, "version2.gguf", v2);

  GgufWriter aligned(64);
  aligned.set_string("general.name", "aligned");
  ok &= aligned.add_tensor("f16", dhi::TensorType::F16, {3}, tensor_bytes(6, 3)).ok();
  ok &= aligned.add_tensor("bf16", dhi::TensorType::BF16, {1, 1, 1, 2}, tensor_bytes(4, 4)).ok();
  ok &= aligned.add_tensor("q8", dhi::TensorType::Q8_0, {32, 2}, tensor_bytes(68, 5)).ok();
  ok &= aligned.add_tensor("q4k", dhi::TensorType::Q4_K, {256}, tensor_bytes(144, 6)).ok();
  ok &= save(dir, "aligned64.gguf", aligned.to_bytes());

  if (!ok) return 1;
  return 0;
}
