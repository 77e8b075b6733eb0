// Overflow-checked size arithmetic for values read from untrusted files.
#pragma once

#include <cstdint>
#include <optional>

namespace dhi {

inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

inline std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// Rounds `v` up to a multiple of `align` (a power of two or any nonzero value).
inline std::optional<uint64_t> checked_align_up(uint64_t v, uint64_t align) {
  uint64_t rem = v % align;
  if (rem == 0) return v;
  return checked_add(v, align - rem);
}

}  // namespace dhi
