// Memory-mapped GGUF reader. The file is untrusted: every count, length, offset
// and size is checked (overflow-safe) against the bytes present before use, and
// each failure is an Error naming the key or tensor with expected and actual values.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/expected.h"
#include "core/mapped_file.h"
#include "gguf/gguf.h"

namespace dhi::gguf {

class GgufFile {
 public:
  // Maps and parses the file; tensors point into the mapping. Errors start with
  // the path ("model.gguf: key 'k' array element 3: string length ...").
  static Expected<GgufFile> open(const std::string& path);
  // Parses a buffer the caller keeps alive (fuzzing, tests). Errors start with
  // "GGUF buffer: ".
  static Expected<GgufFile> parse(std::span<const uint8_t> bytes);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section
  uint64_t file_size() const { return bytes_.size(); }
  // True when the bytes are this object's read-only mapping of a file (open),
  // false for a caller's buffer (parse). Only a mapping's pages may be released
  // (release_mapped_pages): in a caller's buffer that would zero them.
  bool is_mapped() const { return file_.data() != nullptr; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;

  // Typed getters. `get_*` fail with an error naming the key when it is missing
  // or of the wrong type; `get_*_or` give the default when missing but still fail
  // on a wrong type.
  Expected<uint64_t> get_uint(std::string_view key) const;
  Expected<uint64_t> get_uint_or(std::string_view key, uint64_t def) const;
  Expected<double> get_float(std::string_view key) const;
  Expected<double> get_float_or(std::string_view key, double def) const;
  Expected<bool> get_bool_or(std::string_view key, bool def) const;
  Expected<std::string> get_string(std::string_view key) const;
  Expected<std::string> get_string_or(std::string_view key, std::string def) const;
  // Array of the given element type, or an error naming the key.
  Expected<const Array*> get_array(std::string_view key, ValueType elem_type) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

 private:
  // Error helpers for the getters; messages start with the path when there is one.
  std::string key_context(std::string_view key) const;
  Error missing_key(std::string_view key) const;
  Error wrong_type(std::string_view key, const char* expected, const Value& v) const;
  static std::string describe(const Value& v);

  MappedFile file_;
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;

  friend class Parser;
};

}  // namespace dhi::gguf
