// Pre-tokenizers for byte-level BPE: each `tokenizer.ggml.pre` name maps to the
// sequence of regex splits of that model's Hugging Face tokenizer.json
// (pre_tokenizer: Split / Digits / Punctuation / ByteLevel), run with PCRE2 in
// UTF + UCP mode so \p{L}, \p{N}, \s follow Unicode properties.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>

#include "tokenizer/vocab.h"

namespace dhi::tok {

namespace {

// GPT-2 (also MPT/GPT-NeoX, StarCoder, Refact, Falcon after its punctuation split).
constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Llama 3 (tiktoken cl100k style): numbers in groups of up to three digits.
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2: as Llama 3 but every digit alone.
constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// DeepSeek: CJK ideographs, U+0800..U+4E00 and Hangul runs.
constexpr const char* kDeepseekCjk = R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";
// DeepSeek LLM: runs of cased letters (Latin, Greek, Cyrillic, Armenian, ...).
constexpr const char* kDeepseekLetters =
    R"(\s?[\x{41}-\x{5A}\x{61}-\x{7A}\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF})"
    R"(\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386})"
    R"(\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556})"
    R"(\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF})"
    R"(\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D})"
    R"(\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D})"
    R"(\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3})"
    R"(\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107})"
    R"(\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D})"
    R"(\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184})"
    R"(\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D})"
    R"(\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF})"
    R"(\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F})"
    R"(\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF})"
    R"(\x{1E900}-\x{1E943}]+)";
// DeepSeek LLM: ASCII and full-width punctuation, curly quotes, CJK punctuation.
constexpr const char* kDeepseekPunct =
    R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)";
// Hugging Face's Punctuation pre-tokenizer: Unicode P plus the ASCII
// punctuation that Unicode files under symbols ($+<=>^`|~), runs kept together.
constexpr const char* kPunctuationRuns = R"([\p{P}$+<=>^`|~]+)";

struct StepDef {
  const char* pattern;
  bool on_mapped;
};

struct PreDef {
  const char* name;
  std::vector<StepDef> steps;
  bool ignore_merges;
  bool nfc;
};

const std::vector<PreDef>& pre_defs() {
  static const std::vector<PreDef> defs = {
      {"default", {{kGpt2, false}}, false, false},
      {"gpt-2", {{kGpt2, false}}, false, false},
      {"mpt", {{kGpt2, false}}, false, true},
      {"llama-bpe", {{kLlama3, false}}, true, false},
      {"qwen2", {{kQwen2, false}}, false, true},
      {"deepseek-r1-qwen", {{kQwen2, false}}, false, true},
      // Digits(individual_digits) then the GPT-2 regex.
      {"starcoder", {{R"(\p{N})", false}, {kGpt2, false}}, false, false},
      {"refact", {{R"(\p{N})", false}, {kGpt2, false}}, false, false},
      {"deepseek-llm",
       {{R"([\r\n])", false},
        {kDeepseekLetters, false},
        {kDeepseekPunct, false},
        {R"(\s+$)", false},
        {kDeepseekCjk, false},
        {R"(\p{N})", false}},
       false, false},
      {"deepseek-coder",
       {{R"([\r\n])", false},
        {R"(\s?\p{L}+)", false},
        {R"(\s?\p{P}+)", false},
        {kDeepseekCjk, false},
        {R"(\p{N})", false}},
       false, false},
      // Punctuation runs, the GPT-2 regex inside ByteLevel, then Digits (runs)
      // and groups of three ASCII digits, both on the byte-mapped text.
      {"falcon",
       {{kPunctuationRuns, false},
        {kGpt2, false},
        {R"(\p{N}+)", true},
        {R"([0-9][0-9][0-9])", true}},
       false, false},
  };
  return defs;
}

}  // namespace

Expected<Regex> Regex::compile(std::string_view pattern) {
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  // MATCH_INVALID_UTF: untrusted text may hold invalid UTF-8; such bytes just
  // never match and end up in gaps (the byte-level BPE encodes any byte).
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err,
                                   &err_offset, nullptr);
  if (code == nullptr) {
    std::array<PCRE2_UCHAR, 256> msg{};
    pcre2_get_error_message(err, msg.data(), msg.size());
    return make_error("pre-tokenizer regex: ", reinterpret_cast<const char*>(msg.data()),
                      " at offset ", static_cast<uint64_t>(err_offset));
  }
  // JIT is only an optimization; the interpreter is used if it is unavailable.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return Regex(code);
}

Regex& Regex::operator=(Regex&& o) noexcept {
  if (this != &o) {
    if (code_ != nullptr) pcre2_code_free(static_cast<pcre2_code*>(code_));
    code_ = o.code_;
    o.code_ = nullptr;
  }
  return *this;
}

Regex::~Regex() {
  if (code_ != nullptr) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

void Regex::split(std::string_view text, std::vector<std::pair<size_t, size_t>>& pieces) const {
  auto* code = static_cast<pcre2_code*>(code_);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  if (md == nullptr) return;  // out of memory: leave the pieces unsplit
  std::vector<std::pair<size_t, size_t>> out;
  out.reserve(pieces.size() * 2);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  for (const auto& [begin, len] : pieces) {
    const size_t end = begin + len;
    size_t pos = begin;
    size_t search = begin;
    while (search < end) {
      // The subject is the piece alone, so lookarounds and $ see its edges.
      const int rc = pcre2_match(code, subject + begin, len, search - begin, PCRE2_NOTEMPTY, md,
                                 nullptr);
      if (rc < 0) break;  // no match (or a match error): the rest is one gap
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t ms = begin + ov[0];
      const size_t me = begin + ov[1];
      if (me <= ms) break;
      if (ms > pos) out.emplace_back(pos, ms - pos);
      out.emplace_back(ms, me - ms);
      pos = search = me;
    }
    if (pos < end) out.emplace_back(pos, end - pos);
  }
  pcre2_match_data_free(md);
  pieces = std::move(out);
}

std::string known_pre_names() {
  std::string s;
  for (const auto& d : pre_defs()) {
    if (!s.empty()) s += ", ";
    s += d.name;
  }
  return s;
}

Expected<PreTokenizer> make_pre_tokenizer(std::string_view name) {
  for (const auto& d : pre_defs()) {
    if (name != d.name) continue;
    PreTokenizer pre;
    pre.ignore_merges = d.ignore_merges;
    pre.nfc = d.nfc;
    for (const auto& s : d.steps) {
      DHI_ASSIGN_OR_RETURN(Regex re, Regex::compile(s.pattern));
      pre.steps.push_back(PreStep{std::move(re), s.on_mapped});
    }
    return pre;
  }
  return make_error("tokenizer.ggml.pre: unknown pre-tokenizer \"", name, "\"; known: ",
                    known_pre_names());
}

}  // namespace dhi::tok
