// Tokenizers built from GGUF metadata (`tokenizer.ggml.*`), matching the models'
// original Hugging Face tokenizers: SentencePiece-style BPE by scores with byte
// fallback ("llama") and GPT-2 byte-level BPE by merge rank ("gpt2") with the
// per-model pre-tokenizer regexes (and NFC where the model normalizes). Also the
// streaming detokenizer that only ever hands out valid UTF-8.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.h"
#include "gguf/reader.h"

namespace dhi::tok {

enum class TokenType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct Vocab;  // tokenizer/vocab.h

class Tokenizer {
 public:
  // Errors name the offending key ("tokenizer.ggml.merges[12]: ...").
  static Expected<Tokenizer> from_gguf(const gguf::GgufFile& file);

  // User-defined tokens (e.g. `<think>`, whitespace runs in MPT) are always
  // matched in `text`, as the Hugging Face tokenizers do for their added tokens.
  // Control tokens (`<|im_start|>`, `<s>`...) are matched only with
  // parse_special; otherwise their text is tokenized as plain text. Matching is
  // leftmost-longest. add_bos prepends bos() when the vocab has one.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const;

  // The token's bytes as they appear in decoded text (may be a partial UTF-8
  // sequence): SentencePiece '▁' → ' ', <0xAB> → that byte, byte-level BPE
  // characters mapped back to bytes, control/user-defined tokens → their text.
  // An out-of-range id gives the empty string.
  std::string token_to_piece(int32_t id) const;
  // Concatenated pieces. For SentencePiece with add_space_prefix, the one
  // leading space of the first token (after a leading BOS) is dropped, so that
  // decode(encode(t, false, false)) == t and decode(encode(t, true, false)) ==
  // "<s>" + t. SentencePiece exceptions: a literal '▁' in t comes back as ' ',
  // and a t that starts with a parsed special token followed by a space loses
  // that space. Out-of-range ids are skipped.
  std::string decode(std::span<const int32_t> ids) const;

  int32_t n_vocab() const;
  int32_t bos() const;  // -1 when the vocab has none (e.g. Qwen2)
  int32_t eos() const;  // -1 when the vocab has none
  std::optional<int32_t> eot() const;
  bool add_bos() const;  // tokenizer.ggml.add_bos_token, else SPM: true, BPE: false
  bool add_space_prefix() const;  // SPM only; tokenizer.ggml.add_space_prefix, default true
  bool is_eog(int32_t id) const;  // eos, eot and end-of-turn control tokens
  bool is_special(int32_t id) const;  // control or user-defined
  TokenType token_type(int32_t id) const;  // Unknown for an out-of-range id
  std::optional<int32_t> find_token(std::string_view text) const;  // exact vocab entry
  const std::string& token_text(int32_t id) const;  // raw vocab text; empty if out of range
  std::string_view model_name() const;  // "llama" or "gpt2"
  std::string_view pre_name() const;    // tokenizer.ggml.pre ("default" when absent)

 private:
  explicit Tokenizer(std::shared_ptr<const Vocab> vocab) : vocab_(std::move(vocab)) {}
  // The SentencePiece prefix space that decoding drops, for the token at
  // `index` of a sequence whose first token is `first`.
  bool drops_leading_space(int32_t id, size_t index, int32_t first) const;
  // Immutable after loading, so copies of a Tokenizer share it across threads.
  std::shared_ptr<const Vocab> vocab_;

  friend class StreamDecoder;
};

// Streaming detokenizer: push ids one by one; each call returns only complete
// UTF-8 and holds back an incomplete trailing sequence. Bytes that can never
// form a valid sequence come out as U+FFFD, so the output is always valid UTF-8.
// By default the ids continue a text (generated tokens after a prompt), so a
// SentencePiece first token keeps its leading space (" there"). With
// at_text_start = true the output equals decode() of the same ids (the prefix
// space of the first token is dropped).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool at_text_start = false);
  std::string push(int32_t id);
  // Whatever is still held back, with an incomplete sequence as U+FFFD.
  std::string flush();

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;
  size_t n_pushed_ = 0;
  int32_t first_ = -1;
  bool at_text_start_;
};

// UTF-8 helpers shared with the tests.
// True when `s` is entirely well-formed UTF-8 (no overlongs, surrogates or
// code points past U+10FFFF).
bool is_valid_utf8(std::string_view s);
// Appends to `out` the valid prefix of `in` with every maximal ill-formed
// subpart replaced by U+FFFD; an incomplete sequence at the very end is left
// unconsumed unless `final`. Returns the number of bytes of `in` consumed.
size_t sanitize_utf8(std::string_view in, bool final, std::string& out);

}  // namespace dhi::tok
