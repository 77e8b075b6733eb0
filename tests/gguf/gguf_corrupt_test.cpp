// Corrupted and hostile GGUF inputs, hand-assembled from the specification: each
// must give an error that names what was wrong (the key, the array element or the
// tensor, with the values involved), never a crash or a huge allocation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gguf/gguf_bytes.h"
#include "gguf/reader.h"
#include "gguf/writer.h"

namespace dhi::gguf {
namespace {

using testing::Bytes;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr uint32_t kString = 8, kArray = 9, kUint32 = 4, kUint64 = 10, kBool = 7, kF32Type = 0;
constexpr uint64_t k2to60 = uint64_t(1) << 60;

std::string parse_error(const Bytes& b) {
  auto f = GgufFile::parse(b.span());
  if (f.ok()) {
    ADD_FAILURE() << "parse succeeded but an error was expected";
    return "";
  }
  return f.error().message;
}

// A valid file with one tensor "w" of 4 F32 at data offset `offset`.
Bytes one_tensor_file(uint64_t offset, size_t data_bytes) {
  Bytes b;
  b.header(3, 1, 1).key("general.architecture", kString).str("llama");
  b.tensor("w", {4}, kF32Type, offset);
  b.pad_to(32).zeros(data_bytes);
  return b;
}

TEST(GgufCorrupt, ValidBaselineParses) {
  // The corrupted variants below differ from files like this one in one field.
  EXPECT_TRUE(GgufFile::parse(one_tensor_file(0, 16).span()).ok());
  EXPECT_TRUE(GgufFile::parse(one_tensor_file(32, 48).span()).ok());
}

TEST(GgufCorrupt, WrongMagic) {
  Bytes b;
  b.raw("GGUX").u32(3).u64(0).u64(0);
  EXPECT_EQ(parse_error(b),
            "GGUF buffer: not a GGUF file: bad magic 47 47 55 58 (expected 47 47 55 46 \"GGUF\")");
  EXPECT_THAT(parse_error(Bytes{}), HasSubstr("too short for the GGUF magic: 0 bytes"));
  EXPECT_THAT(parse_error(Bytes().raw("GGU")), HasSubstr("too short for the GGUF magic: 3 bytes"));
}

TEST(GgufCorrupt, UnsupportedVersions) {
  Bytes v1;
  v1.raw("GGUF").u32(1).u32(0).u32(0);  // version 1 had 32-bit counts
  EXPECT_THAT(parse_error(v1), HasSubstr("GGUF version 1 is not supported"));
  Bytes v4;
  v4.header(4, 0, 0);
  EXPECT_EQ(parse_error(v4), "GGUF buffer: unsupported GGUF version 4 (expected 2 or 3)");
  Bytes big_endian;
  big_endian.raw("GGUF").u32(0x03000000).u64(0).u64(0);
  EXPECT_THAT(parse_error(big_endian), HasSubstr("big-endian"));
}

TEST(GgufCorrupt, TruncatedAtEveryOffset) {
  // A small file with every value type and two tensors, the last one ending the
  // file: every proper prefix of it must fail cleanly.
  GgufWriter w;
  w.set("u8", Value::make_uint(ValueType::UINT8, 1));
  w.set("i16", Value::make_int(ValueType::INT16, -2));
  w.set_u32("u32", 3);
  w.set_f32("f32", 0.5f);
  w.set_bool("b", true);
  w.set_string("s", "str");
  w.set("u64", Value::make_uint(ValueType::UINT64, 5));
  w.set("f64", Value::make_float(ValueType::FLOAT64, 6));
  w.set("tokens", Value::make_string_array({"a", "bb"}));
  w.set("nested", Value::make_array(ValueType::ARRAY, {Value::make_i32_array({1, 2})}));
  ASSERT_TRUE(w.add_tensor("t0", TensorType::F16, {2}, {1, 2, 3, 4}).ok());
  ASSERT_TRUE(w.add_tensor("t1", TensorType::F32, {2, 2}, std::vector<uint8_t>(16, 7)).ok());
  std::vector<uint8_t> full = w.to_bytes();
  ASSERT_TRUE(GgufFile::parse(full).ok());
  for (size_t n = 0; n < full.size(); ++n) {
    // A fresh allocation of exactly n bytes, so ASan catches any read past it.
    std::vector<uint8_t> prefix(full.begin(), full.begin() + n);
    auto f = GgufFile::parse(prefix);
    ASSERT_FALSE(f.ok()) << "prefix of " << n << " bytes parsed";
    EXPECT_THAT(f.error().message, StartsWith("GGUF buffer: ")) << n;
  }
  // Cut inside the last tensor's data: the error names it and the sizes.
  std::vector<uint8_t> cut(full.begin(), full.end() - 1);
  auto f = GgufFile::parse(cut);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.error().message, HasSubstr("tensor 't1': data of 16 bytes at offset 32"));
  EXPECT_THAT(f.error().message, HasSubstr("runs past the end of the file (" +
                                           std::to_string(cut.size()) + " bytes)"));
}

TEST(GgufCorrupt, EveryByteMutatedNeverCrashes) {
  GgufWriter w;
  w.set("tokens", Value::make_string_array({"a", "bb"}));
  w.set("nested", Value::make_array(ValueType::ARRAY, {Value::make_i32_array({1})}));
  w.set_f32("f", 1.0f);
  ASSERT_TRUE(w.add_tensor("t", TensorType::Q4_0, {32}, std::vector<uint8_t>(18, 1)).ok());
  const std::vector<uint8_t> full = w.to_bytes();
  size_t rejected = 0;
  for (size_t i = 0; i < full.size(); ++i) {
    for (uint8_t v : {uint8_t(0x00), uint8_t(0xff), uint8_t(full[i] + 1), uint8_t(0x80)}) {
      if (v == full[i]) continue;
      std::vector<uint8_t> m = full;
      m[i] = v;
      auto f = GgufFile::parse(m);
      if (!f.ok()) {
        ++rejected;
        EXPECT_THAT(f.error().message, StartsWith("GGUF buffer: "));
      }
    }
  }
  EXPECT_GT(rejected, 0u);
}

TEST(GgufCorrupt, HugeCounts) {
  Bytes kv;
  kv.header(3, 0, k2to60);
  EXPECT_EQ(parse_error(kv),
            "GGUF buffer: metadata count 1152921504606846976 needs at least "
            "1152921504606846976 x 13 bytes but only 0 are left");
  Bytes kv_overflow;
  kv_overflow.header(3, 0, ~uint64_t(0)).zeros(64);
  EXPECT_THAT(parse_error(kv_overflow), HasSubstr("metadata count 18446744073709551615 needs"));
  Bytes tensors;
  tensors.header(3, k2to60, 0).zeros(100);
  EXPECT_THAT(parse_error(tensors), HasSubstr("tensor count 1152921504606846976 needs at least"));
  EXPECT_THAT(parse_error(tensors), HasSubstr("only 100 are left"));
}

TEST(GgufCorrupt, HugeArrayCount) {
  Bytes b;
  b.header(3, 0, 1).key("tokenizer.ggml.tokens", kArray).u32(kString).u64(k2to60).str("a");
  EXPECT_EQ(parse_error(b),
            "GGUF buffer: key 'tokenizer.ggml.tokens': array of 1152921504606846976 STRING needs "
            "at least 1152921504606846976 x 8 bytes but only 9 are left");
  // count x 8 overflows 64 bits.
  Bytes o;
  o.header(3, 0, 1).key("ids", kArray).u32(kUint64).u64(uint64_t(1) << 61).zeros(16);
  EXPECT_THAT(parse_error(o), HasSubstr("key 'ids': array of 2305843009213693952 UINT64"));
}

TEST(GgufCorrupt, HugeStringLength) {
  Bytes element;
  element.header(3, 0, 1).key("tokenizer.ggml.tokens", kArray).u32(kString).u64(3);
  element.str("a").u64(99999).raw("abcdefghijkl");
  EXPECT_EQ(parse_error(element),
            "GGUF buffer: key 'tokenizer.ggml.tokens' array element 1: string length 99999 "
            "exceeds the 12 bytes left");
  Bytes value;
  value.header(3, 0, 1).key("general.name", kString).u64(~uint64_t(0));
  EXPECT_EQ(parse_error(value),
            "GGUF buffer: key 'general.name': string length "
            "18446744073709551615 exceeds the 0 bytes left");
  Bytes key;
  key.header(3, 0, 2).key("a", kUint32).u32(1).u64(1000).zeros(20);
  EXPECT_EQ(parse_error(key),
            "GGUF buffer: metadata entry 1 of 2: key length 1000 exceeds the 20 bytes left");
  Bytes name;
  name.header(3, 1, 0).u64(500).zeros(40);
  EXPECT_EQ(parse_error(name),
            "GGUF buffer: tensor info 0 of 1: name length 500 exceeds the 40 bytes left");
}

TEST(GgufCorrupt, TruncatedScalarNamesKeyAndSizes) {
  Bytes b;
  b.header(3, 0, 1).key("llama.block_count", kUint32).u16(5);
  EXPECT_EQ(parse_error(b),
            "GGUF buffer: key 'llama.block_count': UINT32: need 4 bytes at "
            "offset 53 but only 2 are left");
}

TEST(GgufCorrupt, NestedArrayElementErrorsNameEachLevel) {
  Bytes b;
  b.header(3, 0, 1).key("nested", kArray).u32(kArray).u64(2);
  b.u32(kBool).u64(1).u8(1);        // element 0: [true]
  b.u32(kBool).u64(2).u8(0).u8(7);  // element 1: [false, 7]
  EXPECT_EQ(parse_error(b),
            "GGUF buffer: key 'nested' array element 1 array element 1: BOOL "
            "value is 7, expected 0 or 1");
}

TEST(GgufCorrupt, NestingDepthIsBounded) {
  auto nested = [](int depth) {
    Bytes b;
    b.header(3, 0, 1).key("deep", kArray);
    for (int i = 1; i < depth; ++i) b.u32(kArray).u64(1);
    b.u32(kUint32).u64(1).u32(42);
    return b;
  };
  EXPECT_TRUE(GgufFile::parse(nested(8).span()).ok());
  EXPECT_THAT(parse_error(nested(9)), HasSubstr("arrays nested deeper than 8 levels"));
  EXPECT_THAT(parse_error(nested(9)), StartsWith("GGUF buffer: key 'deep' array element 0"));
}

TEST(GgufCorrupt, UnknownValueType) {
  Bytes b;
  b.header(3, 0, 1).key("general.file_type", 13).u32(1);
  EXPECT_EQ(parse_error(b),
            "GGUF buffer: key 'general.file_type': unknown value type 13 (expected 0 to 12)");
  Bytes elem;
  elem.header(3, 0, 1).key("arr", kArray).u32(0xffffffff).u64(0);
  EXPECT_EQ(parse_error(elem),
            "GGUF buffer: key 'arr': unknown array element type 4294967295 (expected 0 to 12)");
}

TEST(GgufCorrupt, BadTensorInfos) {
  auto tensor_error = [](const std::vector<uint64_t>& dims, uint32_t type) {
    Bytes b;
    b.header(3, 1, 0).tensor("blk.0.attn_q.weight", dims, type, 0).zeros(64);
    return parse_error(b);
  };
  const std::string t = "GGUF buffer: tensor 'blk.0.attn_q.weight': ";
  EXPECT_EQ(tensor_error({1, 1, 1, 1, 1}, kF32Type), t + "n_dims is 5, expected 1 to 4");
  EXPECT_EQ(tensor_error({}, kF32Type), t + "n_dims is 0, expected 1 to 4");
  EXPECT_EQ(tensor_error({4, 0}, kF32Type), t + "dimension 1 is 0");
  EXPECT_EQ(tensor_error({4}, 4), t + "unknown tensor type id 4");  // Q4_2, removed from ggml
  EXPECT_EQ(tensor_error({4}, 1000), t + "unknown tensor type id 1000");
  EXPECT_EQ(tensor_error({16}, 2), t + "ne[0] = 16 is not a multiple of the Q4_0 block size 32");
  EXPECT_EQ(tensor_error({uint64_t(1) << 32, uint64_t(1) << 32}, kF32Type),
            t + "element count overflows at dimension 1 (4294967296 x 4294967296 exceeds "
                "9223372036854775807)");
  // 2^63 fits 64 bits but not ggml's signed element count.
  EXPECT_THAT(tensor_error({uint64_t(1) << 62, 2}, kF32Type), HasSubstr("element count overflows"));
  // 2^62 F32 elements are 2^64 bytes.
  EXPECT_EQ(tensor_error({uint64_t(1) << 62}, kF32Type),
            t + "byte size of 4611686018427387904 F32 elements overflows");
  Bytes cut;
  // Long enough to pass the header's minimum-size check, cut in the second dimension.
  cut.header(3, 1, 0).str("token_embd.weight").u32(2).u64(4).u32(0);
  EXPECT_EQ(parse_error(cut),
            "GGUF buffer: tensor 'token_embd.weight': dimension: need 8 bytes "
            "at offset 61 but only 4 are left");  // 24 + 8 + 17 + 4 + 8
}

TEST(GgufCorrupt, MisalignedTensorOffset) {
  EXPECT_EQ(parse_error(one_tensor_file(8, 64)),
            "GGUF buffer: tensor 'w': data offset 8 is not a multiple of the alignment 32");
}

TEST(GgufCorrupt, TensorDataPastEndOfFile) {
  Bytes b = one_tensor_file(32, 40);  // needs 32 + 16 bytes of data
  std::string e = parse_error(b);
  EXPECT_THAT(e, StartsWith("GGUF buffer: tensor 'w': data of 16 bytes at offset 32"));
  EXPECT_THAT(e, HasSubstr("past the end of the file (" + std::to_string(b.b.size()) + " bytes)"));
  // An offset near 2^64 must not wrap around.
  EXPECT_THAT(parse_error(one_tensor_file(~uint64_t(31), 16)), HasSubstr("tensor 'w': data of"));
}

TEST(GgufCorrupt, DuplicateKey) {
  Bytes b;
  b.header(3, 0, 3).key("general.name", kString).str("a");
  b.key("x", kUint32).u32(0).key("general.name", kString).str("b");
  EXPECT_EQ(parse_error(b), "GGUF buffer: duplicate key 'general.name' (metadata entries 0 and 2)");
}

TEST(GgufCorrupt, DuplicateTensorName) {
  Bytes b;
  b.header(3, 2, 0).tensor("output.weight", {4}, kF32Type, 0);
  b.tensor("output.weight", {4}, kF32Type, 32).pad_to(32).zeros(64);
  EXPECT_EQ(parse_error(b), "GGUF buffer: duplicate tensor name 'output.weight' (tensors 0 and 1)");
}

TEST(GgufCorrupt, BadAlignmentValue) {
  auto with_alignment = [](uint32_t type, uint64_t v) {
    Bytes b;
    b.header(3, 0, 1).key("general.alignment", type);
    type == kUint64 ? b.u64(v) : b.u32(v);
    return parse_error(b);
  };
  EXPECT_EQ(with_alignment(kUint32, 0),
            "GGUF buffer: key 'general.alignment': 0 is not a nonzero power of two");
  EXPECT_EQ(with_alignment(kUint32, 48),
            "GGUF buffer: key 'general.alignment': 48 is not a nonzero power of two");
  EXPECT_EQ(with_alignment(kUint64, 64),
            "GGUF buffer: key 'general.alignment': expected UINT32, got UINT64");
  // The writer's invalid alignment is refused by the reader in the same words.
  auto f = GgufFile::parse(GgufWriter(3).to_bytes());
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().message,
            "GGUF buffer: key 'general.alignment': 3 is not a nonzero power of two");
}

TEST(GgufCorrupt, OpenErrorsStartWithThePath) {
  std::string missing = testing::temp_path("does_not_exist.gguf");
  auto m = GgufFile::open(missing);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.error().message, StartsWith(missing + ": cannot open"));

  std::string path = testing::temp_path("gguf_corrupt_open.gguf");
  Bytes b;
  b.header(3, 0, 1).key("k", kString).u64(50);
  std::FILE* fp = std::fopen(path.c_str(), "wb");
  ASSERT_NE(fp, nullptr);
  ASSERT_EQ(std::fwrite(b.b.data(), 1, b.b.size(), fp), b.b.size());
  std::fclose(fp);
  auto f = GgufFile::open(path);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().message, path + ": key 'k': string length 50 exceeds the 0 bytes left");
  std::remove(path.c_str());

  std::string empty = testing::temp_path("gguf_empty.gguf");
  fp = std::fopen(empty.c_str(), "wb");
  ASSERT_NE(fp, nullptr);
  std::fclose(fp);
  auto e = GgufFile::open(empty);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, empty + ": file too short for the GGUF magic: 0 bytes");
  std::remove(empty.c_str());
}

}  // namespace
}  // namespace dhi::gguf
