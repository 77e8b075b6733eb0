// GGUF writer (version 3). Tests and `dhi synth` generate their models with it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/expected.h"
#include "gguf/gguf.h"

namespace dhi::gguf {

class GgufWriter {
 public:
  explicit GgufWriter(uint64_t alignment = 32) : alignment_(alignment) {}

  // Metadata is written in insertion order; a repeated key replaces the value.
  void set(const std::string& key, Value value);
  void set_u32(const std::string& key, uint32_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, std::string v);

  // `data` must hold exactly the bytes of a tensor of `type` and `dims` (ne[0]
  // first). Fails on a duplicate name or a size mismatch.
  Status add_tensor(const std::string& name, TensorType type, std::vector<uint64_t> dims,
                    std::vector<uint8_t> data);

  std::vector<uint8_t> to_bytes() const;
  Status write_file(const std::string& path) const;

 private:
  struct PendingTensor {
    std::string name;
    TensorType type;
    std::vector<uint64_t> dims;
    std::vector<uint8_t> data;
  };
  uint64_t alignment_;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace dhi::gguf
