// Prints a model's streamed output to stdout, separating R1-style <think>
// reasoning from the answer: shown with its tags, dimmed, or hidden.
#pragma once

#include <string>
#include <string_view>

#include "chat/reasoning.h"

namespace dhi::cli {

enum class ReasoningMode { Show, Dim, Hide };
// "auto" dims on a terminal and shows (with tags) otherwise.
ReasoningMode parse_reasoning_mode(std::string_view name);

class ReasoningPrinter {
 public:
  // With print=false nothing is written; the split text is only collected.
  ReasoningPrinter(ReasoningMode mode, bool starts_in_reasoning, bool print = true);
  void push(std::string_view text);
  void finish();

  const std::string& reasoning() const { return reasoning_; }
  const std::string& content() const { return content_; }

 private:
  void print_delta(const chat::ReasoningParser::Delta& d);
  void out(std::string_view s) const;

  ReasoningMode mode_;
  bool print_;
  chat::ReasoningParser parser_;
  std::string reasoning_;
  std::string content_;
  bool in_reasoning_block_ = false;  // a reasoning block is open on screen
};

}  // namespace dhi::cli
