// Unicode NFC (canonical decomposition, canonical ordering, canonical
// composition; UAX #15) for the tokenizers whose Hugging Face tokenizer.json
// has an NFC normalizer (Qwen2, GPT-NeoX/MPT). Text that is already NFC, by far
// the common case, is returned after a quick scan. Invalid UTF-8 bytes are kept
// as they are and block composition across them.
#include <algorithm>
#include <unordered_map>

#include "tokenizer/vocab.h"

namespace dhi::tok {

namespace {

struct DecompEntry {
  uint32_t cp, first, second, composes;
};
struct CccRange {
  uint32_t first, last, ccc;
};

#include "tokenizer/nfc_tables.inc"

// Hangul syllables (Unicode ch. 3.12) are composed algorithmically.
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;
// Marks an invalid input byte (kept verbatim, a starter that never composes).
constexpr uint32_t kRawByte = 0x80000000u;

uint32_t ccc(uint32_t cp) {
  auto it = std::upper_bound(std::begin(kCcc), std::end(kCcc), cp,
                             [](uint32_t c, const CccRange& r) { return c < r.first; });
  if (it == std::begin(kCcc)) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

const DecompEntry* find_decomp(uint32_t cp) {
  auto it = std::lower_bound(std::begin(kDecomp), std::end(kDecomp), cp,
                             [](const DecompEntry& e, uint32_t c) { return e.cp < c; });
  return it != std::end(kDecomp) && it->cp == cp ? &*it : nullptr;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const DecompEntry* e = find_decomp(cp);
  if (e == nullptr) {
    out.push_back(cp);
    return;
  }
  decompose(e->first, out);  // depth is bounded by the data (at most 4)
  if (e->second != 0) decompose(e->second, out);
}

uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  static const std::unordered_map<uint64_t, uint32_t> pairs = [] {
    std::unordered_map<uint64_t, uint32_t> m;
    for (const auto& e : kDecomp) {
      if (e.composes != 0) m.emplace((static_cast<uint64_t>(e.first) << 32) | e.second, e.cp);
    }
    return m;
  }();
  auto it = pairs.find((static_cast<uint64_t>(a) << 32) | b);
  return it == pairs.end() ? 0 : it->second;
}

}  // namespace

std::string nfc(std::string_view text) {
  // Every code point below U+0300 is unchanged by NFC and never combines with
  // a preceding character, so such text is already normalized.
  bool simple = true;
  for (size_t i = 0; i < text.size() && simple;) {
    uint32_t cp;
    const size_t n = utf8_next(text, i, cp);
    if (n > 1 && cp >= 0x300) simple = false;
    i += n;
  }
  if (simple) return std::string(text);

  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t n = utf8_next(text, i, cp);
    if (n == 1 && cp >= 0x80) {
      cps.push_back(kRawByte | cp);
    } else {
      decompose(cp, cps);
    }
    i += n;
  }
  auto class_of = [](uint32_t cp) { return (cp & kRawByte) != 0 ? 0u : ccc(cp); };
  // Canonical ordering: stable sort of each run of non-starters by class.
  for (size_t i = 0; i < cps.size();) {
    if (class_of(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && class_of(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + static_cast<std::ptrdiff_t>(i), cps.begin() + static_cast<std::ptrdiff_t>(j),
                     [&](uint32_t a, uint32_t b) { return class_of(a) < class_of(b); });
    i = j;
  }
  // Canonical composition: a character joins the last starter unless a
  // character in between blocks it (class 0, or a class >= its own).
  std::vector<uint32_t> out;
  out.reserve(cps.size());
  size_t starter = SIZE_MAX;
  for (uint32_t cp : cps) {
    const uint32_t cc = class_of(cp);
    if (starter != SIZE_MAX && (cp & kRawByte) == 0 && (out[starter] & kRawByte) == 0) {
      const bool adjacent = out.size() - 1 == starter;
      const uint32_t last_cc = class_of(out.back());
      if (adjacent || (last_cc != 0 && last_cc < cc)) {
        const uint32_t c = compose(out[starter], cp);
        if (c != 0) {
          out[starter] = c;
          continue;
        }
      }
    }
    if (cc == 0) starter = out.size();
    out.push_back(cp);
  }
  std::string s;
  s.reserve(text.size());
  for (uint32_t cp : out) {
    if ((cp & kRawByte) != 0) {
      s += static_cast<char>(cp & 0xFF);
    } else {
      append_utf8(s, cp);
    }
  }
  return s;
}

}  // namespace dhi::tok
