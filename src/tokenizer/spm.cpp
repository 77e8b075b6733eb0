// SentencePiece BPE encoding as used for Llama-family vocabs: spaces become
// '▁' (plus one leading '▁' with add_space_prefix), the text starts as single
// characters, and the adjacent pair whose concatenation is the vocab piece with
// the highest score is merged until no pair is in the vocab (ties: leftmost
// first). Characters without a piece fall back to their <0xXX> byte tokens.
#include <queue>

#include "tokenizer/vocab.h"

namespace dhi::tok {

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 '▁'

struct Symbol {
  uint32_t start;
  uint32_t len;  // 0 once merged into its left neighbour
  int32_t prev;
  int32_t next;
};

struct Bigram {
  float score;
  int32_t left;
  int32_t right;
  uint32_t len;  // merged length, to detect pairs made stale by other merges
};

struct BigramLess {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

// Pieces a merge may produce and a symbol may become: SentencePiece never
// emits control, unknown, unused or byte pieces from text.
bool usable(const Vocab& v, int32_t id) {
  const TokenType t = v.types[static_cast<size_t>(id)];
  return t == TokenType::Normal || t == TokenType::UserDefined;
}

}  // namespace

void spm_encode(const Vocab& v, std::string_view text, bool add_prefix, std::vector<int32_t>& out) {
  std::string s;
  s.reserve(text.size() + 16);
  if (add_prefix) s += kSpace;
  for (char c : text) {
    if (c == ' ') {
      s += kSpace;
    } else {
      s += c;
    }
  }
  if (s.empty()) return;

  std::vector<Symbol> sym;
  sym.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    const size_t n = utf8_next(s, i, cp);
    const auto idx = static_cast<int32_t>(sym.size());
    sym.push_back(Symbol{static_cast<uint32_t>(i), static_cast<uint32_t>(n), idx - 1, idx + 1});
    i += n;
  }
  sym.back().next = -1;

  std::priority_queue<Bigram, std::vector<Bigram>, BigramLess> queue;
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const Symbol& a = sym[static_cast<size_t>(l)];
    const Symbol& b = sym[static_cast<size_t>(r)];
    const uint32_t len = a.len + b.len;
    const int32_t id = v.lookup(std::string_view(s).substr(a.start, len));
    if (id < 0 || !usable(v, id)) return;
    queue.push(Bigram{v.scores[static_cast<size_t>(id)], l, r, len});
  };
  for (size_t i = 1; i < sym.size(); ++i) try_pair(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

  while (!queue.empty()) {
    const Bigram bg = queue.top();
    queue.pop();
    Symbol& a = sym[static_cast<size_t>(bg.left)];
    Symbol& b = sym[static_cast<size_t>(bg.right)];
    if (a.len == 0 || b.len == 0 || a.next != bg.right || a.len + b.len != bg.len) continue;
    a.len += b.len;
    b.len = 0;
    a.next = b.next;
    if (b.next >= 0) sym[static_cast<size_t>(b.next)].prev = bg.left;
    try_pair(a.prev, bg.left);
    try_pair(bg.left, a.next);
  }

  for (int32_t i = 0; i >= 0; i = sym[static_cast<size_t>(i)].next) {
    const Symbol& x = sym[static_cast<size_t>(i)];
    const std::string_view piece = std::string_view(s).substr(x.start, x.len);
    const int32_t id = v.lookup(piece);
    if (id >= 0 && usable(v, id)) {
      out.push_back(id);
      continue;
    }
    // Byte fallback; without byte tokens for all its bytes the character is
    // one unknown token, as in SentencePiece without byte_fallback.
    bool have_bytes = true;
    for (char c : piece) have_bytes = have_bytes && v.byte_tokens[static_cast<uint8_t>(c)] >= 0;
    if (have_bytes) {
      for (char c : piece) out.push_back(v.byte_tokens[static_cast<uint8_t>(c)]);
    } else if (v.unk >= 0) {
      out.push_back(v.unk);
    }
  }
}

}  // namespace dhi::tok
