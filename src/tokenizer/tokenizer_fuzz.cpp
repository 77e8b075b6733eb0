// libFuzzer entry point for the tokenizer. The first input byte picks the mode:
// even: the rest is text for the vocab named by DHI_TOKENIZER_FUZZ_VOCAB (a
// GGUF path; default: the Qwen2 test vocab), which must encode with and
// without special-token parsing, decode back to the text (byte-level BPE,
// when NFC leaves the text unchanged), and stream-decode to valid UTF-8;
// odd: the rest is a GGUF file whose tokenizer metadata must load or give an
// error, and a loaded tokenizer must survive encoding and decoding.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>

#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace {

using dhi::tok::StreamDecoder;
using dhi::tok::Tokenizer;

const Tokenizer* fuzz_vocab() {
  static std::unique_ptr<Tokenizer> tok = [] {
    const char* env = std::getenv("DHI_TOKENIZER_FUZZ_VOCAB");
    auto file = dhi::gguf::GgufFile::open(env != nullptr ? env : DHI_TOKENIZER_FUZZ_DEFAULT_VOCAB);
    if (!file.ok()) return std::unique_ptr<Tokenizer>();
    auto t = Tokenizer::from_gguf(*file);
    return t.ok() ? std::make_unique<Tokenizer>(std::move(t).value()) : std::unique_ptr<Tokenizer>();
  }();
  return tok.get();
}

void exercise(const Tokenizer& tok, std::string_view text, bool check_round_trip) {
  for (bool parse_special : {false, true}) {
    const auto ids = tok.encode(text, true, parse_special);
    for (int32_t id : ids) {
      if (id < 0 || id >= tok.n_vocab()) __builtin_trap();
    }
    const std::string decoded = tok.decode(ids);
    StreamDecoder dec(tok);
    std::string streamed;
    for (int32_t id : ids) streamed += dec.push(id);
    streamed += dec.flush();
    if (!dhi::tok::is_valid_utf8(streamed)) __builtin_trap();
    if (check_round_trip && !parse_special && tok.bos() < 0 && decoded != text) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) == 0) {
    const Tokenizer* tok = fuzz_vocab();
    if (tok == nullptr) return 0;
    // Qwen2's byte-level BPE carries any bytes and user-defined texts such as
    // <think> decode to themselves, so the round trip is exact for text that
    // its NFC normalizer leaves alone.
    exercise(*tok, rest, tok->model_name() == "gpt2" && dhi::tok::nfc(rest) == rest);
    return 0;
  }
  auto file = dhi::gguf::GgufFile::parse(std::span<const uint8_t>(data + 1, size - 1));
  if (!file.ok()) return 0;
  auto tok = Tokenizer::from_gguf(*file);
  if (!tok.ok()) return 0;
  exercise(*tok, "Hello, world! 123 \xF0\x9F\xA6\x99 <s></s>", false);
  for (int32_t id = -1; id <= tok->n_vocab(); ++id) (void)tok->token_to_piece(id);
  return 0;
}
