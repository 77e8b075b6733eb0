// Streaming hashes for download verification, on OpenSSL's EVP API: SHA-256 for
// LFS files (the Hub publishes the sha256 as the file's etag) and the git blob
// SHA-1 for small files kept in git itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/expected.h"

namespace dhi::hub {

enum class DigestKind { Sha256, GitBlobSha1 };

class Digest {
 public:
  // A git blob hash covers "blob <size>\0" before the content, so it needs the size up front.
  Digest(DigestKind kind, uint64_t total_size);
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void update(const void* data, size_t size);
  std::string hex();  // finishes the hash; the object is spent after this

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// The kind of hash an etag is: 64 hex digits are a SHA-256, 40 a git blob SHA-1.
Expected<DigestKind> digest_kind_of(const std::string& etag);
bool is_hex(const std::string& s, size_t length);

}  // namespace dhi::hub
