// GGUF writer (version 3). Tests and `dhi synth` generate their models with it:
// GgufWriter holds everything in memory; GgufStreamWriter writes a file tensor by
// tensor, for models larger than memory.
#pragma once

#include <cstdint>
#include <cstdio>
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
  friend class GgufStreamWriter;
  // Header, metadata and the infos of `tensors` (data sizes from their
  // geometry), padded to the alignment: everything before the tensor data.
  struct TensorHeader {
    const std::string* name;
    TensorType type;
    const std::vector<uint64_t>* dims;
    uint64_t n_bytes;
  };
  std::vector<uint8_t> header_bytes(const std::vector<TensorHeader>& tensors) const;

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

// A tensor whose data GgufStreamWriter receives later.
struct TensorDecl {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<uint64_t> dims;  // ne[0] first
};

// Writes a GGUF file without holding its tensor data: the header, metadata and
// tensor infos go out first (every size follows from type and shape), then the
// data of each declared tensor in order through write(), padding inserted
// between tensors. Memory use is whatever the caller's chunks need.
class GgufStreamWriter {
 public:
  // Creates `path` and writes the metadata of `metadata` (which must hold no
  // tensors of its own) and the infos of `tensors`, with its alignment. Fails on
  // duplicate names, a bad shape, or a file that cannot be created.
  static Expected<GgufStreamWriter> create(const std::string& path, const GgufWriter& metadata,
                                           const std::vector<TensorDecl>& tensors);
  GgufStreamWriter(GgufStreamWriter&& other) noexcept;
  GgufStreamWriter& operator=(GgufStreamWriter&& other) noexcept;
  GgufStreamWriter(const GgufStreamWriter&) = delete;
  GgufStreamWriter& operator=(const GgufStreamWriter&) = delete;
  ~GgufStreamWriter();  // closes an unfinished file (left incomplete)

  // Appends the next n bytes of tensor data; a chunk may span tensors. Fails
  // when more bytes arrive than the declared tensors hold, or on a write error.
  Status write(const void* data, size_t n);
  // Checks that every declared byte arrived, then flushes and closes the file.
  // Returns the file size.
  Expected<uint64_t> finish();

 private:
  GgufStreamWriter() = default;
  Status put(const void* data, size_t n);

  std::string path_;
  std::FILE* file_ = nullptr;
  uint64_t alignment_ = 32;
  std::vector<uint64_t> sizes_;  // bytes of each declared tensor
  size_t current_ = 0;           // tensor being written
  uint64_t written_in_current_ = 0;
  uint64_t file_bytes_ = 0;
};

}  // namespace dhi::gguf
