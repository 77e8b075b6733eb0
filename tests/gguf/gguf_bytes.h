// Hand-assembled GGUF bytes for the gguf tests, independent of GgufWriter: the
// layout follows the GGUF specification directly (little-endian; u64 counts and
// string lengths in versions 2 and 3).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace dhi::gguf::testing {

struct Bytes {
  std::vector<uint8_t> b;

  Bytes& le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(uint8_t(v >> (8 * i)));
    return *this;
  }
  Bytes& u8(uint64_t v) { return le(v, 1); }
  Bytes& u16(uint64_t v) { return le(v, 2); }
  Bytes& u32(uint64_t v) { return le(v, 4); }
  Bytes& u64(uint64_t v) { return le(v, 8); }
  Bytes& f32(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    return u32(bits);
  }
  Bytes& f64(double d) {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    return u64(bits);
  }
  Bytes& raw(const std::string& s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& str(const std::string& s) { return u64(s.size()).raw(s); }
  // "GGUF", version, tensor count, metadata count.
  Bytes& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    return raw("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  }
  // A key with its value type; the value follows.
  Bytes& key(const std::string& k, uint32_t type) { return str(k).u32(type); }
  // One tensor info: name, n_dims, dims, type, offset.
  Bytes& tensor(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type,
                uint64_t offset) {
    str(name).u32(dims.size());
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
  Bytes& pad_to(size_t align) {
    while (b.size() % align) b.push_back(0);
    return *this;
  }
  Bytes& zeros(size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
  std::span<const uint8_t> span() const { return b; }
};

// A path in the test temp folder unique to this process, so that concurrent test
// runs (release and sanitizer builds under ctest -j) never share a file.
inline std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/dhi_gguf_" + std::to_string(::getpid()) + "_" + name;
}

}  // namespace dhi::gguf::testing
