// UTF-8 decoding and validation (RFC 3629: no overlongs, surrogates or code
// points past U+10FFFF) and the GPT-2 byte-level byte ↔ character mapping.
#include <array>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace dhi::tok {

namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// Number of continuation bytes after lead byte `b` and the allowed range of the
// first continuation byte (narrower after E0, ED, F0, F4); -1 for a byte that
// can never start a sequence.
int lead_info(uint8_t b, uint8_t& lo, uint8_t& hi) {
  lo = 0x80;
  hi = 0xBF;
  if (b < 0x80) return 0;
  if (b >= 0xC2 && b <= 0xDF) return 1;
  if (b == 0xE0) { lo = 0xA0; return 2; }
  if (b == 0xED) { hi = 0x9F; return 2; }
  if (b >= 0xE1 && b <= 0xEF) return 2;
  if (b == 0xF0) { lo = 0x90; return 3; }
  if (b == 0xF4) { hi = 0x8F; return 3; }
  if (b >= 0xF1 && b <= 0xF3) return 3;
  return -1;
}

// Length of the well-formed sequence at s[i]: > 0 when complete; otherwise
// -k where k is the length of the maximal ill-formed subpart, and `truncated`
// tells whether it only ran into the end of `s`.
int sequence_at(std::string_view s, size_t i, bool& truncated) {
  truncated = false;
  uint8_t lo, hi;
  const int need = lead_info(static_cast<uint8_t>(s[i]), lo, hi);
  if (need < 0) return -1;
  for (int j = 1; j <= need; ++j) {
    if (i + j >= s.size()) {
      truncated = true;
      return -j;
    }
    const auto c = static_cast<uint8_t>(s[i + j]);
    if (c < (j == 1 ? lo : 0x80) || c > (j == 1 ? hi : 0xBF)) return -j;
  }
  return need + 1;
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the
// other 68 bytes to U+0100.. in byte order, so every byte is a visible char.
struct ByteMap {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 512> from_cp{};
  ByteMap() {
    from_cp.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_cp[b] = printable ? static_cast<uint32_t>(b) : next++;
      from_cp[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

}  // namespace

uint32_t byte_to_unicode(uint8_t b) { return byte_map().to_cp[b]; }

int byte_from_unicode(uint32_t cp) { return cp < 512 ? byte_map().from_cp[cp] : -1; }

size_t utf8_next(std::string_view s, size_t i, uint32_t& cp) {
  bool truncated;
  const int len = sequence_at(s, i, truncated);
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (len <= 0) {
    cp = b0;
    return 1;
  }
  static constexpr uint8_t kLeadMask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  cp = b0 & kLeadMask[len];
  for (int j = 1; j < len; ++j) cp = (cp << 6) | (static_cast<uint8_t>(s[i + j]) & 0x3F);
  return static_cast<size_t>(len);
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    bool truncated;
    const int len = sequence_at(s, i, truncated);
    if (len <= 0) return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

size_t sanitize_utf8(std::string_view in, bool final, std::string& out) {
  size_t i = 0;
  while (i < in.size()) {
    bool truncated;
    const int len = sequence_at(in, i, truncated);
    if (len > 0) {
      out.append(in.substr(i, static_cast<size_t>(len)));
      i += static_cast<size_t>(len);
      continue;
    }
    // An incomplete sequence at the end may still be completed by later bytes.
    if (truncated && !final) return i;
    out += kReplacement;
    i += static_cast<size_t>(-len);
  }
  return i;
}

}  // namespace dhi::tok
