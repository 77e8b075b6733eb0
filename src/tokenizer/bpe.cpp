// Byte-level BPE encoding (GPT-2 family): the pre-tokenizer splits the text,
// each piece's bytes are mapped to printable characters, and within a piece the
// adjacent pair with the lowest merge rank is merged until none is left (ties:
// leftmost first). A linked list plus a lazily invalidated heap keeps this
// O(n log n) per piece.
#include <queue>

#include "tokenizer/vocab.h"

namespace dhi::tok {

namespace {

using Span = std::pair<size_t, size_t>;

struct Symbol {
  int32_t id;  // -1: character not in the vocab
  int32_t prev;
  int32_t next;
  bool alive;
};

struct Candidate {
  int32_t rank;
  int32_t left;
  int32_t right;
  int32_t left_id;
  int32_t right_id;
  int32_t merged;
};

struct CandidateGreater {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

void merge_piece(const Vocab& v, std::string_view piece, std::vector<int32_t>& out) {
  if (piece.empty()) return;
  if (v.pre.ignore_merges) {
    const int32_t whole = v.lookup(piece);
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }
  std::vector<Symbol> sym;
  sym.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    uint32_t cp;
    const size_t n = utf8_next(piece, i, cp);
    const auto idx = static_cast<int32_t>(sym.size());
    sym.push_back(Symbol{v.lookup(piece.substr(i, n)), idx - 1, idx + 1, true});
    i += n;
  }
  sym.back().next = -1;

  std::priority_queue<Candidate, std::vector<Candidate>, CandidateGreater> queue;
  auto try_pair = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const int32_t a = sym[static_cast<size_t>(l)].id;
    const int32_t b = sym[static_cast<size_t>(r)].id;
    if (a < 0 || b < 0) return;
    auto it = v.merges.find((static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b));
    if (it == v.merges.end()) return;
    queue.push(Candidate{it->second.rank, l, r, a, b, it->second.merged});
  };
  for (size_t i = 1; i < sym.size(); ++i) try_pair(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& a = sym[static_cast<size_t>(c.left)];
    Symbol& b = sym[static_cast<size_t>(c.right)];
    // Stale if either side has changed since the candidate was pushed; the
    // same id at the same start position means the same text.
    if (!a.alive || !b.alive || a.next != c.right || a.id != c.left_id || b.id != c.right_id) continue;
    a.id = c.merged;
    b.alive = false;
    a.next = b.next;
    if (b.next >= 0) sym[static_cast<size_t>(b.next)].prev = c.left;
    try_pair(a.prev, c.left);
    try_pair(c.left, a.next);
  }

  for (int32_t i = 0; i >= 0; i = sym[static_cast<size_t>(i)].next) {
    const int32_t id = sym[static_cast<size_t>(i)].id;
    if (id >= 0) {
      out.push_back(id);
    } else if (v.unk >= 0) {
      out.push_back(v.unk);  // a byte whose character the vocab lacks
    }
  }
}

}  // namespace

void bpe_encode(const Vocab& v, std::string_view text, std::vector<int32_t>& out) {
  if (text.empty()) return;
  std::vector<Span> pieces{{0, text.size()}};
  size_t step = 0;
  for (; step < v.pre.steps.size() && !v.pre.steps[step].on_mapped; ++step) {
    v.pre.steps[step].regex.split(text, pieces);
  }

  // Byte-level mapping of the whole text; `at[i]` is where raw byte i starts.
  std::string mapped;
  mapped.reserve(text.size() * 2);
  std::vector<size_t> at(text.size() + 1);
  for (size_t i = 0; i < text.size(); ++i) {
    at[i] = mapped.size();
    append_utf8(mapped, byte_to_unicode(static_cast<uint8_t>(text[i])));
  }
  at[text.size()] = mapped.size();
  for (auto& [begin, len] : pieces) {
    const size_t end = at[begin + len];
    begin = at[begin];
    len = end - begin;
  }
  for (; step < v.pre.steps.size(); ++step) v.pre.steps[step].regex.split(mapped, pieces);

  for (const auto& [begin, len] : pieces) merge_piece(v, std::string_view(mapped).substr(begin, len), out);
}

}  // namespace dhi::tok
