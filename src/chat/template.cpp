// Native renderers for the chat template families in template.h. Each renderer
// names the Jinja template it follows and mirrors its control flow: which
// messages are printed, which are dropped, where the content is stripped.
#include "chat/template.h"

#include <array>
#include <cstdint>

namespace dhi::chat {
namespace {

// DeepSeek-R1 special tokens (U+FF5C FULLWIDTH VERTICAL LINE, U+2581 LOWER ONE EIGHTH BLOCK).
constexpr std::string_view kR1User = "<｜User｜>";
constexpr std::string_view kR1Assistant = "<｜Assistant｜>";
constexpr std::string_view kR1Eos = "<｜end▁of▁sentence｜>";

struct FamilyInfo {
  TemplateFamily family;
  std::string_view name;
};

constexpr std::array<FamilyInfo, 9> kFamilies = {{
    {TemplateFamily::DeepSeekR1, "deepseek-r1"},
    {TemplateFamily::DeepSeekR1Legacy, "deepseek-r1-legacy"},
    {TemplateFamily::ChatML, "chatml"},
    {TemplateFamily::Qwen3, "qwen3"},
    {TemplateFamily::Qwen3Thinking, "qwen3-thinking"},
    {TemplateFamily::Llama3, "llama3"},
    {TemplateFamily::Llama2, "llama2"},
    {TemplateFamily::Phi3, "phi3"},
    {TemplateFamily::Gemma, "gemma"},
}};

std::string known_names() {
  std::string s;
  for (const FamilyInfo& f : kFamilies) {
    if (!s.empty()) s += ", ";
    s += f.name;
  }
  return s;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Length of the Unicode whitespace code point (as Python's str.isspace()
// defines it) starting at `s[i]`, or 0 when there is none.
size_t whitespace_at(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const size_t left = s.size() - i;
  const uint8_t c0 = b(i);
  if (c0 == ' ' || (c0 >= 0x09 && c0 <= 0x0d) || (c0 >= 0x1c && c0 <= 0x1f)) return 1;
  if (left >= 2 && c0 == 0xc2 && (b(i + 1) == 0x85 || b(i + 1) == 0xa0)) return 2;  // U+0085, U+00A0
  if (left >= 3) {
    const uint32_t cp3 = (static_cast<uint32_t>(c0) << 16) | (static_cast<uint32_t>(b(i + 1)) << 8) | b(i + 2);
    if (cp3 == 0xe19a80) return 3;                          // U+1680
    if (cp3 >= 0xe28080 && cp3 <= 0xe2808a) return 3;       // U+2000..U+200A
    if (cp3 == 0xe280a8 || cp3 == 0xe280a9) return 3;       // U+2028, U+2029
    if (cp3 == 0xe280af || cp3 == 0xe2819f) return 3;       // U+202F, U+205F
    if (cp3 == 0xe38080) return 3;                          // U+3000
  }
  return 0;
}

// Length of the whitespace code point ending just before `s[end]`, or 0.
size_t whitespace_before(std::string_view s, size_t end) {
  for (size_t len = 1; len <= 3 && len <= end; ++len) {
    const size_t start = end - len;
    // Only accept a code point that starts exactly at `start`: continuation
    // bytes (10xxxxxx) cannot start one.
    if ((static_cast<uint8_t>(s[start]) & 0xc0) == 0x80) continue;
    if (whitespace_at(s, start) == len) return len;
    return 0;
  }
  return 0;
}

Status check_roles(std::span<const Message> messages) {
  if (messages.empty()) return make_error("chat template: the conversation has no messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& r = messages[i].role;
    if (r != "system" && r != "user" && r != "assistant") {
      return make_error("chat template: message ", i, " has role \"", r,
                        "\"; expected \"system\", \"user\" or \"assistant\"");
    }
  }
  return {};
}

// Follows the DeepSeek-R1-Distill template (tokenizer.chat_template of
// ggml-vocab-deepseek-r1-qwen.gguf):
//  - `ns.system_prompt` is set to each system message's content in turn, so the
//    LAST system message wins; it is printed right after bos_token, unwrapped.
//  - user: '<｜User｜>' + content.
//  - assistant: if '</think>' in content, content = content.split('</think>')[-1]
//    (the text after the last '</think>', unstripped); then
//    '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'.
//  - generation prompt: '<｜Assistant｜><think>\n' (the legacy template: '<｜Assistant｜>').
// The template checks no ordering, so neither do we.
std::string render_r1(std::span<const Message> messages, bool add_generation_prompt, bool think_prefix) {
  std::string out;
  for (const Message& m : messages) {
    if (m.role == "system") out = m.content;
  }
  for (const Message& m : messages) {
    if (m.role == "user") {
      out += kR1User;
      out += m.content;
    } else if (m.role == "assistant") {
      std::string_view content = m.content;
      const size_t close = content.rfind("</think>");
      if (close != std::string_view::npos) content.remove_prefix(close + 8);
      out += kR1Assistant;
      out += content;
      out += kR1Eos;
    }
  }
  if (add_generation_prompt) {
    out += kR1Assistant;
    if (think_prefix) out += "<think>\n";
  }
  return out;
}

// Generic ChatML (OpenHermes-2.5 / Qwen2.5 without tools): every message as
// '<|im_start|>' + role + '\n' + content + '<|im_end|>' + '\n'; generation prompt
// '<|im_start|>assistant\n'. Qwen2.5's template adds a default system prompt
// ("You are Qwen, created by Alibaba Cloud...") when none is given; we do not.
std::string render_chatml(std::span<const Message> messages, bool add_generation_prompt) {
  std::string out;
  for (const Message& m : messages) {
    out += "<|im_start|>";
    out += m.role;
    out += '\n';
    out += m.content;
    out += "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string_view strip_newlines_left(std::string_view s) {
  while (!s.empty() && s.front() == '\n') s.remove_prefix(1);
  return s;
}
std::string_view strip_newlines_right(std::string_view s) {
  while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}

// Qwen3 (Qwen3-235B-A22B tokenizer_config.json), without tools:
//  - every system and user message: '<|im_start|>' + role + '\n' + content + '<|im_end|>\n'
//    (the first system message is printed before the loop, the others in it: the
//    same text in the same place);
//  - ns.last_query_index: the last user message whose content is not wrapped in
//    <tool_response>...</tool_response> (else the last message);
//  - assistant: if '</think>' in content, reasoning_content =
//    content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') and
//    content = content.split('</think>')[-1].lstrip('\n'). After the last query, and
//    when it is the last message or has reasoning: '<|im_start|>assistant\n<think>\n' +
//    reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n'); otherwise
//    '<|im_start|>assistant\n' + content. Then '<|im_end|>\n';
//  - generation prompt '<|im_start|>assistant\n' (enable_thinking is not set), plus
//    '<think>\n' in the Thinking-2507 variant.
std::string render_qwen3(std::span<const Message> messages, bool add_generation_prompt, bool think_prefix) {
  size_t last_query = messages.size() - 1;
  for (size_t i = messages.size(); i-- > 0;) {
    const std::string& c = messages[i].content;
    const bool tool_response = c.starts_with("<tool_response>") && c.ends_with("</tool_response>");
    if (messages[i].role == "user" && !tool_response) {
      last_query = i;
      break;
    }
  }
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    if (m.role != "assistant") {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      continue;
    }
    std::string_view content = m.content;
    std::string_view reasoning;
    const size_t first_close = content.find("</think>");
    if (first_close != std::string_view::npos) {
      std::string_view before = strip_newlines_right(content.substr(0, first_close));
      const size_t open = before.rfind("<think>");
      if (open != std::string_view::npos) before.remove_prefix(open + 7);
      reasoning = strip_newlines_left(before);
      content = strip_newlines_left(content.substr(content.rfind("</think>") + 8));
    }
    out += "<|im_start|>assistant\n";
    if (i > last_query && (i + 1 == messages.size() || !reasoning.empty())) {
      out += "<think>\n";
      out += strip_newlines_right(strip_newlines_left(reasoning));
      out += "\n</think>\n\n";
      out += strip_newlines_left(content);
    } else {
      out += content;
    }
    out += "<|im_end|>\n";
  }
  if (add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (think_prefix) out += "<think>\n";
  }
  return out;
}

// Meta-Llama-3-8B-Instruct: for each message
// '<|start_header_id|>' + role + '<|end_header_id|>\n\n' + content|trim + '<|eot_id|>'
// (bos_token before the first, which the caller adds); generation prompt
// '<|start_header_id|>assistant<|end_header_id|>\n\n'. (Llama 3.1+ templates also
// print a "Cutting Knowledge Date" system header; we render the 3.0 form.)
std::string render_llama3(std::span<const Message> messages, bool add_generation_prompt) {
  std::string out;
  for (const Message& m : messages) {
    out += "<|start_header_id|>";
    out += m.role;
    out += "<|end_header_id|>\n\n";
    out += python_strip(m.content);
    out += "<|eot_id|>";
  }
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// Llama-2-7b-chat-hf: an optional first system message is folded into the first
// user turn as '<<SYS>>\n' + system + '\n<</SYS>>\n\n' + content; the remaining
// messages must alternate user/assistant starting with user (raise_exception
// otherwise); user: bos_token + '[INST] ' + content.strip() + ' [/INST]';
// assistant: ' ' + content.strip() + ' ' + eos_token. There is no generation
// prompt: the text after '[/INST]' is the assistant's. A later system message
// (which the template silently drops) and a lone system message (which renders
// as nothing) are errors here. The leading bos_token of
// the first turn is left to the caller; later turns carry '<s>' as text.
Expected<std::string> render_llama2(std::span<const Message> messages) {
  std::string system;
  bool has_system = false;
  if (messages[0].role == "system") {
    system = messages[0].content;
    has_system = true;
    messages = messages.subspan(1);
  }
  if (messages.empty()) return make_error("chat template llama2: a system message needs a user message after it");
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    const bool want_user = i % 2 == 0;
    if ((m.role == "user") != want_user || m.role == "system") {
      return make_error("chat template llama2: message ", i + (has_system ? 1 : 0), " has role \"", m.role,
                        "\"; roles must alternate user/assistant/user/... after an optional first system message");
    }
    std::string content = (i == 0 && has_system) ? "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + m.content : m.content;
    if (m.role == "user") {
      if (i != 0) out += "<s>";
      out += "[INST] ";
      out += python_strip(content);
      out += " [/INST]";
    } else {
      out += ' ';
      out += python_strip(content);
      out += " </s>";
    }
  }
  return out;
}

// Phi-3.5-mini-instruct (also Phi-3-mini-4k-instruct's updated template):
// system (only when its content is non-empty) '<|system|>\n' + content + '<|end|>\n';
// user '<|user|>\n' + content + '<|end|>\n'; assistant '<|assistant|>\n' + content +
// '<|end|>\n'; then '<|assistant|>\n' with a generation prompt, else eos_token
// ('<|endoftext|>'). The older template in ggml-vocab-phi-3.gguf drops system
// messages and always opens '<|assistant|>\n' after a user turn; for a
// conversation without system messages that ends with a user turn plus the
// generation prompt, both print the same text.
std::string render_phi3(std::span<const Message> messages, bool add_generation_prompt) {
  std::string out;
  for (const Message& m : messages) {
    if (m.role == "system" && m.content.empty()) continue;
    out += "<|";
    out += m.role;
    out += "|>\n";
    out += m.content;
    out += "<|end|>\n";
  }
  out += add_generation_prompt ? "<|assistant|>\n" : "<|endoftext|>";
  return out;
}

// gemma-2-9b-it / gemma-7b-it: a first system message raises 'System role not
// supported' (a later one would print a '<start_of_turn>system' turn the model was
// never trained on; we reject it too);
// roles must alternate user/assistant from user; each message is
// '<start_of_turn>' + ('model' for assistant, else role) + '\n' + content|trim +
// '<end_of_turn>\n'; generation prompt '<start_of_turn>model\n'.
Expected<std::string> render_gemma(std::span<const Message> messages, bool add_generation_prompt) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    if (m.role == "system") {
      return make_error("chat template gemma: the template does not support a system role (message ", i, ")");
    }
    if ((m.role == "user") != (i % 2 == 0)) {
      return make_error("chat template gemma: message ", i, " has role \"", m.role,
                        "\"; roles must alternate user/assistant/user/...");
    }
    out += "<start_of_turn>";
    out += m.role == "assistant" ? "model" : "user";
    out += '\n';
    out += python_strip(m.content);
    out += "<end_of_turn>\n";
  }
  if (add_generation_prompt) out += "<start_of_turn>model\n";
  return out;
}

}  // namespace

std::string_view python_strip(std::string_view text) {
  size_t begin = 0;
  while (begin < text.size()) {
    const size_t n = whitespace_at(text, begin);
    if (n == 0) break;
    begin += n;
  }
  size_t end = text.size();
  while (end > begin) {
    const size_t n = whitespace_before(text, end);
    if (n == 0) break;
    end -= n;
  }
  return text.substr(begin, end - begin);
}

Expected<TemplateFamily> detect_template(std::string_view src) {
  // Ordered from the most specific markers to the least: R1 templates are the
  // only ones with the fullwidth-bar tokens; Llama 2 is recognised by <<SYS>>
  // because Mistral's [INST] templates render differently.
  if (contains(src, kR1User) && contains(src, kR1Assistant)) {
    return contains(src, "<｜Assistant｜><think>") ? TemplateFamily::DeepSeekR1 : TemplateFamily::DeepSeekR1Legacy;
  }
  if (contains(src, "<|start_header_id|>") && contains(src, "<|eot_id|>")) return TemplateFamily::Llama3;
  if (contains(src, "<|im_start|>")) {
    // Qwen3's templates are the ChatML ones that track the last user query.
    if (contains(src, "last_query_index")) {
      return contains(src, "<|im_start|>assistant\\n<think>\\n") ? TemplateFamily::Qwen3Thinking
                                                                  : TemplateFamily::Qwen3;
    }
    return TemplateFamily::ChatML;
  }
  if (contains(src, "<start_of_turn>")) return TemplateFamily::Gemma;
  if (contains(src, "<|user|>") && contains(src, "<|end|>")) return TemplateFamily::Phi3;
  if (contains(src, "[INST]") && contains(src, "<<SYS>>")) return TemplateFamily::Llama2;

  constexpr size_t kQuote = 80;
  std::string head(src.substr(0, kQuote));
  if (src.size() > kQuote) head += "...";
  return make_error("unrecognised chat template \"", head, "\" (", src.size(),
                    " bytes); known families: ", known_names());
}

Expected<TemplateFamily> template_from_name(std::string_view name) {
  std::string lower;
  for (char c : name) lower += ascii_lower(c);
  for (const FamilyInfo& f : kFamilies) {
    if (lower == f.name) return f.family;
  }
  return make_error("unknown chat template name \"", name, "\"; known names: ", known_names());
}

std::string_view template_name(TemplateFamily family) {
  for (const FamilyInfo& f : kFamilies) {
    if (f.family == family) return f.name;
  }
  return "unknown";
}

Expected<std::string> render(TemplateFamily family, std::span<const Message> messages, bool add_generation_prompt) {
  DHI_TRY(check_roles(messages));
  switch (family) {
    case TemplateFamily::DeepSeekR1: return render_r1(messages, add_generation_prompt, true);
    case TemplateFamily::DeepSeekR1Legacy: return render_r1(messages, add_generation_prompt, false);
    case TemplateFamily::ChatML: return render_chatml(messages, add_generation_prompt);
    case TemplateFamily::Qwen3: return render_qwen3(messages, add_generation_prompt, false);
    case TemplateFamily::Qwen3Thinking: return render_qwen3(messages, add_generation_prompt, true);
    case TemplateFamily::Llama3: return render_llama3(messages, add_generation_prompt);
    case TemplateFamily::Llama2: return render_llama2(messages);
    case TemplateFamily::Phi3: return render_phi3(messages, add_generation_prompt);
    case TemplateFamily::Gemma: return render_gemma(messages, add_generation_prompt);
  }
  return make_error("chat template: unknown family value ", static_cast<int>(family));
}

bool opens_in_reasoning(TemplateFamily family, bool add_generation_prompt) {
  return add_generation_prompt &&
         (family == TemplateFamily::DeepSeekR1 || family == TemplateFamily::Qwen3Thinking);
}

Expected<Continuation> render_continuation(TemplateFamily family, std::span<const Message> messages,
                                           const AssistantPrefix& prefix) {
  DHI_ASSIGN_OR_RETURN(std::string text, render(family, messages, /*add_generation_prompt=*/true));
  const bool opened = opens_in_reasoning(family, true);
  Continuation c;
  std::string_view content = prefix.content;
  if (prefix.reasoning.empty() && opened && content.rfind("<think>\n", 0) == 0) content.remove_prefix(8);
  if (!prefix.reasoning.empty()) {
    if (!opened) text += "<think>";
    text += prefix.reasoning;
    if (!content.empty()) text += "</think>\n\n";
  }
  text += content;
  c.in_reasoning = content.empty() && (opened || !prefix.reasoning.empty());
  c.text = std::move(text);
  return c;
}

std::vector<std::string> stop_texts(TemplateFamily family) {
  switch (family) {
    case TemplateFamily::DeepSeekR1:
    case TemplateFamily::DeepSeekR1Legacy: return {std::string(kR1Eos)};
    case TemplateFamily::ChatML:
    case TemplateFamily::Qwen3:
    case TemplateFamily::Qwen3Thinking: return {"<|im_end|>"};
    case TemplateFamily::Llama3: return {"<|eot_id|>"};
    case TemplateFamily::Llama2: return {"</s>"};
    case TemplateFamily::Phi3: return {"<|end|>", "<|endoftext|>"};
    case TemplateFamily::Gemma: return {"<end_of_turn>"};
  }
  return {};
}

}  // namespace dhi::chat
