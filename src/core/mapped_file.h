// Read-only memory map of a whole file. Weights stay in the page cache and are
// never copied: tensors point into this mapping for the model's lifetime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "core/expected.h"

namespace dhi {

class MappedFile {
 public:
  static Expected<MappedFile> open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Drops the whole pages inside [p, p + n) of a read-only file mapping from the
// process's resident set (they are read from the file again if touched). For
// a loader that copied those bytes elsewhere and will not read them again.
void release_mapped_pages(const void* p, size_t n);

// Asks for transparent huge pages behind the whole pages of [p, p + n) of
// anonymous memory not touched yet (where the system allows them only on
// request). For weights a loader writes once and then streams: a decode
// kernel reading one long run of memory loses bandwidth at every 4 KB page.
void advise_huge_pages(void* p, size_t n);

}  // namespace dhi
