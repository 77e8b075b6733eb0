// Tokenizer: loads the vocabulary from GGUF metadata (validating every array
// against the token count), splits text on special tokens, dispatches the runs
// in between to the SentencePiece or byte-level BPE encoder, and detokenizes.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <limits>

#include "tokenizer/vocab.h"

namespace dhi::tok {

namespace {

using gguf::ValueType;

// Texts of end-of-turn tokens, in the order eot() prefers them when the file
// has no tokenizer.ggml.eot_token_id.
constexpr std::string_view kEotTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                          "<|EOT|>", "<EOT>"};
// Further end-of-generation texts (end of text, end of message).
constexpr std::string_view kEogTexts[] = {"<|endoftext|>", "<|end_of_text|>", "<|eom_id|>",
                                          "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"};

// A special token id from `key`: `def` when absent, -1 when it is out of range
// (files write "none" as 0xFFFFFFFF or as a signed -1).
Expected<int32_t> read_id(const gguf::GgufFile& f, std::string_view key, int32_t def, size_t n) {
  const gguf::Value* value = f.find(key);
  if (value == nullptr) return def;
  if (const auto u = value->as_uint()) return *u < n ? static_cast<int32_t>(*u) : -1;
  if (value->as_int()) return -1;  // negative
  return make_error(key, ": expected an integer token id, got ", gguf::value_type_name(value->type));
}

// "<0xAB>" → 0xAB, or -1.
int parse_byte_token(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  int v = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = t[i];
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return -1;
    }
    v = v * 16 + d;
  }
  return v;
}

std::string make_piece(const Vocab& v, size_t id) {
  const std::string& text = v.texts[id];
  const TokenType type = v.types[id];
  if (type == TokenType::Control || type == TokenType::Unknown) return text;
  if (type == TokenType::Byte) {
    const int b = parse_byte_token(text);
    return b >= 0 ? std::string(1, static_cast<char>(b)) : text;
  }
  if (v.kind == ModelKind::Spm) {
    std::string out;
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
        out += ' ';
        i += 3;
      } else {
        out += text[i++];
      }
    }
    return out;
  }
  // Byte-level BPE: added (user-defined, unused) tokens keep their raw text;
  // regular tokens are byte-mapped characters.
  if (type != TokenType::Normal) return text;
  std::string out;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t n = utf8_next(text, i, cp);
    const int b = n > 1 || cp < 0x80 ? byte_from_unicode(cp) : -1;
    if (b >= 0) {
      out += static_cast<char>(b);
    } else {
      out.append(text, i, n);  // not a mapped character: keep it verbatim
    }
    i += n;
  }
  return out;
}

Status load_arrays(const gguf::GgufFile& f, Vocab& v) {
  DHI_ASSIGN_OR_RETURN(const gguf::Array* tokens, f.get_array("tokenizer.ggml.tokens", ValueType::STRING));
  const size_t n = tokens->items.size();
  if (n == 0) return make_error("tokenizer.ggml.tokens: the vocabulary is empty");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return make_error("tokenizer.ggml.tokens: ", static_cast<uint64_t>(n), " tokens exceed the int32 id range");
  }
  v.texts.reserve(n);
  for (const auto& item : tokens->items) {
    const std::string* s = item.as_string();
    if (s == nullptr) return make_error("tokenizer.ggml.tokens[", static_cast<uint64_t>(v.texts.size()), "]: not a string");
    v.texts.push_back(*s);
  }

  v.scores.assign(n, 0.0f);
  if (f.find("tokenizer.ggml.scores") != nullptr || v.kind == ModelKind::Spm) {
    DHI_ASSIGN_OR_RETURN(const gguf::Array* scores, f.get_array("tokenizer.ggml.scores", ValueType::FLOAT32));
    if (scores->items.size() != n) {
      return make_error("tokenizer.ggml.scores: expected ", static_cast<uint64_t>(n), " entries (one per token), got ",
                        static_cast<uint64_t>(scores->items.size()));
    }
    for (size_t i = 0; i < n; ++i) v.scores[i] = static_cast<float>(scores->items[i].as_float().value_or(0.0));
  }

  v.types.assign(n, TokenType::Normal);
  if (f.find("tokenizer.ggml.token_type") != nullptr) {
    DHI_ASSIGN_OR_RETURN(const gguf::Array* types, f.get_array("tokenizer.ggml.token_type", ValueType::INT32));
    if (types->items.size() != n) {
      return make_error("tokenizer.ggml.token_type: expected ", static_cast<uint64_t>(n),
                        " entries (one per token), got ", static_cast<uint64_t>(types->items.size()));
    }
    for (size_t i = 0; i < n; ++i) {
      const int64_t t = types->items[i].as_int().value_or(-1);
      if (t < 0 || t > 6) {
        return make_error("tokenizer.ggml.token_type[", static_cast<uint64_t>(i), "]: expected 0..6, got ", t);
      }
      // 0 is "undefined" in some writers; treat it as a normal token.
      v.types[i] = t == 0 ? TokenType::Normal : static_cast<TokenType>(t);
    }
  }

  v.text_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) v.text_to_id.emplace(v.texts[i], static_cast<int32_t>(i));
  return {};
}

Status load_merges(const gguf::GgufFile& f, Vocab& v) {
  DHI_ASSIGN_OR_RETURN(const gguf::Array* merges, f.get_array("tokenizer.ggml.merges", ValueType::STRING));
  v.merges.reserve(merges->items.size());
  for (size_t i = 0; i < merges->items.size(); ++i) {
    const std::string* m = merges->items[i].as_string();
    // The separator is the first space after the first byte ("Ġ Ġ" has
    // byte-mapped spaces only; a raw " " can only be a left part of length 1).
    const size_t sp = m == nullptr ? std::string::npos : m->find(' ', 1);
    if (sp == std::string::npos) {
      return make_error("tokenizer.ggml.merges[", static_cast<uint64_t>(i), "]: expected \"left right\", got \"",
                        m == nullptr ? std::string() : *m, "\"");
    }
    const std::string_view sv(*m);
    const int32_t left = v.lookup(sv.substr(0, sp));
    const int32_t right = v.lookup(sv.substr(sp + 1));
    if (left < 0 || right < 0) continue;  // cannot apply to vocab symbols
    std::string joined(sv.substr(0, sp));
    joined.append(sv.substr(sp + 1));
    const int32_t merged = v.lookup(joined);
    if (merged < 0) continue;  // would produce a piece outside the vocab
    if (i > static_cast<size_t>(std::numeric_limits<int32_t>::max())) break;
    v.merges.emplace((static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right),
                     MergeInfo{static_cast<int32_t>(i), merged});
  }
  return {};
}

}  // namespace

void SpecialMatcher::add(std::string_view text, int32_t id, bool control) {
  if (text.empty()) return;
  uint32_t node = 0;
  for (char c : text) {
    const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(c);
    auto it = edges_.find(key);
    if (it == edges_.end()) it = edges_.emplace(key, nodes_++).first;
    node = it->second;
  }
  terminals_.emplace(node, Terminal{id, control});  // the first token with a text wins
}

size_t SpecialMatcher::match(std::string_view text, size_t pos, bool allow_control, int32_t& id) const {
  uint32_t node = 0;
  size_t best = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    auto it = edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(text[i]));
    if (it == edges_.end()) break;
    node = it->second;
    auto t = terminals_.find(node);
    if (t != terminals_.end() && (allow_control || !t->second.control)) {
      best = i + 1 - pos;
      id = t->second.id;
    }
  }
  return best;
}

Expected<Tokenizer> Tokenizer::from_gguf(const gguf::GgufFile& f) {
  auto v = std::make_shared<Vocab>();
  DHI_ASSIGN_OR_RETURN(v->model_name, f.get_string("tokenizer.ggml.model"));
  if (v->model_name == "llama") {
    v->kind = ModelKind::Spm;
  } else if (v->model_name == "gpt2") {
    v->kind = ModelKind::Bpe;
  } else {
    return make_error("tokenizer.ggml.model: unsupported tokenizer \"", v->model_name,
                      "\"; supported: llama (SentencePiece), gpt2 (byte-level BPE)");
  }
  DHI_ASSIGN_OR_RETURN(v->pre_name, f.get_string_or("tokenizer.ggml.pre", "default"));
  DHI_TRY(load_arrays(f, *v));
  const size_t n = v->texts.size();
  const bool spm = v->kind == ModelKind::Spm;

  // SentencePiece vocabs conventionally put <unk>, <s>, </s> at 0, 1, 2.
  DHI_ASSIGN_OR_RETURN(v->bos, read_id(f, "tokenizer.ggml.bos_token_id", spm && n > 1 ? 1 : -1, n));
  DHI_ASSIGN_OR_RETURN(v->eos, read_id(f, "tokenizer.ggml.eos_token_id", spm && n > 2 ? 2 : -1, n));
  DHI_ASSIGN_OR_RETURN(v->unk, read_id(f, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, n));
  DHI_ASSIGN_OR_RETURN(v->eot, read_id(f, "tokenizer.ggml.eot_token_id", -1, n));
  DHI_ASSIGN_OR_RETURN(v->add_bos, f.get_bool_or("tokenizer.ggml.add_bos_token", spm));
  DHI_ASSIGN_OR_RETURN(bool space_prefix, f.get_bool_or("tokenizer.ggml.add_space_prefix", true));
  v->add_space_prefix = spm && space_prefix;

  v->byte_tokens.fill(-1);
  if (spm) {
    for (size_t i = 0; i < n; ++i) {
      if (v->types[i] != TokenType::Byte) continue;
      const int b = parse_byte_token(v->texts[i]);
      if (b >= 0 && v->byte_tokens[static_cast<size_t>(b)] < 0) v->byte_tokens[static_cast<size_t>(b)] = static_cast<int32_t>(i);
    }
  } else {
    DHI_TRY(load_merges(f, *v));
    DHI_ASSIGN_OR_RETURN(v->pre, make_pre_tokenizer(v->pre_name));
  }

  for (size_t i = 0; i < n; ++i) {
    const TokenType t = v->types[i];
    if (t == TokenType::Control || t == TokenType::UserDefined) {
      v->specials.add(v->texts[i], static_cast<int32_t>(i), t == TokenType::Control);
    }
  }

  v->pieces.reserve(n);
  for (size_t i = 0; i < n; ++i) v->pieces.push_back(make_piece(*v, i));

  auto special_id = [&](std::string_view text) -> int32_t {
    const int32_t id = v->lookup(text);
    if (id < 0) return -1;
    const TokenType t = v->types[static_cast<size_t>(id)];
    return t == TokenType::Control || t == TokenType::UserDefined ? id : -1;
  };
  if (v->eot < 0) {
    for (std::string_view t : kEotTexts) {
      if ((v->eot = special_id(t)) >= 0) break;
    }
  }
  for (int32_t id : {v->eos, v->eot}) {
    if (id >= 0) v->eog_ids.push_back(id);
  }
  for (std::string_view t : kEotTexts) v->eog_ids.push_back(special_id(t));
  for (std::string_view t : kEogTexts) v->eog_ids.push_back(special_id(t));
  std::erase(v->eog_ids, -1);
  std::sort(v->eog_ids.begin(), v->eog_ids.end());
  v->eog_ids.erase(std::unique(v->eog_ids.begin(), v->eog_ids.end()), v->eog_ids.end());

  return Tokenizer(std::move(v));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
  const Vocab& v = *vocab_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos && v.bos >= 0) out.push_back(v.bos);

  auto encode_run = [&](size_t begin, size_t end) {
    if (end <= begin) return;
    const std::string_view run = text.substr(begin, end - begin);
    if (v.kind == ModelKind::Spm) {
      // The prefix space marks the start of the text only, not every run
      // after a special token.
      spm_encode(v, run, v.add_space_prefix && begin == 0, out);
    } else if (v.pre.nfc) {
      bpe_encode(v, nfc(run), out);
    } else {
      bpe_encode(v, run, out);
    }
  };

  size_t run_start = 0;
  if (!v.specials.empty()) {
    size_t pos = 0;
    while (pos < text.size()) {
      int32_t id = -1;
      const size_t len = v.specials.match(text, pos, parse_special, id);
      if (len == 0) {
        ++pos;
        continue;
      }
      encode_run(run_start, pos);
      out.push_back(id);
      pos += len;
      run_start = pos;
    }
  }
  encode_run(run_start, text.size());
  return out;
}

bool Tokenizer::drops_leading_space(int32_t id, size_t index, int32_t first) const {
  const Vocab& v = *vocab_;
  if (!v.add_space_prefix || !v.valid(id)) return false;
  if (!(index == 0 || (index == 1 && v.bos >= 0 && first == v.bos))) return false;
  const TokenType t = v.types[static_cast<size_t>(id)];
  if (t == TokenType::Control || t == TokenType::Unknown || id == v.bos) return false;
  const std::string& p = v.pieces[static_cast<size_t>(id)];
  return !p.empty() && p[0] == ' ';
}

std::string Tokenizer::token_to_piece(int32_t id) const {
  return vocab_->valid(id) ? vocab_->pieces[static_cast<size_t>(id)] : std::string();
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  const int32_t first = ids.empty() ? -1 : ids[0];
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!vocab_->valid(ids[i])) continue;
    const std::string& p = vocab_->pieces[static_cast<size_t>(ids[i])];
    out.append(p, drops_leading_space(ids[i], i, first) ? 1 : 0);
  }
  return out;
}

int32_t Tokenizer::n_vocab() const { return static_cast<int32_t>(vocab_->texts.size()); }
int32_t Tokenizer::bos() const { return vocab_->bos; }
int32_t Tokenizer::eos() const { return vocab_->eos; }
std::optional<int32_t> Tokenizer::eot() const {
  return vocab_->eot >= 0 ? std::optional<int32_t>(vocab_->eot) : std::nullopt;
}
bool Tokenizer::add_bos() const { return vocab_->add_bos; }
bool Tokenizer::add_space_prefix() const { return vocab_->add_space_prefix; }

bool Tokenizer::is_eog(int32_t id) const {
  return std::binary_search(vocab_->eog_ids.begin(), vocab_->eog_ids.end(), id);
}

bool Tokenizer::is_special(int32_t id) const {
  const TokenType t = token_type(id);
  return vocab_->valid(id) && (t == TokenType::Control || t == TokenType::UserDefined);
}

TokenType Tokenizer::token_type(int32_t id) const {
  return vocab_->valid(id) ? vocab_->types[static_cast<size_t>(id)] : TokenType::Unknown;
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  const int32_t id = vocab_->lookup(text);
  return id >= 0 ? std::optional<int32_t>(id) : std::nullopt;
}

const std::string& Tokenizer::token_text(int32_t id) const {
  static const std::string kEmpty;
  return vocab_->valid(id) ? vocab_->texts[static_cast<size_t>(id)] : kEmpty;
}

std::string_view Tokenizer::model_name() const { return vocab_->model_name; }
std::string_view Tokenizer::pre_name() const { return vocab_->pre_name; }

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool at_text_start)
    : tokenizer_(&tokenizer), at_text_start_(at_text_start) {}

std::string StreamDecoder::push(int32_t id) {
  const size_t index = n_pushed_++;
  if (index == 0) first_ = id;
  const Vocab& v = *tokenizer_->vocab_;
  if (!v.valid(id)) return {};
  const std::string& p = v.pieces[static_cast<size_t>(id)];
  const bool drop = at_text_start_ && tokenizer_->drops_leading_space(id, index, first_);
  pending_.append(p, drop ? 1 : 0);
  std::string out;
  const size_t used = sanitize_utf8(pending_, false, out);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  sanitize_utf8(pending_, true, out);
  pending_.clear();
  return out;
}

}  // namespace dhi::tok
