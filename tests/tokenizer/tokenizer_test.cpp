// Tokenizer tests: the shared GGUF vocab test vectors (ids produced by each
// model's Hugging Face tokenizer), stories260K's golden tokenizations, special
// tokens, end-of-generation ids, streaming detokenization, bad ids and bad
// metadata.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gguf/writer.h"
#include "tokenizer/vocab.h"

namespace dhi::tok {
namespace {

std::string shared_path(const std::string& rel) { return std::string(DHI_SHARED_DIR) + "/" + rel; }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Loaded once per test binary: the 150k-token vocabs take a while under ASan.
const Tokenizer& load_path(const std::string& path) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(path);
  if (it != cache.end()) return *it->second;
  auto file = gguf::GgufFile::open(path);
  if (!file.ok()) ADD_FAILURE() << path << ": " << file.error().message;
  auto tok = Tokenizer::from_gguf(*file);
  if (!tok.ok()) ADD_FAILURE() << path << ": " << tok.error().message;
  return *cache.emplace(path, std::make_unique<Tokenizer>(std::move(tok).value())).first->second;
}

const Tokenizer& vocab(const std::string& name) {
  return load_path(shared_path("tokenizer/ggml-vocab-" + name + ".gguf"));
}

// The .inp format: texts joined by "\n__ggml_vocab_test__\n", the last element
// (after the final separator) is empty and not a test.
std::vector<std::string> read_inputs(const std::string& path) {
  const std::string all = read_file(path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  size_t pos = 0;
  for (size_t hit; (hit = all.find(sep, pos)) != std::string::npos; pos = hit + sep.size()) {
    texts.push_back(all.substr(pos, hit - pos));
  }
  EXPECT_EQ(all.substr(pos), "") << "text after the final separator";
  return texts;
}

// The .out format: one line of space-separated ids per text.
std::vector<std::vector<int32_t>> read_outputs(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<std::vector<int32_t>> out;
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    for (int64_t id; ls >> id;) ids.push_back(static_cast<int32_t>(id));
    out.push_back(std::move(ids));
  }
  return out;
}

// Streams `ids` as a whole text (like decode()).
std::string stream_all(const Tokenizer& tok, const std::vector<int32_t>& ids, bool* all_valid) {
  StreamDecoder dec(tok, /*at_text_start=*/true);
  std::string s;
  *all_valid = true;
  for (int32_t id : ids) {
    const std::string chunk = dec.push(id);
    *all_valid = *all_valid && is_valid_utf8(chunk);
    s += chunk;
  }
  const std::string tail = dec.flush();
  *all_valid = *all_valid && is_valid_utf8(tail);
  return s + tail;
}

class VocabVectors : public testing::TestWithParam<std::string> {};

TEST_P(VocabVectors, MatchesReferenceIdsAndRoundTrips) {
  const std::string name = GetParam();
  const std::string base = shared_path("tokenizer/ggml-vocab-" + name + ".gguf");
  const Tokenizer& tok = vocab(name);
  const auto texts = read_inputs(base + ".inp");
  const auto expected = read_outputs(base + ".out");
  ASSERT_EQ(texts.size(), 46u);  // the README says 47; the files hold 46
  ASSERT_GE(expected.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = tok.encode(texts[i], /*add_bos=*/false, /*parse_special=*/false);
    EXPECT_EQ(ids, expected[i]) << name << " text #" << i << ": \"" << texts[i] << "\"";
    // Decoding gives the text back exactly, SentencePiece included: its one
    // prefix space is dropped again at the start of the sequence.
    const std::string decoded = tok.decode(expected[i]);
    EXPECT_EQ(decoded, texts[i]) << name << " text #" << i;
    bool valid = false;
    EXPECT_EQ(stream_all(tok, expected[i], &valid), decoded) << name << " text #" << i;
    EXPECT_TRUE(valid) << name << " text #" << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AllVocabs, VocabVectors,
                         testing::Values("llama-spm", "phi-3", "gpt-2", "deepseek-coder", "deepseek-llm",
                                         "falcon", "mpt", "refact", "starcoder", "qwen2", "llama-bpe",
                                         "deepseek-r1-qwen"),
                         [](const testing::TestParamInfo<std::string>& info) {
                           std::string s = info.param;
                           for (char& c : s) {
                             if (c == '-') c = '_';
                           }
                           return s;
                         });

TEST(Tokenizer, ModelMetadata) {
  const Tokenizer& spm = vocab("llama-spm");
  EXPECT_EQ(spm.model_name(), "llama");
  EXPECT_EQ(spm.n_vocab(), 32000);
  EXPECT_EQ(spm.bos(), 1);
  EXPECT_EQ(spm.eos(), 2);
  EXPECT_TRUE(spm.add_bos());
  EXPECT_TRUE(spm.add_space_prefix());  // not in the file: SentencePiece default

  const Tokenizer& qwen = vocab("qwen2");
  EXPECT_EQ(qwen.model_name(), "gpt2");
  EXPECT_EQ(qwen.pre_name(), "qwen2");
  EXPECT_EQ(qwen.bos(), -1);  // Qwen2 has no BOS
  EXPECT_FALSE(qwen.add_bos());
  EXPECT_EQ(qwen.encode("hi", true, false), qwen.encode("hi", false, false));

  const Tokenizer& r1 = vocab("deepseek-r1-qwen");
  EXPECT_TRUE(r1.add_bos());
  EXPECT_EQ(r1.bos(), 151646);
  EXPECT_EQ(r1.eos(), 151643);
  EXPECT_EQ(r1.n_vocab(), 151936);
  EXPECT_EQ(r1.find_token("<think>"), 151648);
  EXPECT_EQ(r1.token_text(151648), "<think>");
  EXPECT_EQ(r1.token_type(151648), TokenType::UserDefined);
  EXPECT_EQ(r1.token_type(151644), TokenType::Control);
  EXPECT_EQ(r1.token_type(151700), TokenType::Unused);
  EXPECT_EQ(r1.find_token("no such token \x01"), std::nullopt);

  const Tokenizer& gpt2 = vocab("gpt-2");
  EXPECT_FALSE(gpt2.add_bos());  // BPE default when the key is absent
  EXPECT_EQ(gpt2.bos(), 50256);
}

TEST(Tokenizer, Stories260KGolden) {
  const Tokenizer& tok = load_path(shared_path("models/stories260K.gguf"));
  EXPECT_TRUE(tok.add_bos());  // no add_bos key: the SentencePiece default
  const auto golden = nlohmann::json::parse(read_file(shared_path("models/stories260K.golden.json")));
  ASSERT_TRUE(golden.contains("tokenization"));
  ASSERT_GT(golden["tokenization"].size(), 0u);
  for (const auto& c : golden["tokenization"]) {
    const std::string text = c["text"].get<std::string>();
    const auto want = c["ids_with_bos"].get<std::vector<int32_t>>();
    const auto ids = tok.encode(text, tok.add_bos(), false);
    EXPECT_EQ(ids, want) << text;
    EXPECT_EQ(tok.decode(std::span<const int32_t>(want).subspan(1)), text);
    // A leading BOS decodes as its text; the prefix space after it is dropped.
    EXPECT_EQ(tok.decode(want), "<s>" + text);
  }
  // The golden continuation is the decoded text of the generated ids.
  const auto& gen = golden["cases"][0];
  const auto gen_ids = gen["generated_ids"].get<std::vector<int32_t>>();
  EXPECT_EQ(tok.decode(gen_ids), gen["continuation"].get<std::string>());
  StreamDecoder dec(tok);  // as a generation loop streams them
  std::string streamed;
  for (int32_t id : gen_ids) streamed += dec.push(id);
  EXPECT_EQ(streamed + dec.flush(), gen["continuation"].get<std::string>());
}

TEST(Tokenizer, SpecialTokensDeepseekR1) {
  const Tokenizer& tok = vocab("deepseek-r1-qwen");
  const std::string text = "<\xEF\xBD\x9CUser\xEF\xBD\x9C>hi<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C><think>\n";
  const auto hi = tok.find_token("hi");
  const auto nl = tok.find_token("\xC4\x8A");  // 'Ċ', the byte-level newline
  ASSERT_TRUE(hi && nl);
  const std::vector<int32_t> want = {151644, *hi, 151645, 151648, *nl};
  EXPECT_EQ(tok.encode(text, false, true), want);
  std::vector<int32_t> with_bos = {151646};
  with_bos.insert(with_bos.end(), want.begin(), want.end());
  EXPECT_EQ(tok.encode(text, true, true), with_bos);
  EXPECT_EQ(tok.decode(want), text);

  // Without parse_special, control-token texts are plain text, but the
  // user-defined <think> is still one token (as the HF tokenizer does).
  const auto plain = tok.encode(text, false, false);
  for (int32_t id : plain) {
    EXPECT_NE(tok.token_type(id), TokenType::Control) << id;
  }
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 151648), 1);
  EXPECT_EQ(tok.decode(plain), text);
  EXPECT_TRUE(tok.is_special(151648));
  EXPECT_TRUE(tok.is_special(151644));
  EXPECT_FALSE(tok.is_special(*hi));
}

TEST(Tokenizer, SpecialTokensLongestMatchAndSpmPrefix) {
  const Tokenizer& tok = vocab("llama-spm");
  const auto hello = tok.find_token("Hello");
  const auto sp_hello = tok.find_token("\xE2\x96\x81Hello");
  ASSERT_TRUE(hello && sp_hello);
  // The prefix space belongs to the start of the text only.
  EXPECT_EQ(tok.encode("<s>Hello", false, true), (std::vector<int32_t>{1, *hello}));
  EXPECT_EQ(tok.encode("Hello</s>", false, true), (std::vector<int32_t>{*sp_hello, 2}));
  const auto plain = tok.encode("<s>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_EQ(tok.decode(plain), "<s>");

  // Leftmost-longest: MPT has user-defined runs of 2..24 spaces.
  const Tokenizer& mpt = vocab("mpt");
  const auto four = mpt.find_token("    ");
  ASSERT_TRUE(four);
  EXPECT_EQ(mpt.encode("    ", false, false), (std::vector<int32_t>{*four}));
}

TEST(Tokenizer, EndOfGeneration) {
  const Tokenizer& r1 = vocab("deepseek-r1-qwen");
  EXPECT_TRUE(r1.is_eog(151643));   // <｜end▁of▁sentence｜>, eos
  EXPECT_FALSE(r1.is_eog(151644));  // <｜User｜>
  EXPECT_FALSE(r1.is_eog(151648));  // <think>
  const Tokenizer& qwen = vocab("qwen2");
  EXPECT_TRUE(qwen.is_eog(151645));  // <|im_end|>, eos
  EXPECT_TRUE(qwen.is_eog(151643));  // <|endoftext|>
  EXPECT_EQ(qwen.eot(), 151645);
  EXPECT_FALSE(qwen.is_eog(151644));  // <|im_start|>
  const Tokenizer& l3 = vocab("llama-bpe");
  EXPECT_TRUE(l3.is_eog(128001));  // <|end_of_text|>
  EXPECT_TRUE(l3.is_eog(128009));  // <|eot_id|>
  EXPECT_EQ(l3.eot(), 128009);
  EXPECT_FALSE(l3.is_eog(128000));
  EXPECT_FALSE(l3.is_eog(128006));  // <|start_header_id|>
  const Tokenizer& phi = vocab("phi-3");
  EXPECT_TRUE(phi.is_eog(32000));  // <|endoftext|>
  EXPECT_TRUE(phi.is_eog(32007));  // <|end|>
  EXPECT_FALSE(phi.is_eog(32010));  // <|user|>
  const Tokenizer& spm = vocab("llama-spm");
  EXPECT_TRUE(spm.is_eog(2));
  EXPECT_FALSE(spm.is_eog(1));
  EXPECT_EQ(spm.eot(), std::nullopt);
  for (int32_t bad : {-1, 32000, 1 << 30}) EXPECT_FALSE(spm.is_eog(bad));
}

TEST(StreamDecoder, EmojiSplitAcrossByteTokens) {
  // SentencePiece: "🦙" is not in the Llama 2 vocab, so it falls back to the
  // four byte tokens F0 9F A6 99 after the prefix '▁'.
  const Tokenizer& spm = vocab("llama-spm");
  const auto ids = spm.encode("\xF0\x9F\xA6\x99", false, false);
  ASSERT_EQ(ids.size(), 5u);
  for (size_t i = 1; i < 5; ++i) EXPECT_EQ(spm.token_type(ids[i]), TokenType::Byte);
  StreamDecoder dec(spm, /*at_text_start=*/true);
  EXPECT_EQ(dec.push(ids[0]), "");  // the prefix space, dropped at the start
  EXPECT_EQ(dec.push(ids[1]), "");
  EXPECT_EQ(dec.push(ids[2]), "");
  EXPECT_EQ(dec.push(ids[3]), "");
  EXPECT_EQ(dec.push(ids[4]), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(dec.flush(), "");

  // By default the ids continue a prompt: the first word keeps its space.
  StreamDecoder cont(spm);
  EXPECT_EQ(cont.push(ids[0]), " ");
  const auto there = spm.encode("Once there", false, false);
  ASSERT_EQ(there.size(), 2u);
  StreamDecoder gen(spm);
  EXPECT_EQ(gen.push(there[1]), " there");

  // Byte-level BPE (GPT-2): 'ðŁ' '¦' 'Ļ' carry F0 9F | A6 | 99.
  const Tokenizer& gpt2 = vocab("gpt-2");
  const auto bids = gpt2.encode("\xF0\x9F\xA6\x99", false, false);
  ASSERT_EQ(bids.size(), 3u);
  StreamDecoder bdec(gpt2);
  EXPECT_EQ(bdec.push(bids[0]), "");
  EXPECT_EQ(bdec.push(bids[1]), "");
  EXPECT_EQ(bdec.push(bids[2]), "\xF0\x9F\xA6\x99");
}

TEST(StreamDecoder, InvalidBytesBecomeReplacementChars) {
  const Tokenizer& spm = vocab("llama-spm");
  const auto byte = [&](int b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    return *spm.find_token(name);
  };
  const std::string fffd = "\xEF\xBF\xBD";
  StreamDecoder dec(spm);
  EXPECT_EQ(dec.push(byte(0x80)), fffd);  // a lone continuation byte
  EXPECT_EQ(dec.push(byte(0xF0)), "");    // could still complete
  EXPECT_EQ(dec.push(*spm.find_token("a")), fffd + "a");
  EXPECT_EQ(dec.push(byte(0xE2)), "");
  EXPECT_EQ(dec.flush(), fffd);  // never completed
  EXPECT_EQ(dec.flush(), "");
}

TEST(Tokenizer, BadIdsDoNotCrash) {
  const Tokenizer& tok = vocab("qwen2");
  for (int32_t bad : {-1, -100000, tok.n_vocab(), std::numeric_limits<int32_t>::max()}) {
    EXPECT_EQ(tok.token_to_piece(bad), "");
    EXPECT_EQ(tok.token_text(bad), "");
    EXPECT_FALSE(tok.is_special(bad));
    EXPECT_EQ(tok.token_type(bad), TokenType::Unknown);
  }
  const auto hello = tok.encode("Hello", false, false);
  std::vector<int32_t> ids = {-7};
  ids.insert(ids.end(), hello.begin(), hello.end());
  ids.push_back(tok.n_vocab());
  EXPECT_EQ(tok.decode(ids), "Hello");
  StreamDecoder dec(tok);
  std::string s;
  for (int32_t id : ids) s += dec.push(id);
  EXPECT_EQ(s + dec.flush(), "Hello");
}

TEST(Tokenizer, InvalidUtf8Input) {
  // Byte-level BPE with all 256 byte characters, and SentencePiece byte
  // fallback, carry any bytes, so invalid UTF-8 survives a round trip.
  const std::string text = std::string("ok \xFF\xC0 x\xE2\x82") + "\xF0";
  for (const char* name : {"qwen2", "llama-bpe", "gpt-2", "llama-spm"}) {
    const Tokenizer& tok = vocab(name);
    EXPECT_EQ(tok.decode(tok.encode(text, false, false)), text) << name;
  }
  // Falcon's vocab has no character for bytes C0, C1, F5..FF (never in valid
  // UTF-8) and no unknown token: those bytes are dropped. DeepSeek LLM added
  // such characters as user-defined tokens ('ÿ', 'À'), which decode as those
  // characters. Everything else still round-trips.
  EXPECT_EQ(vocab("falcon").decode(vocab("falcon").encode(text, false, false)), "ok  x\xE2\x82\xF0");
  EXPECT_EQ(vocab("deepseek-llm").decode(vocab("deepseek-llm").encode(text, false, false)),
            "ok \xC3\xBF\xC3\x80 x\xE2\x82\xF0");
}

// Random texts built from pieces that exercise the pre-tokenizers (letters,
// digits, contractions, whitespace runs, multi-byte characters, '▁', special
// token texts) must round-trip through encode/decode and the stream decoder.
TEST(Tokenizer, RandomTextsRoundTrip) {
  const std::vector<std::string> alphabet = {
      "a", "Zq", " ", "  ", "\n", "\t", "\r\n", "3", "12345", "'s", "'LL", "!?", "...", "\xC3\xA9",
      "\xE4\xBD\xA0", "\xF0\x9F\xA6\x99", "\xE2\x96\x81", "<think>", "<|im_end|>", "\xC2\xBD", "\xEF\xBD\x9E"};
  std::mt19937 rng(1234);
  for (const char* name : {"qwen2", "llama-spm", "llama-bpe", "gpt-2", "mpt", "deepseek-coder", "deepseek-llm",
                           "falcon", "starcoder", "phi-3"}) {
    const Tokenizer& tok = vocab(name);
    for (int iter = 0; iter < 150; ++iter) {
      std::string text;
      const size_t n = rng() % 24;
      for (size_t i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
      const bool parse_special = (rng() & 1) != 0;
      const auto ids = tok.encode(text, false, parse_special);
      // SentencePiece's one exception: a literal '▁' in the text is the
      // space marker, so it decodes as ' ' (as in sentencepiece itself).
      std::string want = text;
      if (tok.model_name() == "llama") {
        for (size_t p; (p = want.find("\xE2\x96\x81")) != std::string::npos;) want.replace(p, 3, " ");
      }
      ASSERT_EQ(tok.decode(ids), want) << name << ": \"" << text << "\"";
      bool valid = false;
      ASSERT_EQ(stream_all(tok, ids, &valid), want) << name;
      ASSERT_TRUE(valid) << name;
    }
  }
}

TEST(Tokenizer, LongPromptIsFast) {
  const Tokenizer& tok = vocab("qwen2");
  std::string prompt;
  const std::string para =
      "The quick brown fox jumps over the lazy dog 1234567, naïve café — \xE4\xBD\xA0\xE5\xA5\xBD! "
      "    if (x == 42) { return y; }\n";
  while (prompt.size() < 4096) prompt += para;
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok.encode(prompt, false, true);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(tok.decode(ids), prompt);
#if defined(__SANITIZE_ADDRESS__)
  const double limit_ms = 1000;
#else
  const double limit_ms = 50;
#endif
  EXPECT_LT(ms, limit_ms) << "encoding " << prompt.size() << " bytes took " << ms << " ms";
  std::printf("encode %zu bytes -> %zu tokens: %.2f ms\n", prompt.size(), ids.size(), ms);
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\xA6\x99"));  // a é € 🦙
  EXPECT_FALSE(is_valid_utf8("\xC0\x80"));          // overlong NUL
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\x80"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\x80"));

  std::string out;
  EXPECT_EQ(sanitize_utf8("a\xF0\x9F", false, out), 1u);  // holds back the incomplete tail
  EXPECT_EQ(out, "a");
  out.clear();
  EXPECT_EQ(sanitize_utf8("a\xF0\x9F", true, out), 3u);
  EXPECT_EQ(out, "a\xEF\xBF\xBD");  // one U+FFFD for the maximal subpart
  out.clear();
  // E2 is cut short by '(' (one U+FFFD), then A1 alone (another).
  EXPECT_EQ(sanitize_utf8("\xE2(\xA1", false, out), 3u);
  EXPECT_EQ(out, "\xEF\xBF\xBD(\xEF\xBF\xBD");
}

// Examples from UAX #15 and the Unicode standard (ch. 3.11, 3.12).
TEST(Nfc, Normalizes) {
  EXPECT_EQ(nfc("plain ascii"), "plain ascii");
  EXPECT_EQ(nfc("e\xCC\x81"), "\xC3\xA9");                       // e + U+0301 → é
  EXPECT_EQ(nfc("\xE1\xB8\x8B\xCC\xA3"), "\xE1\xB8\x8D\xCC\x87");  // ḋ + U+0323 → ḍ + U+0307
  EXPECT_EQ(nfc("\xE2\x84\xAB"), "\xC3\x85");                    // Angstrom sign → Å
  EXPECT_EQ(nfc("\xE2\x84\xA6"), "\xCE\xA9");                    // Ohm sign → Ω
  EXPECT_EQ(nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"), "\xEA\xB0\x81");  // L V T → 각
  EXPECT_EQ(nfc("\xE0\xA5\x98"), "\xE0\xA4\x95\xE0\xA4\xBC");    // U+0958 is excluded from composition
  // Ogonek (class 202) sorts before acute (230); a + ogonek composes to ą.
  EXPECT_EQ(nfc("a\xCC\x81\xCC\xA8"), "\xC4\x85\xCC\x81");
  EXPECT_EQ(nfc("a\xCC\xA8\xCC\x81"), "\xC4\x85\xCC\x81");
  EXPECT_EQ(nfc("\xFF" "e\xCC\x81\xCC"), "\xFF\xC3\xA9\xCC");  // invalid bytes kept
}

TEST(Nfc, AppliedForQwen2Only) {
  const Tokenizer& qwen = vocab("qwen2");
  EXPECT_EQ(qwen.encode("Cafe\xCC\x81", false, false), qwen.encode("Caf\xC3\xA9", false, false));
  const Tokenizer& gpt2 = vocab("gpt-2");  // GPT-2 has no normalizer
  EXPECT_NE(gpt2.encode("Cafe\xCC\x81", false, false), gpt2.encode("Caf\xC3\xA9", false, false));
  EXPECT_EQ(gpt2.decode(gpt2.encode("Cafe\xCC\x81", false, false)), "Cafe\xCC\x81");
}

// --- bad metadata -----------------------------------------------------------

struct Built {
  std::vector<uint8_t> bytes;
  Expected<Tokenizer> tok = Error{"not built"};
};

std::unique_ptr<Built> build(const std::function<void(gguf::GgufWriter&)>& fill) {
  auto b = std::make_unique<Built>();
  gguf::GgufWriter w;
  fill(w);
  b->bytes = w.to_bytes();
  auto file = gguf::GgufFile::parse(b->bytes);
  if (!file.ok()) {
    b->tok = file.error();
    return b;
  }
  b->tok = Tokenizer::from_gguf(*file);
  return b;
}

void tiny_bpe(gguf::GgufWriter& w) {
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "gpt-2");
  w.set("tokenizer.ggml.tokens", gguf::Value::make_string_array({"a", "b", "ab", "<|end|>"}));
  w.set("tokenizer.ggml.token_type", gguf::Value::make_i32_array({1, 1, 1, 3}));
  w.set("tokenizer.ggml.merges", gguf::Value::make_string_array({"a b"}));
}

TEST(TokenizerErrors, TinyVocabWorks) {
  auto b = build(tiny_bpe);
  ASSERT_TRUE(b->tok.ok()) << b->tok.error().message;
  EXPECT_EQ(b->tok->encode("abab", false, false), (std::vector<int32_t>{2, 2}));
  EXPECT_EQ(b->tok->encode("ab<|end|>", false, true), (std::vector<int32_t>{2, 3}));
  EXPECT_TRUE(b->tok->is_eog(3));  // an end-of-turn text, no eos key
}

// Hand-made vocabs whose results follow from the algorithms' definitions.
void tiny_spm(gguf::GgufWriter& w) {
  w.set_string("tokenizer.ggml.model", "llama");
  w.set("tokenizer.ggml.tokens", gguf::Value::make_string_array(
                                     {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "c", "ab", "bc",
                                      "\xE2\x96\x81" "a", "aa", "<0x64>"}));
  w.set("tokenizer.ggml.scores",
        gguf::Value::make_f32_array({0, 0, 0, 0, 0, 0, 0, -1.0f, -0.5f, -2.0f, 0, 0}));
  w.set("tokenizer.ggml.token_type", gguf::Value::make_i32_array({2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6}));
}

TEST(TinyVocab, SentencePieceMergesByScore) {
  auto b = build(tiny_spm);
  ASSERT_TRUE(b->tok.ok()) << b->tok.error().message;
  const Tokenizer& t = *b->tok;
  EXPECT_TRUE(t.add_space_prefix());
  // "▁abc": pairs ▁a (-2), ab (-1), bc (-0.5): bc first, then ▁a; "▁abc" is
  // not a piece.
  EXPECT_EQ(t.encode("abc", false, false), (std::vector<int32_t>{9, 8}));
  // Equal scores: the leftmost pair merges first.
  EXPECT_EQ(t.encode("aaa", false, false), (std::vector<int32_t>{3, 10, 4}));
  // 'd' falls back to its byte token; 'é' has no byte tokens: one <unk>.
  EXPECT_EQ(t.encode("d\xC3\xA9", false, false), (std::vector<int32_t>{3, 11, 0}));
  EXPECT_EQ(t.encode("", true, false), (std::vector<int32_t>{1}));
  EXPECT_EQ(t.decode(std::vector<int32_t>{9, 8, 3, 11}), "abc d");

  auto nb = build([](gguf::GgufWriter& w) {
    tiny_spm(w);
    w.set_bool("tokenizer.ggml.add_space_prefix", false);
  });
  ASSERT_TRUE(nb->tok.ok()) << nb->tok.error().message;
  EXPECT_FALSE(nb->tok->add_space_prefix());
  EXPECT_EQ(nb->tok->encode("abc", false, false), (std::vector<int32_t>{4, 8}));
  EXPECT_EQ(nb->tok->decode(std::vector<int32_t>{3, 4}), " a");  // nothing to drop
}

TEST(TinyVocab, BpeMergesByRank) {
  auto b = build([](gguf::GgufWriter& w) {
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set("tokenizer.ggml.tokens", gguf::Value::make_string_array({"a", "b", "c", "ab", "bc"}));
    w.set("tokenizer.ggml.merges", gguf::Value::make_string_array({"b c", "a b"}));
  });
  ASSERT_TRUE(b->tok.ok()) << b->tok.error().message;
  EXPECT_EQ(b->tok->pre_name(), "default");
  // "b c" has the lower rank, so it wins over the leftmost pair "a b".
  EXPECT_EQ(b->tok->encode("abc", false, false), (std::vector<int32_t>{0, 4}));
  EXPECT_EQ(b->tok->encode("ab", false, false), (std::vector<int32_t>{3}));
  EXPECT_EQ(b->tok->encode("x", false, false), (std::vector<int32_t>{}));  // no such byte, no <unk>
}

void expect_error(const std::function<void(gguf::GgufWriter&)>& fill, const std::string& needle) {
  auto b = build(fill);
  ASSERT_FALSE(b->tok.ok()) << "expected an error mentioning " << needle;
  EXPECT_NE(b->tok.error().message.find(needle), std::string::npos) << b->tok.error().message;
}

TEST(TokenizerErrors, NameTheKey) {
  expect_error([](gguf::GgufWriter& w) { w.set_u32("x", 1); }, "tokenizer.ggml.model");
  expect_error([](gguf::GgufWriter& w) {
    tiny_bpe(w);
    w.set_string("tokenizer.ggml.model", "wordpiece");
  }, "wordpiece");
  expect_error([](gguf::GgufWriter& w) {
    tiny_bpe(w);
    w.set_string("tokenizer.ggml.pre", "no-such-pre");
  }, "llama-bpe");  // the error lists the known names
  expect_error([](gguf::GgufWriter& w) {
    tiny_bpe(w);
    w.set("tokenizer.ggml.merges", gguf::Value::make_string_array({"ab"}));
  }, "tokenizer.ggml.merges[0]");
  expect_error([](gguf::GgufWriter& w) {
    tiny_bpe(w);
    w.set("tokenizer.ggml.token_type", gguf::Value::make_i32_array({1, 9, 1, 1}));
  }, "tokenizer.ggml.token_type[1]");
  expect_error([](gguf::GgufWriter& w) {
    tiny_bpe(w);
    w.set("tokenizer.ggml.token_type", gguf::Value::make_i32_array({1, 1}));
  }, "tokenizer.ggml.token_type");
  expect_error([](gguf::GgufWriter& w) {
    tiny_bpe(w);
    w.set("tokenizer.ggml.tokens", gguf::Value::make_string_array({}));
  }, "tokenizer.ggml.tokens");
  expect_error([](gguf::GgufWriter& w) {
    tiny_bpe(w);
    w.set("tokenizer.ggml.tokens", gguf::Value::make_f32_array({1.0f}));
  }, "tokenizer.ggml.tokens");
  expect_error([](gguf::GgufWriter& w) {
    w.set_string("tokenizer.ggml.model", "llama");
    w.set("tokenizer.ggml.tokens", gguf::Value::make_string_array({"<unk>", "a"}));
  }, "tokenizer.ggml.scores");  // SentencePiece needs scores
  expect_error([](gguf::GgufWriter& w) {
    w.set_string("tokenizer.ggml.model", "llama");
    w.set("tokenizer.ggml.tokens", gguf::Value::make_string_array({"<unk>", "a"}));
    w.set("tokenizer.ggml.scores", gguf::Value::make_f32_array({0.0f}));
  }, "tokenizer.ggml.scores");
  expect_error([](gguf::GgufWriter& w) {
    tiny_bpe(w);
    w.set_string("tokenizer.ggml.eos_token_id", "2");
  }, "tokenizer.ggml.eos_token_id");
}

TEST(TokenizerErrors, OutOfRangeSpecialIdsAreAbsent) {
  auto b = build([](gguf::GgufWriter& w) {
    tiny_bpe(w);
    w.set("tokenizer.ggml.bos_token_id", gguf::Value::make_int(gguf::ValueType::INT32, -1));
    w.set_u32("tokenizer.ggml.eos_token_id", 4);  // one past the last token
    w.set_u32("tokenizer.ggml.eot_token_id", 0xFFFFFFFFu);
  });
  ASSERT_TRUE(b->tok.ok()) << b->tok.error().message;
  EXPECT_EQ(b->tok->bos(), -1);
  EXPECT_EQ(b->tok->eos(), -1);
  EXPECT_EQ(b->tok->eot(), 3);  // "none" in the file: found by its text <|end|>
  EXPECT_EQ(b->tok->encode("a", true, false), (std::vector<int32_t>{0}));
}

}  // namespace
}  // namespace dhi::tok
