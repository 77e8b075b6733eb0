// GGUF writer -> reader round trips (every value type, nested and empty arrays,
// every tensor type, custom alignment), the writer's exact bytes against a layout
// derived by hand from the specification, a hand-made version 2 file, Value's
// accessors, and the reader's typed getters with their errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "gguf/gguf_bytes.h"
#include "gguf/reader.h"
#include "gguf/writer.h"

namespace dhi::gguf {
namespace {

using testing::Bytes;

GgufFile parse_ok(const std::vector<uint8_t>& bytes) {
  auto f = GgufFile::parse(bytes);
  EXPECT_TRUE(f.ok()) << f.error().message;
  return std::move(f).value();
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(seed * 31 + i * 7 + (i >> 8));
  return v;
}

TEST(GgufValue, IntegerAccessorsCheckRange) {
  Value neg = Value::make_int(ValueType::INT32, -1);
  EXPECT_EQ(neg.as_int(), -1);
  EXPECT_FALSE(neg.as_uint().has_value());
  EXPECT_EQ(neg.as_float(), -1.0);
  Value big = Value::make_uint(ValueType::UINT64, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(big.as_uint(), std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(big.as_int().has_value());
  Value pos = Value::make_int(ValueType::INT64, 5);
  EXPECT_EQ(pos.as_uint(), 5u);
  EXPECT_FALSE(pos.as_bool().has_value());
  EXPECT_EQ(pos.as_string(), nullptr);
  EXPECT_EQ(pos.as_array(), nullptr);
  // Constructors narrow to the declared width, as the file would.
  EXPECT_EQ(Value::make_uint(ValueType::UINT8, 300).as_uint(), 44u);
  EXPECT_EQ(Value::make_int(ValueType::INT8, 200).as_int(), -56);
  EXPECT_EQ(Value::make_float(ValueType::FLOAT32, 0.1).as_float(), double(0.1f));
  EXPECT_FALSE(Value::make_string("1").as_uint().has_value());
  EXPECT_FALSE(Value::make_bool(true).as_uint().has_value());
  EXPECT_STREQ(value_type_name(ValueType::FLOAT64), "FLOAT64");
  EXPECT_STREQ(value_type_name(ValueType(99)), "unknown");
}

TEST(GgufWriter, BytesMatchTheSpecificationLayout) {
  // One UINT32 key "a" = 7 and one F32 tensor "t" of 2 elements, default alignment.
  GgufWriter w;
  w.set_u32("a", 7);
  ASSERT_TRUE(w.add_tensor("t", TensorType::F32, {2}, {1, 2, 3, 4, 5, 6, 7, 8}).ok());
  Bytes want;
  want.header(3, 1, 1).key("a", 4).u32(7);
  want.tensor("t", {2}, 0, 0);
  // Header 4+4+8+8 = 24, key 8+1+4+4 = 17, tensor info 8+1+4+8+4+8 = 33: 74 bytes,
  // then zeros to the next multiple of 32 (96), then the 8 data bytes.
  ASSERT_EQ(want.b.size(), 74u);
  want.pad_to(32);
  for (int i = 1; i <= 8; ++i) want.u8(i);
  EXPECT_EQ(w.to_bytes(), want.b);
}

TEST(GgufRoundTrip, EveryValueType) {
  GgufWriter w;
  w.set("u8", Value::make_uint(ValueType::UINT8, 255));
  w.set("i8", Value::make_int(ValueType::INT8, -128));
  w.set("u16", Value::make_uint(ValueType::UINT16, 65535));
  w.set("i16", Value::make_int(ValueType::INT16, -32768));
  w.set_u32("u32", 4294967295u);
  w.set("i32", Value::make_int(ValueType::INT32, std::numeric_limits<int32_t>::min()));
  w.set_f32("f32", -0.15625f);
  w.set_bool("t", true);
  w.set_bool("f", false);
  w.set_string("s", std::string("h\0llo \xe2\x9c\x93", 10));
  w.set_string("empty_string", "");
  w.set("u64", Value::make_uint(ValueType::UINT64, std::numeric_limits<uint64_t>::max()));
  w.set("i64", Value::make_int(ValueType::INT64, std::numeric_limits<int64_t>::min()));
  w.set("f64", Value::make_float(ValueType::FLOAT64, 1e300));
  w.set("strings", Value::make_string_array({"a", "", "ccc"}));
  w.set("floats", Value::make_f32_array({1.0f, -2.5f, std::numeric_limits<float>::infinity()}));
  w.set("ints", Value::make_i32_array({-1, 0, 1 << 30}));
  w.set("empty_u8", Value::make_array(ValueType::UINT8, {}));
  w.set("empty_nested", Value::make_array(ValueType::ARRAY, {}));
  w.set("nested",
        Value::make_array(
            ValueType::ARRAY,
            {Value::make_string_array({"x", "y"}), Value::make_array(ValueType::FLOAT64, {}),
             Value::make_array(ValueType::ARRAY, {Value::make_i32_array({7})})}));
  w.set_u32("replaced", 1);
  w.set_u32("replaced", 2);  // replaces in place, keeps the position

  GgufFile f = parse_ok(w.to_bytes());
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_TRUE(f.tensors().empty());
  ASSERT_EQ(f.metadata().size(), 21u);
  EXPECT_EQ(f.metadata()[0].first, "u8");
  EXPECT_EQ(f.metadata()[20].first, "replaced");
  EXPECT_EQ(f.get_uint("replaced").value(), 2u);

  auto type_of = [&](const char* k) { return f.find(k)->type; };
  EXPECT_EQ(type_of("u8"), ValueType::UINT8);
  EXPECT_EQ(f.get_uint("u8").value(), 255u);
  EXPECT_EQ(type_of("i8"), ValueType::INT8);
  EXPECT_EQ(f.find("i8")->as_int(), -128);
  EXPECT_EQ(type_of("u16"), ValueType::UINT16);
  EXPECT_EQ(f.get_uint("u16").value(), 65535u);
  EXPECT_EQ(type_of("i16"), ValueType::INT16);
  EXPECT_EQ(f.find("i16")->as_int(), -32768);
  EXPECT_EQ(type_of("u32"), ValueType::UINT32);
  EXPECT_EQ(f.get_uint("u32").value(), 4294967295u);
  EXPECT_EQ(type_of("i32"), ValueType::INT32);
  EXPECT_EQ(f.find("i32")->as_int(), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(type_of("f32"), ValueType::FLOAT32);
  EXPECT_EQ(f.get_float("f32").value(), -0.15625);
  EXPECT_EQ(f.get_bool_or("t", false).value(), true);
  EXPECT_EQ(f.get_bool_or("f", true).value(), false);
  EXPECT_EQ(f.get_string("s").value(), std::string("h\0llo \xe2\x9c\x93", 10));
  EXPECT_EQ(f.get_string("empty_string").value(), "");
  EXPECT_EQ(type_of("u64"), ValueType::UINT64);
  EXPECT_EQ(f.get_uint("u64").value(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(type_of("i64"), ValueType::INT64);
  EXPECT_EQ(f.find("i64")->as_int(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(type_of("f64"), ValueType::FLOAT64);
  EXPECT_EQ(f.get_float("f64").value(), 1e300);

  const Array* strings = f.get_array("strings", ValueType::STRING).value();
  ASSERT_EQ(strings->items.size(), 3u);
  EXPECT_EQ(*strings->items[2].as_string(), "ccc");
  EXPECT_EQ(*strings->items[1].as_string(), "");
  const Array* floats = f.get_array("floats", ValueType::FLOAT32).value();
  ASSERT_EQ(floats->items.size(), 3u);
  EXPECT_EQ(floats->items[1].as_float(), -2.5);
  EXPECT_TRUE(std::isinf(*floats->items[2].as_float()));
  const Array* ints = f.get_array("ints", ValueType::INT32).value();
  ASSERT_EQ(ints->items.size(), 3u);
  EXPECT_EQ(ints->items[0].as_int(), -1);
  EXPECT_EQ(ints->items[2].as_int(), 1 << 30);
  EXPECT_TRUE(f.get_array("empty_u8", ValueType::UINT8).value()->items.empty());
  EXPECT_TRUE(f.get_array("empty_nested", ValueType::ARRAY).value()->items.empty());

  const Array* nested = f.get_array("nested", ValueType::ARRAY).value();
  ASSERT_EQ(nested->items.size(), 3u);
  const Array* n0 = nested->items[0].as_array();
  ASSERT_NE(n0, nullptr);
  EXPECT_EQ(n0->elem_type, ValueType::STRING);
  EXPECT_EQ(*n0->items[1].as_string(), "y");
  const Array* n1 = nested->items[1].as_array();
  ASSERT_NE(n1, nullptr);
  EXPECT_EQ(n1->elem_type, ValueType::FLOAT64);
  EXPECT_TRUE(n1->items.empty());
  const Array* n2 = nested->items[2].as_array();
  ASSERT_NE(n2, nullptr);
  ASSERT_EQ(n2->elem_type, ValueType::ARRAY);
  ASSERT_EQ(n2->items.size(), 1u);
  EXPECT_EQ(n2->items[0].as_array()->items[0].as_int(), 7);
}

// Block geometry from ggml's block definitions (elements per block, bytes per
// block), written out here independently of core's table.
struct TypeGeometry {
  TensorType type;
  uint32_t block, bytes;
};
constexpr TypeGeometry kGeometry[] = {
    {TensorType::F32, 1, 4},      {TensorType::F16, 1, 2},      {TensorType::Q4_0, 32, 18},
    {TensorType::Q4_1, 32, 20},   {TensorType::Q5_0, 32, 22},   {TensorType::Q5_1, 32, 24},
    {TensorType::Q8_0, 32, 34},   {TensorType::Q8_1, 32, 36},   {TensorType::Q2_K, 256, 84},
    {TensorType::Q3_K, 256, 110}, {TensorType::Q4_K, 256, 144}, {TensorType::Q5_K, 256, 176},
    {TensorType::Q6_K, 256, 210}, {TensorType::Q8_K, 256, 292}, {TensorType::BF16, 1, 2},
};

TEST(GgufRoundTrip, EveryTensorType) {
  GgufWriter w;
  w.set_string("general.architecture", "test");
  std::vector<std::vector<uint8_t>> datas;
  for (size_t i = 0; i < std::size(kGeometry); ++i) {
    const auto& g = kGeometry[i];
    // Two blocks per row, three rows: 6 blocks. Sizes that are not multiples of
    // 32 make the padding between tensors matter.
    datas.push_back(pattern(6 * g.bytes, uint8_t(i)));
    ASSERT_TRUE(w.add_tensor(std::string("t.") + std::string(tensor_type_name(g.type)), g.type,
                             {2 * g.block, 3}, datas.back())
                    .ok());
  }
  std::vector<uint8_t> bytes = w.to_bytes();
  GgufFile f = parse_ok(bytes);
  ASSERT_EQ(f.tensors().size(), std::size(kGeometry));
  EXPECT_EQ(f.data_offset() % 32, 0u);
  for (size_t i = 0; i < std::size(kGeometry); ++i) {
    const auto& g = kGeometry[i];
    const TensorInfo& t = f.tensors()[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(f.find_tensor(t.name), &t);
    EXPECT_EQ(t.type, g.type);
    EXPECT_EQ(t.dims, (std::vector<uint64_t>{2 * g.block, 3}));
    EXPECT_EQ(t.n_elements, 6u * g.block);
    EXPECT_EQ(t.n_bytes, 6u * g.bytes);
    EXPECT_EQ(t.offset % 32, 0u);
    EXPECT_EQ(t.data, bytes.data() + f.data_offset() + t.offset);
    EXPECT_EQ(std::vector<uint8_t>(t.data, t.data + t.n_bytes), datas[i]);
  }
  EXPECT_EQ(f.find_tensor("missing"), nullptr);
}

TEST(GgufRoundTrip, CustomAlignment) {
  for (uint64_t align : {1u, 8u, 64u, 4096u}) {
    SCOPED_TRACE(align);
    GgufWriter w(align);
    w.set_string("general.name", "x");
    ASSERT_TRUE(w.add_tensor("a", TensorType::F16, {3}, pattern(6, 1)).ok());
    ASSERT_TRUE(w.add_tensor("b", TensorType::F32, {5, 1, 1, 1}, pattern(20, 2)).ok());
    std::vector<uint8_t> bytes = w.to_bytes();
    GgufFile f = parse_ok(bytes);
    EXPECT_EQ(f.alignment(), align);
    EXPECT_EQ(f.data_offset() % align, 0u);
    EXPECT_EQ(f.get_uint("general.alignment").value(), align);
    EXPECT_EQ(f.find("general.alignment")->type, ValueType::UINT32);
    ASSERT_EQ(f.tensors().size(), 2u);
    // "a" has 6 bytes, so "b" starts at the first multiple of the alignment >= 6.
    EXPECT_EQ(f.tensors()[1].offset, align >= 6 ? align : 6);
    EXPECT_EQ(std::vector<uint8_t>(f.tensors()[1].data, f.tensors()[1].data + 20), pattern(20, 2));
  }
}

TEST(GgufWriter, LayoutAlignmentWinsOverASetKey) {
  // The constructor's alignment lays the file out, so a set() value is replaced
  // with it in place: the file never claims an alignment it does not follow.
  GgufWriter w(64);
  w.set_string("general.architecture", "llama");
  w.set_u32("general.alignment", 16);
  ASSERT_TRUE(w.add_tensor("a", TensorType::F32, {1}, pattern(4, 1)).ok());
  ASSERT_TRUE(w.add_tensor("b", TensorType::F32, {1}, pattern(4, 2)).ok());
  GgufFile f = parse_ok(w.to_bytes());
  ASSERT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.metadata()[1].first, "general.alignment");
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.tensors()[1].offset, 64u);
}

TEST(GgufRoundTrip, WriteFileAndOpen) {
  std::string path = testing::temp_path("gguf_roundtrip_open.gguf");
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  ASSERT_TRUE(w.add_tensor("w", TensorType::Q8_0, {64}, pattern(68, 9)).ok());
  ASSERT_TRUE(w.write_file(path).ok());
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->get_string("general.architecture").value(), "llama");
  EXPECT_EQ(f->file_size(), w.to_bytes().size());
  // Moving the file keeps the tensor pointers into the same mapping valid.
  GgufFile moved = std::move(f).value();
  EXPECT_EQ(std::vector<uint8_t>(moved.tensors()[0].data, moved.tensors()[0].data + 68),
            pattern(68, 9));
  std::remove(path.c_str());
}

TEST(GgufWriter, RejectsBadTensors) {
  GgufWriter w;
  ASSERT_TRUE(w.add_tensor("a", TensorType::F32, {1}, pattern(4, 0)).ok());
  auto dup = w.add_tensor("a", TensorType::F32, {1}, pattern(4, 0));
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("'a'"), std::string::npos);
  auto size = w.add_tensor("b", TensorType::F32, {2}, pattern(7, 0));
  ASSERT_FALSE(size.ok());
  EXPECT_NE(size.error().message.find("7 bytes, expected 8"), std::string::npos)
      << size.error().message;
  auto block = w.add_tensor("c", TensorType::Q4_0, {16}, pattern(9, 0));
  ASSERT_FALSE(block.ok());
  EXPECT_NE(block.error().message.find("block size 32"), std::string::npos);
  EXPECT_FALSE(w.add_tensor("d", TensorType::F32, {}, {}).ok());
  EXPECT_FALSE(w.add_tensor("e", TensorType::F32, {1, 1, 1, 1, 1}, pattern(4, 0)).ok());
  EXPECT_FALSE(w.add_tensor("f", TensorType::F32, {0}, {}).ok());
  EXPECT_FALSE(w.add_tensor("g", TensorType(4), {1}, pattern(4, 0)).ok());
  auto bad = GgufWriter(3).write_file(testing::temp_path("never.gguf"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("alignment 3"), std::string::npos);
}

TEST(GgufReader, ReadsHandMadeVersion2File) {
  // A version 2 file as the v2 specification lays it out: u64 counts and lengths.
  Bytes b;
  b.header(2, 1, 3);
  b.key("general.architecture", 8).str("llama");
  b.key("llama.block_count", 4).u32(5);
  b.key("tokenizer.ggml.scores", 9).u32(6).u64(2).f32(-1.0f).f32(0.5f);
  b.tensor("output_norm.weight", {4}, 0, 0);
  b.pad_to(32);
  size_t data_start = b.b.size();
  b.f32(1).f32(2).f32(3).f32(4);
  GgufFile f = parse_ok(b.b);
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.data_offset(), data_start);
  EXPECT_EQ(f.get_string("general.architecture").value(), "llama");
  EXPECT_EQ(f.get_uint("llama.block_count").value(), 5u);
  const Array* scores = f.get_array("tokenizer.ggml.scores", ValueType::FLOAT32).value();
  ASSERT_EQ(scores->items.size(), 2u);
  EXPECT_EQ(scores->items[1].as_float(), 0.5);
  ASSERT_EQ(f.tensors().size(), 1u);
  const TensorInfo& t = f.tensors()[0];
  EXPECT_EQ(t.name, "output_norm.weight");
  EXPECT_EQ(t.n_bytes, 16u);
  float x;
  std::memcpy(&x, t.data + 12, 4);
  EXPECT_EQ(x, 4.0f);
}

TEST(GgufReader, VocabOnlyFileNeedsNoPaddingAtTheEnd) {
  // With no tensors, nothing follows the metadata; the data section is empty.
  Bytes b;
  b.header(3, 0, 1).key("k", 0).u8(1);
  GgufFile f = parse_ok(b.b);
  EXPECT_EQ(f.get_uint("k").value(), 1u);
}

TEST(GgufReader, LargeAlignmentIsOnlyAnOffset) {
  // 2^30 is a legal alignment; with no tensors nothing is read or allocated at it
  // (found by the fuzzer, whose rewrite of such a file took too long).
  Bytes b;
  b.header(3, 0, 1).key("general.alignment", 4).u32(uint32_t(1) << 30);
  GgufFile f = parse_ok(b.b);
  EXPECT_EQ(f.alignment(), uint64_t(1) << 30);
  EXPECT_EQ(f.data_offset(), uint64_t(1) << 30);
  EXPECT_TRUE(f.tensors().empty());
}

TEST(GgufReader, TypedGetterErrorsNameKeyAndTypes) {
  GgufWriter w;
  w.set("neg", Value::make_int(ValueType::INT32, -3));
  w.set_string("name", "x");
  w.set_f32("eps", 1e-5f);
  w.set("ids", Value::make_i32_array({1}));
  w.set_bool("flag", true);
  GgufFile f = parse_ok(w.to_bytes());

  auto missing = f.get_uint("llama.block_count");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "key 'llama.block_count' not found");
  auto neg = f.get_uint("neg");
  ASSERT_FALSE(neg.ok());
  EXPECT_EQ(neg.error().message, "key 'neg': expected an unsigned integer, got INT32 value -3");
  auto str = f.get_uint("name");
  ASSERT_FALSE(str.ok());
  EXPECT_EQ(str.error().message, "key 'name': expected an unsigned integer, got STRING");
  auto flt = f.get_string("eps");
  ASSERT_FALSE(flt.ok());
  EXPECT_EQ(flt.error().message, "key 'eps': expected STRING, got FLOAT32");
  auto arr = f.get_array("ids", ValueType::STRING);
  ASSERT_FALSE(arr.ok());
  EXPECT_EQ(arr.error().message, "key 'ids': expected ARRAY of STRING, got ARRAY of INT32");
  auto not_arr = f.get_array("name", ValueType::STRING);
  ASSERT_FALSE(not_arr.ok());
  EXPECT_EQ(not_arr.error().message, "key 'name': expected ARRAY of STRING, got STRING");
  auto b = f.get_bool_or("name", false);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message, "key 'name': expected BOOL, got STRING");
  auto fl = f.get_float("name");
  ASSERT_FALSE(fl.ok());
  EXPECT_EQ(fl.error().message, "key 'name': expected a number, got STRING");

  // Defaults apply only when the key is missing; a wrong type is still an error.
  EXPECT_EQ(f.get_uint_or("absent", 7).value(), 7u);
  EXPECT_FALSE(f.get_uint_or("name", 7).ok());
  EXPECT_EQ(f.get_float_or("absent", 0.5).value(), 0.5);
  EXPECT_FLOAT_EQ(float(f.get_float_or("eps", 0.5).value()), 1e-5f);
  EXPECT_FALSE(f.get_float_or("name", 0.5).ok());
  EXPECT_EQ(f.get_bool_or("absent", true).value(), true);
  EXPECT_EQ(f.get_bool_or("flag", false).value(), true);
  EXPECT_EQ(f.get_string_or("absent", "d").value(), "d");
  EXPECT_FALSE(f.get_string_or("eps", "d").ok());
  EXPECT_EQ(f.get_float("neg").value(), -3.0);  // integers read as numbers
}

TEST(GgufReader, GetterErrorsStartWithThePathOfAnOpenedFile) {
  std::string path = testing::temp_path("gguf_getter_path.gguf");
  GgufWriter w;
  ASSERT_TRUE(w.write_file(path).ok());
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message;
  auto e = f->get_string("general.architecture");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, path + ": key 'general.architecture' not found");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace dhi::gguf
