// Chat templates rendered natively. A GGUF model carries its chat format as a
// Jinja program (`tokenizer.chat_template`); rather than embed a Jinja engine we
// recognise the family from the template source and render what that Jinja
// program renders, byte for byte, for plain system/user/assistant messages.
// Tool calls and tool messages are not supported (the caller gets an error).
//
// The rendered text never starts with the BOS token's text even where the Jinja
// source prints `bos_token` first: the caller encodes the prompt with the model's
// own add-BOS rule. Special tokens appear as their text (`<|im_start|>`), so the
// caller must tokenize with special-token parsing on.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.h"

namespace dhi::chat {

enum class TemplateFamily {
  DeepSeekR1,        // R1 distills, current template: generation prompt "<｜Assistant｜><think>\n"
  DeepSeekR1Legacy,  // R1 distills, first (January 2025) template: generation prompt "<｜Assistant｜>"
  ChatML,            // <|im_start|>role\n...<|im_end|>\n (Qwen2/2.5, OpenHermes, ...)
  Qwen3,             // ChatML with Qwen3's reasoning handling in assistant history
  Qwen3Thinking,     // Qwen3 "Thinking-2507": as Qwen3, generation prompt also opens "<think>\n"
  Llama3,            // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
  Llama2,            // [INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST]
  Phi3,              // <|user|>\n...<|end|>\n<|assistant|>\n
  Gemma,             // <start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n
};

struct Message {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// Recognises the family from a model's `tokenizer.chat_template` source. An
// unknown template is an error quoting its start and listing the known families.
Expected<TemplateFamily> detect_template(std::string_view jinja_source);

// Family from a user-given name ("deepseek-r1", "chatml", "llama3", "llama2",
// ...; case-insensitive), for `--chat-template NAME`.
Expected<TemplateFamily> template_from_name(std::string_view name);

std::string_view template_name(TemplateFamily family);

// Renders the conversation as the family's Jinja template does (less the leading
// BOS text). `add_generation_prompt` appends the opening of an assistant turn.
// Unknown roles (tool messages included) and an empty conversation are errors,
// as are the orders the template itself rejects (Llama 2 and Gemma require
// user/assistant alternation) and, there, system messages the template would
// drop or print as an untrained turn (Llama 2: any but a first one followed by a
// user turn; Gemma: any).
Expected<std::string> render(TemplateFamily family, std::span<const Message> messages,
                             bool add_generation_prompt);

// True when the rendered generation prompt already opens a reasoning block
// ("<｜Assistant｜><think>\n", "<|im_start|>assistant\n<think>\n"), so the model's
// output starts inside reasoning.
bool opens_in_reasoning(TemplateFamily family, bool add_generation_prompt);

// The partly generated answer a continuation request ends with (DeepSeek's
// trailing assistant message with "prefix": true): its reasoning and content.
struct AssistantPrefix {
  std::string reasoning;
  std::string content;
};

struct Continuation {
  std::string text;           // the prompt: conversation, open assistant turn, partial answer
  bool in_reasoning = false;  // generation continues inside the reasoning block
};

// Renders `messages` with the generation prompt and then the partial answer,
// with no end-of-turn, so that generation continues it. The reasoning goes
// inside the family's <think> block ("<think>" is written unless the
// generation prompt opened it), closed by "</think>\n\n" once content follows.
// Content that arrives raw (reasoning_format "none") still holds the block's
// opening "<think>\n", which the R1 generation prompt already wrote: it is
// written once.
Expected<Continuation> render_continuation(TemplateFamily family, std::span<const Message> messages,
                                           const AssistantPrefix& prefix);

// End-of-turn texts of the family, for use as stop strings in case the
// tokenizer does not mark the corresponding tokens as end-of-generation.
std::vector<std::string> stop_texts(TemplateFamily family);

// Python's str.strip() (which Jinja's `trim` filter and `.strip()` call): removes
// leading and trailing Unicode whitespace from UTF-8 text. Exposed for tests.
std::string_view python_strip(std::string_view text);

}  // namespace dhi::chat
