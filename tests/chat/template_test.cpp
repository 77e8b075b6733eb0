// Chat template rendering and detection. Every expected string below was
// written by hand from the Jinja source quoted next to it (not produced by the
// renderer); the DeepSeek-R1 template is read from the shared vocab file so the
// fragments the expectations rely on are checked against the real source.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "chat/template.h"

namespace dhi::chat {
namespace {

// Reads the string value of `tokenizer.chat_template` from a GGUF file by
// scanning for the key: in GGUF a key is followed by its u32 type (8 = string)
// and a u64 byte length.
std::string read_chat_template(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const std::string key = "tokenizer.chat_template";
  const size_t at = bytes.find(key);
  if (at == std::string::npos) return {};
  size_t pos = at + key.size();
  if (bytes.size() - pos < 12) return {};
  uint32_t type = 0;
  uint64_t len = 0;
  std::memcpy(&type, bytes.data() + pos, 4);
  std::memcpy(&len, bytes.data() + pos + 4, 8);
  pos += 12;
  if (type != 8 || len > bytes.size() - pos) return {};
  return bytes.substr(pos, len);
}

std::string shared(const char* rel) { return std::string(DHI_SHARED_DIR) + "/" + rel; }

std::string read_template(const char* name) {
  std::ifstream f(std::string(DHI_CHAT_TEMPLATES_DIR) + "/" + name, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string render_ok(TemplateFamily family, const std::vector<Message>& msgs, bool gen) {
  auto r = render(family, msgs, gen);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::string();
}

// ---- DeepSeek-R1 ------------------------------------------------------------

class R1Template : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { source_ = read_chat_template(shared("tokenizer/ggml-vocab-deepseek-r1-qwen.gguf")); }
  static std::string source_;
};
std::string R1Template::source_;

TEST_F(R1Template, SourceHasTheFragmentsTheExpectationsFollow) {
  ASSERT_FALSE(source_.empty());
  // Last system message wins and is printed right after bos_token.
  EXPECT_NE(source_.find("{%- if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}"),
            std::string::npos);
  EXPECT_NE(source_.find("{{bos_token}}{{ns.system_prompt}}"), std::string::npos);
  EXPECT_NE(source_.find("{{'<｜User｜>' + message['content']}}"), std::string::npos);
  EXPECT_NE(source_.find("{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}"),
            std::string::npos);
  EXPECT_NE(source_.find("{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}"), std::string::npos);
  // The generation prompt opens the reasoning block (the Jinja literal '\n').
  EXPECT_NE(source_.find("{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\\n'}}"),
            std::string::npos);
}

TEST_F(R1Template, DetectedFromRealSource) {
  auto fam = detect_template(source_);
  ASSERT_TRUE(fam.ok()) << fam.error().message;
  EXPECT_EQ(*fam, TemplateFamily::DeepSeekR1);
  EXPECT_TRUE(opens_in_reasoning(*fam, true));
  EXPECT_FALSE(opens_in_reasoning(*fam, false));
}

TEST_F(R1Template, LegacyVariantDetectedWithoutThinkPrefix) {
  // The January 2025 template differed in the generation prompt: '<｜Assistant｜>' alone.
  std::string legacy = source_;
  const std::string from = "{{'<｜Assistant｜><think>\\n'}}";
  const size_t at = legacy.find(from);
  ASSERT_NE(at, std::string::npos);
  legacy.replace(at, from.size(), "{{'<｜Assistant｜>'}}");
  auto fam = detect_template(legacy);
  ASSERT_TRUE(fam.ok());
  EXPECT_EQ(*fam, TemplateFamily::DeepSeekR1Legacy);
  EXPECT_FALSE(opens_in_reasoning(*fam, true));
  EXPECT_EQ(render_ok(*fam, {{"user", "Hi"}}, true), "<｜User｜>Hi<｜Assistant｜>");
}

TEST(R1Render, OneTurn) {
  EXPECT_EQ(render_ok(TemplateFamily::DeepSeekR1, {{"user", "Hello"}}, true), "<｜User｜>Hello<｜Assistant｜><think>\n");
  EXPECT_EQ(render_ok(TemplateFamily::DeepSeekR1, {{"user", "Hello"}}, false), "<｜User｜>Hello");
}

TEST(R1Render, MultiTurnWithSystemPrompt) {
  const std::vector<Message> msgs = {
      {"system", "You are helpful."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "How are you?"}};
  EXPECT_EQ(render_ok(TemplateFamily::DeepSeekR1, msgs, true),
            "You are helpful.<｜User｜>Hi<｜Assistant｜>Hello!<｜end▁of▁sentence｜><｜User｜>How are you?"
            "<｜Assistant｜><think>\n");
}

TEST(R1Render, LastSystemMessageWinsAndGoesFirst) {
  const std::vector<Message> msgs = {{"system", "A"}, {"user", "u1"}, {"system", "B"}, {"user", "u2"}};
  EXPECT_EQ(render_ok(TemplateFamily::DeepSeekR1, msgs, false), "B<｜User｜>u1<｜User｜>u2");
}

TEST(R1Render, ReasoningStrippedFromAssistantHistory) {
  // content.split('</think>')[-1]: the text after the LAST '</think>', not stripped.
  const std::vector<Message> msgs = {{"user", "2+2?"},
                                     {"assistant", "<think>\nadd them\n</think>\n\nThe answer is 4."},
                                     {"user", "And a</think>b?"},
                                     {"assistant", "x</think>y</think>z"},
                                     {"user", "ok"}};
  EXPECT_EQ(render_ok(TemplateFamily::DeepSeekR1, msgs, true),
            "<｜User｜>2+2?<｜Assistant｜>\n\nThe answer is 4.<｜end▁of▁sentence｜>"
            "<｜User｜>And a</think>b?<｜Assistant｜>z<｜end▁of▁sentence｜><｜User｜>ok<｜Assistant｜><think>\n");
}

TEST(R1Render, StopTexts) {
  const auto stops = stop_texts(TemplateFamily::DeepSeekR1);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0], "<｜end▁of▁sentence｜>");
}

// ---- The conversation of llama.cpp's tests/test-chat-template.cpp ----------

const std::vector<Message> kConversation = {
    {"system", "You are a helpful assistant"}, {"user", "Hello"},
    {"assistant", "Hi there"},                 {"user", "Who are you"},
    {"assistant", "   I am an assistant   "},  {"user", "Another question"},
};

TEST(ChatMLRender, Conversation) {
  // teknium/OpenHermes-2.5-Mistral-7B: {{'<|im_start|>' + message['role'] + '\n' +
  // message['content'] + '<|im_end|>' + '\n'}} ... {{ '<|im_start|>assistant\n' }}
  EXPECT_EQ(render_ok(TemplateFamily::ChatML, kConversation, true),
            "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
            "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(render_ok(TemplateFamily::ChatML, {{"user", "Hi"}}, false), "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(Llama3Render, Conversation) {
  // Meta-Llama-3-8B-Instruct: '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' +
  // message['content'] | trim + '<|eot_id|>'; prompt '<|start_header_id|>assistant<|end_header_id|>\n\n'.
  EXPECT_EQ(render_ok(TemplateFamily::Llama3, kConversation, true),
            "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(Llama2Render, Conversation) {
  // Llama-2-7b-chat-hf: system folded into the first user turn as
  // '<<SYS>>\n' + system + '\n<</SYS>>\n\n' + content; user: bos_token + '[INST] ' +
  // content.strip() + ' [/INST]'; assistant: ' ' + content.strip() + ' ' + eos_token.
  EXPECT_EQ(render_ok(TemplateFamily::Llama2, kConversation, true),
            "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s>"
            "<s>[INST] Who are you [/INST] I am an assistant </s><s>[INST] Another question [/INST]");
  // .strip() applies to the whole folded string: a user's leading space after
  // the <</SYS>> block survives, the trailing one does not.
  EXPECT_EQ(render_ok(TemplateFamily::Llama2, {{"system", "S"}, {"user", " Hi "}}, true),
            "[INST] <<SYS>>\nS\n<</SYS>>\n\n Hi [/INST]");
  EXPECT_EQ(render_ok(TemplateFamily::Llama2, {{"user", " Hi "}}, true), "[INST] Hi [/INST]");
}

TEST(Llama2Render, OrderingErrors) {
  EXPECT_FALSE(render(TemplateFamily::Llama2, std::vector<Message>{{"user", "a"}, {"user", "b"}}, true).ok());
  EXPECT_FALSE(render(TemplateFamily::Llama2, std::vector<Message>{{"assistant", "a"}}, true).ok());
  EXPECT_FALSE(render(TemplateFamily::Llama2, std::vector<Message>{{"system", "s"}}, true).ok());
  EXPECT_FALSE(
      render(TemplateFamily::Llama2, std::vector<Message>{{"user", "a"}, {"system", "s"}, {"user", "b"}}, true).ok());
}

TEST(Phi3Render, Conversation) {
  // Phi-3.5-mini-instruct: '<|system|>\n' + content + '<|end|>\n' (non-empty system only),
  // '<|user|>\n' + content + '<|end|>\n', '<|assistant|>\n' + content + '<|end|>\n' (no strip);
  // then '<|assistant|>\n' if add_generation_prompt else eos_token.
  EXPECT_EQ(render_ok(TemplateFamily::Phi3, kConversation, true),
            "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n"
            "<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n"
            "<|user|>\nAnother question<|end|>\n<|assistant|>\n");
  EXPECT_EQ(render_ok(TemplateFamily::Phi3, {{"system", ""}, {"user", "a"}, {"assistant", "b"}}, false),
            "<|user|>\na<|end|>\n<|assistant|>\nb<|end|>\n<|endoftext|>");
}

TEST(Phi3Render, MatchesTheSharedVocabTemplateForUserTurns) {
  // ggml-vocab-phi-3.gguf: user → '<|user|>' + '\n' + content + '<|end|>' + '\n' +
  // '<|assistant|>' + '\n'; assistant → content + '<|end|>' + '\n'.
  const std::string src = read_chat_template(shared("tokenizer/ggml-vocab-phi-3.gguf"));
  ASSERT_FALSE(src.empty());
  EXPECT_NE(src.find("{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}"),
            std::string::npos);
  auto fam = detect_template(src);
  ASSERT_TRUE(fam.ok());
  EXPECT_EQ(*fam, TemplateFamily::Phi3);
  EXPECT_EQ(render_ok(*fam, {{"user", "Hi"}, {"assistant", "Yo"}, {"user", "Q"}}, true),
            "<|user|>\nHi<|end|>\n<|assistant|>\nYo<|end|>\n<|user|>\nQ<|end|>\n<|assistant|>\n");
}

TEST(GemmaRender, Conversation) {
  // gemma-7b-it: '<start_of_turn>' + ('model' if assistant else role) + '\n' +
  // message['content'] | trim + '<end_of_turn>\n'; prompt '<start_of_turn>model\n'.
  const std::vector<Message> no_system(kConversation.begin() + 1, kConversation.end());
  EXPECT_EQ(render_ok(TemplateFamily::Gemma, no_system, true),
            "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n"
            "<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\nI am an assistant<end_of_turn>\n"
            "<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n");
  // raise_exception('System role not supported') / roles must alternate.
  EXPECT_FALSE(render(TemplateFamily::Gemma, kConversation, true).ok());
  EXPECT_FALSE(render(TemplateFamily::Gemma, std::vector<Message>{{"user", "a"}, {"user", "b"}}, true).ok());
}

// ---- Qwen3 -------------------------------------------------------------------

// Qwen/Qwen3-235B-A22B tokenizer_config.json chat_template, as published on the model page.
std::string qwen3_template() { return read_template("qwen3-235b-a22b.jinja"); }

TEST(Qwen3, Detection) {
  auto fam = detect_template(qwen3_template());
  ASSERT_TRUE(fam.ok());
  EXPECT_EQ(*fam, TemplateFamily::Qwen3);
  EXPECT_FALSE(opens_in_reasoning(*fam, true));
  // The Thinking-2507 models' template differs in the generation prompt, which
  // also opens the reasoning block.
  std::string thinking = qwen3_template();
  const std::string from = "{{- '<|im_start|>assistant\\n' }}";
  const size_t at = thinking.rfind(from);
  ASSERT_NE(at, std::string::npos);
  thinking.replace(at, from.size(), "{{- '<|im_start|>assistant\\n<think>\\n' }}");
  fam = detect_template(thinking);
  ASSERT_TRUE(fam.ok());
  EXPECT_EQ(*fam, TemplateFamily::Qwen3Thinking);
  EXPECT_TRUE(opens_in_reasoning(*fam, true));
  EXPECT_EQ(render_ok(*fam, {{"user", "Q"}}, true), "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n");
}

TEST(Qwen3, ReasoningDroppedBeforeTheLastQuery) {
  // The assistant turn precedes the last user query: '<|im_start|>assistant\n' + content,
  // content = text after '</think>' with leading newlines removed.
  const std::vector<Message> msgs = {
      {"system", "S"}, {"user", "Q1"}, {"assistant", "<think>\nR1\n</think>\n\nA1"}, {"user", "Q2"}};
  EXPECT_EQ(render_ok(TemplateFamily::Qwen3, msgs, true),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
            "<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n");
}

TEST(Qwen3, ReasoningKeptAfterTheLastQuery) {
  // reasoning: before the first '</think>', rstrip('\n'), after the last '<think>',
  // lstrip('\n'), strip('\n') → "R".
  EXPECT_EQ(render_ok(TemplateFamily::Qwen3, {{"user", "Q"}, {"assistant", "<think>\n\nR\n\n</think>\n\nA"}}, false),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nR\n</think>\n\nA<|im_end|>\n");
  // A tool response in a user message is not a query; the last assistant message
  // gets an empty think block, the earlier one without reasoning gets none.
  const std::vector<Message> msgs = {{"user", "Q"},
                                     {"assistant", "A"},
                                     {"user", "<tool_response>x</tool_response>"},
                                     {"assistant", "B"}};
  EXPECT_EQ(render_ok(TemplateFamily::Qwen3, msgs, false),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
            "<|im_start|>user\n<tool_response>x</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\nB<|im_end|>\n");
  // No user message at all: last_query_index is the last message, so nothing is after it.
  EXPECT_EQ(render_ok(TemplateFamily::Qwen3, {{"system", "S"}, {"assistant", "x</think>\ny"}}, false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>assistant\ny<|im_end|>\n");
}

// ---- Common errors, names, detection ---------------------------------------

TEST(Render, BadRolesAndEmptyConversation) {
  for (TemplateFamily f : {TemplateFamily::DeepSeekR1, TemplateFamily::DeepSeekR1Legacy, TemplateFamily::ChatML,
                           TemplateFamily::Qwen3, TemplateFamily::Qwen3Thinking, TemplateFamily::Llama3,
                           TemplateFamily::Llama2, TemplateFamily::Phi3, TemplateFamily::Gemma}) {
    auto bad = render(f, std::vector<Message>{{"user", "a"}, {"tool", "b"}}, true);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("\"tool\""), std::string::npos) << bad.error().message;
    EXPECT_FALSE(render(f, std::vector<Message>{}, true).ok());
    EXPECT_FALSE(stop_texts(f).empty());
  }
}

TEST(Names, RoundTripAndCaseInsensitive) {
  for (TemplateFamily f : {TemplateFamily::DeepSeekR1, TemplateFamily::DeepSeekR1Legacy, TemplateFamily::ChatML,
                           TemplateFamily::Qwen3, TemplateFamily::Qwen3Thinking, TemplateFamily::Llama3,
                           TemplateFamily::Llama2, TemplateFamily::Phi3, TemplateFamily::Gemma}) {
    auto back = template_from_name(template_name(f));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, f);
  }
  EXPECT_EQ(*template_from_name("ChatML"), TemplateFamily::ChatML);
  EXPECT_EQ(*template_from_name("DeepSeek-R1"), TemplateFamily::DeepSeekR1);
  EXPECT_EQ(*template_from_name("LLAMA3"), TemplateFamily::Llama3);
  auto bad = template_from_name("vicuna");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("vicuna"), std::string::npos);
  EXPECT_NE(bad.error().message.find("chatml"), std::string::npos);
  EXPECT_NE(bad.error().message.find("llama2"), std::string::npos);
}

TEST(Detect, RealTemplates) {
  // tests/chat/templates/: sources as published in each model's tokenizer_config.json.
  const std::pair<const char*, TemplateFamily> cases[] = {
      {"openhermes-2.5-chatml.jinja", TemplateFamily::ChatML},
      {"llama-3-8b-instruct.jinja", TemplateFamily::Llama3},
      {"llama-2-7b-chat.jinja", TemplateFamily::Llama2},
      {"gemma-7b-it.jinja", TemplateFamily::Gemma},
      {"phi-3.5-mini-instruct.jinja", TemplateFamily::Phi3},
      {"qwen3-235b-a22b.jinja", TemplateFamily::Qwen3},
  };
  for (const auto& [file, family] : cases) {
    const std::string src = read_template(file);
    ASSERT_FALSE(src.empty()) << file;
    auto got = detect_template(src);
    ASSERT_TRUE(got.ok()) << file << ": " << got.error().message;
    EXPECT_EQ(*got, family) << file;
  }
}

TEST(Detect, UnknownTemplateErrorQuotesAndLists) {
  const std::string mistral =
      "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
      "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + "
      "eos_token}}{% endif %}{% endfor %}";
  auto r = detect_template(mistral);
  ASSERT_FALSE(r.ok());
  const std::string& msg = r.error().message;
  EXPECT_NE(msg.find("{{ bos_token }}{% for message in messages %}"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("eos_token}}{% endif %}{% endfor %}"), std::string::npos) << "quotes only the start";
  for (const char* name : {"deepseek-r1", "chatml", "llama3", "llama2"}) {
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
  }
  EXPECT_FALSE(detect_template("").ok());
}

TEST(PythonStrip, UnicodeWhitespace) {
  EXPECT_EQ(python_strip("  \t\n x y \r\n\v\f"), "x y");
  EXPECT_EQ(python_strip("\xe3\x80\x80x\xc2\xa0"), "x");            // U+3000 ... U+00A0
  EXPECT_EQ(python_strip("\xe2\x80\x8bx\xe2\x80\x8b"), "\xe2\x80\x8bx\xe2\x80\x8b");  // U+200B is not whitespace
  EXPECT_EQ(python_strip("\xe2\x80\x80\xe2\x80\x8a"), "");          // U+2000, U+200A
  EXPECT_EQ(python_strip("caf\xc3\xa9 "), "caf\xc3\xa9");
  EXPECT_EQ(python_strip(""), "");
  EXPECT_EQ(python_strip("   "), "");
  EXPECT_EQ(python_strip("\xc2"), "\xc2");  // truncated UTF-8 is left alone
}

}  // namespace
}  // namespace dhi::chat

namespace dhi::chat {
namespace {

std::string continuation_ok(TemplateFamily f, const AssistantPrefix& p, bool* in_reasoning = nullptr) {
  const std::vector<Message> msgs = {{"user", "Hi"}};
  auto c = render_continuation(f, msgs, p);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  if (!c.ok()) return "";
  if (in_reasoning) *in_reasoning = c->in_reasoning;
  return c->text;
}

// The open assistant turn of a continuation: what the model would have seen
// had it generated the partial answer itself, with no end-of-turn.
TEST(Continuation, R1ReasoningThenContent) {
  bool in_reasoning = false;
  EXPECT_EQ(continuation_ok(TemplateFamily::DeepSeekR1, {"Let me", ""}, &in_reasoning),
            "<｜User｜>Hi<｜Assistant｜><think>\nLet me");
  EXPECT_TRUE(in_reasoning);
  EXPECT_EQ(continuation_ok(TemplateFamily::DeepSeekR1, {"think.\n", "The ans"}, &in_reasoning),
            "<｜User｜>Hi<｜Assistant｜><think>\nthink.\n</think>\n\nThe ans");
  EXPECT_FALSE(in_reasoning);
  EXPECT_EQ(continuation_ok(TemplateFamily::DeepSeekR1, {"", ""}, &in_reasoning),
            "<｜User｜>Hi<｜Assistant｜><think>\n");
  EXPECT_TRUE(in_reasoning);
  // Raw output (reasoning_format "none") repeats the opened block: written once.
  EXPECT_EQ(continuation_ok(TemplateFamily::DeepSeekR1, {"", "<think>\nabc"}),
            "<｜User｜>Hi<｜Assistant｜><think>\nabc");
}

TEST(Continuation, FamiliesWithoutAnOpenBlock) {
  bool in_reasoning = true;
  EXPECT_EQ(continuation_ok(TemplateFamily::ChatML, {"", "Hel"}, &in_reasoning),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHel");
  EXPECT_FALSE(in_reasoning);
  EXPECT_EQ(continuation_ok(TemplateFamily::DeepSeekR1Legacy, {"\nhmm", ""}, &in_reasoning),
            "<｜User｜>Hi<｜Assistant｜><think>\nhmm");
  EXPECT_TRUE(in_reasoning);
}

}  // namespace
}  // namespace dhi::chat
