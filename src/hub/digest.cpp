#include "hub/digest.h"

#include <openssl/evp.h>

#include <cctype>

namespace dhi::hub {

struct Digest::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Digest::Digest(DigestKind kind, uint64_t total_size) : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx_->md, kind == DigestKind::Sha256 ? EVP_sha256() : EVP_sha1(), nullptr);
  if (kind == DigestKind::GitBlobSha1) {
    std::string header = "blob " + std::to_string(total_size);
    EVP_DigestUpdate(ctx_->md, header.data(), header.size() + 1);  // with the '\0'
  }
}

Digest::~Digest() = default;

void Digest::update(const void* data, size_t size) { EVP_DigestUpdate(ctx_->md, data, size); }

std::string Digest::hex() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &n);
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (unsigned int i = 0; i < n; ++i) {
    s += digits[out[i] >> 4];
    s += digits[out[i] & 15];
  }
  return s;
}

bool is_hex(const std::string& s, size_t length) {
  if (s.size() != length) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c))) return false;
  return true;
}

Expected<DigestKind> digest_kind_of(const std::string& etag) {
  if (is_hex(etag, 64)) return DigestKind::Sha256;
  if (is_hex(etag, 40)) return DigestKind::GitBlobSha1;
  return make_error("the server published no usable hash for the file (etag '", etag,
                    "'); refusing a download that cannot be verified");
}

}  // namespace dhi::hub
