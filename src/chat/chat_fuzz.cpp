// libFuzzer entry point for the chat layer's text handling. Any input must be
// handled without a crash, and:
//  - detect_template and python_strip accept any bytes (python_strip is idempotent
//    and returns a piece of its input);
//  - render accepts any conversation built from the input, for every family;
//  - ReasoningParser gives the same split whatever the chunking (the input also
//    chooses the chunk sizes).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chat/reasoning.h"
#include "chat/template.h"

namespace {

using dhi::chat::Message;
using dhi::chat::ReasoningParser;
using dhi::chat::TemplateFamily;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Split {
  std::string reasoning, content;
};

Split run(bool starts, std::string_view text, std::string_view sizes) {
  ReasoningParser p(starts);
  Split s;
  auto take = [&](const ReasoningParser::Delta& d) {
    s.reasoning += d.reasoning;
    s.content += d.content;
  };
  size_t pos = 0, k = 0;
  while (pos < text.size()) {
    size_t n = sizes.empty() ? text.size() : static_cast<uint8_t>(sizes[k++ % sizes.size()]) % 8;
    if (n > text.size() - pos) n = text.size() - pos;
    take(p.push(text.substr(pos, n)));
    pos += n;
    if (n == 0 && k > text.size() + sizes.size()) break;  // all sizes zero: stop
  }
  if (pos < text.size()) take(p.push(text.substr(pos)));
  take(p.flush());
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  (void)dhi::chat::detect_template(in);

  const std::string_view stripped = dhi::chat::python_strip(in);
  check(stripped.data() >= in.data() && stripped.data() + stripped.size() <= in.data() + in.size());
  check(dhi::chat::python_strip(stripped) == stripped);

  // Messages: the input split on '\0'; each piece's first byte picks the role.
  std::vector<Message> msgs;
  size_t start = 0;
  while (start <= in.size() && msgs.size() < 16) {
    size_t end = in.find('\0', start);
    if (end == std::string_view::npos) end = in.size();
    const std::string_view piece = in.substr(start, end - start);
    static const char* const kRoles[] = {"system", "user", "assistant", "tool"};
    const char* role = piece.empty() ? "user" : kRoles[static_cast<uint8_t>(piece[0]) % 4];
    msgs.push_back({role, std::string(piece)});
    start = end + 1;
  }
  for (TemplateFamily f : {TemplateFamily::DeepSeekR1, TemplateFamily::DeepSeekR1Legacy, TemplateFamily::ChatML,
                           TemplateFamily::Qwen3, TemplateFamily::Qwen3Thinking, TemplateFamily::Llama3,
                           TemplateFamily::Llama2, TemplateFamily::Phi3, TemplateFamily::Gemma}) {
    (void)dhi::chat::render(f, msgs, true);
  }

  // Reasoning split: first half is the stream, second half the chunk sizes.
  const std::string_view text = in.substr(0, in.size() / 2);
  const std::string_view sizes = in.substr(in.size() / 2);
  for (bool starts : {false, true}) {
    const Split whole = run(starts, text, {});
    const Split chunked = run(starts, text, sizes);
    check(whole.reasoning == chunked.reasoning && whole.content == chunked.content);
  }
  return 0;
}
