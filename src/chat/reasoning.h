// Streaming split of a reasoning model's output into reasoning and content.
// R1-style models write "<think>\n...reasoning...</think>\n\nanswer"; newer R1
// templates already put "<think>\n" in the prompt, so the output starts inside
// the reasoning block. Text arrives token by token, so a tag may be split across
// any number of pushes: the parser holds back the bytes that could still become
// a tag and decides once they can't. The result for a stream never depends on
// how it was chunked.
#pragma once

#include <string>
#include <string_view>

namespace dhi::chat {

class ReasoningParser {
 public:
  struct Delta {
    std::string reasoning;
    std::string content;
  };

  // `starts_in_reasoning`: the prompt already opened the reasoning block (see
  // opens_in_reasoning in chat/template.h). Otherwise a reasoning block is
  // recognised only when the output opens with `open_tag` (after optional
  // whitespace); without it everything is content, and an open tag later in
  // the answer is ordinary content text.
  explicit ReasoningParser(bool starts_in_reasoning, std::string open_tag = "<think>",
                           std::string close_tag = "</think>");

  // Feeds the next piece of output; returns what is now decided.
  Delta push(std::string_view text);
  // End of output: releases everything held back (a partial tag is plain text).
  Delta flush();

 private:
  enum class State {
    Start,       // nothing decided yet: pending_ is whitespace plus a prefix of open_tag_
    Reasoning,   // inside the block: pending_ is a prefix of close_tag_
    AfterClose,  // just closed: leading whitespace of the content is dropped
    Content,     // everything is content
  };

  void run(Delta& out);

  std::string open_tag_;
  std::string close_tag_;
  State state_;
  std::string pending_;
};

}  // namespace dhi::chat
