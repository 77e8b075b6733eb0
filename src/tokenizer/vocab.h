// Internal: the loaded vocabulary shared by the tokenizer's pieces (SentencePiece
// and byte-level BPE encoders, the pre-tokenizer, special-token matching). Built
// once by Tokenizer::from_gguf and never modified afterwards.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/expected.h"
#include "tokenizer/tokenizer.h"

namespace dhi::tok {

enum class ModelKind { Spm, Bpe };

// One compiled PCRE2 pattern (UTF + UCP); frees itself.
class Regex {
 public:
  static Expected<Regex> compile(std::string_view pattern);
  Regex(Regex&& o) noexcept : code_(o.code_) { o.code_ = nullptr; }
  Regex& operator=(Regex&& o) noexcept;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex();
  // Splits each span of `text` in `pieces` into matches and the gaps between
  // them (the Hugging Face "Isolated" split); spans are (offset, length).
  void split(std::string_view text, std::vector<std::pair<size_t, size_t>>& pieces) const;

 private:
  explicit Regex(void* code) : code_(code) {}
  void* code_ = nullptr;  // pcre2_code_8*
};

// A pre-tokenizer: regex splits applied in order. Steps flagged `on_mapped` run
// after the byte-level mapping (Falcon splits digits of the mapped text, which
// is what makes '½' and '¼' separate there).
struct PreStep {
  Regex regex;
  bool on_mapped = false;
};

struct PreTokenizer {
  std::vector<PreStep> steps;
  // Llama 3: a pre-token that is itself a vocab entry is emitted as is,
  // without running the merges (tokenizer.json "ignore_merges": true).
  bool ignore_merges = false;
  // The tokenizer.json has an NFC normalizer (Qwen2, GPT-NeoX/MPT): runs of
  // text between special tokens are normalized before splitting.
  bool nfc = false;
};

// Names accepted in tokenizer.ggml.pre for byte-level BPE, comma-separated.
std::string known_pre_names();
Expected<PreTokenizer> make_pre_tokenizer(std::string_view name);

// Leftmost-longest matcher over the texts of control and user-defined tokens.
class SpecialMatcher {
 public:
  void add(std::string_view text, int32_t id, bool control);
  // Longest token starting at text[pos]; returns its length (0 if none) and id.
  size_t match(std::string_view text, size_t pos, bool allow_control, int32_t& id) const;
  bool empty() const { return nodes_ == 1; }

 private:
  struct Terminal {
    int32_t id;
    bool control;
  };
  // Byte trie as one hash map keyed by (node << 8 | byte) → child node.
  std::unordered_map<uint64_t, uint32_t> edges_;
  std::unordered_map<uint32_t, Terminal> terminals_;
  uint32_t nodes_ = 1;  // node 0 is the root
};

struct MergeInfo {
  int32_t rank;
  int32_t merged;
};

struct Vocab {
  ModelKind kind = ModelKind::Spm;
  std::string model_name;
  std::string pre_name;
  std::vector<std::string> texts;
  std::vector<float> scores;
  std::vector<TokenType> types;
  std::vector<std::string> pieces;  // decoded bytes of each token
  std::unordered_map<std::string_view, int32_t> text_to_id;  // views into `texts`

  int32_t bos = -1, eos = -1, unk = -1, eot = -1;
  bool add_bos = false;
  bool add_space_prefix = false;
  std::vector<int32_t> eog_ids;

  // SentencePiece: <0xXX> tokens, -1 where absent.
  std::array<int32_t, 256> byte_tokens{};

  // BPE: (left id << 32 | right id) → rank and merged id.
  std::unordered_map<uint64_t, MergeInfo> merges;
  PreTokenizer pre;

  SpecialMatcher specials;

  bool valid(int32_t id) const { return id >= 0 && static_cast<size_t>(id) < texts.size(); }
  int32_t lookup(std::string_view s) const {
    auto it = text_to_id.find(s);
    return it == text_to_id.end() ? -1 : it->second;
  }
};

// Encoders for one run of plain text (special tokens already split off).
void spm_encode(const Vocab& v, std::string_view text, bool add_prefix, std::vector<int32_t>& out);
void bpe_encode(const Vocab& v, std::string_view text, std::vector<int32_t>& out);

// Unicode Normalization Form C (nfc.cpp); invalid UTF-8 bytes pass through.
std::string nfc(std::string_view text);

// GPT-2 byte-level mapping: byte → code point, and back (-1 if not a mapped char).
uint32_t byte_to_unicode(uint8_t b);
int byte_from_unicode(uint32_t cp);
// Decodes one UTF-8 code point at s[i]; returns its length (1 with cp = byte
// for an invalid lead or truncated sequence).
size_t utf8_next(std::string_view s, size_t i, uint32_t& cp);
void append_utf8(std::string& out, uint32_t cp);

}  // namespace dhi::tok
