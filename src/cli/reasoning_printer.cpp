#include "cli/reasoning_printer.h"

#include <cstdio>

#include "cli/common.h"

namespace dhi::cli {
namespace {

constexpr const char* kDim = "\033[2m";
constexpr const char* kReset = "\033[0m";

}  // namespace

ReasoningMode parse_reasoning_mode(std::string_view name) {
  if (name == "show") return ReasoningMode::Show;
  if (name == "dim") return ReasoningMode::Dim;
  if (name == "hide") return ReasoningMode::Hide;
  return stdout_is_terminal() ? ReasoningMode::Dim : ReasoningMode::Show;
}

ReasoningPrinter::ReasoningPrinter(ReasoningMode mode, bool starts_in_reasoning, bool print)
    : mode_(mode), print_(print), parser_(starts_in_reasoning) {}

void ReasoningPrinter::out(std::string_view s) const {
  if (!print_) return;
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

void ReasoningPrinter::print_delta(const chat::ReasoningParser::Delta& d) {
  reasoning_ += d.reasoning;
  content_ += d.content;
  if (!d.reasoning.empty() && mode_ != ReasoningMode::Hide) {
    if (!in_reasoning_block_) {
      out(mode_ == ReasoningMode::Dim ? kDim : "<think>\n");
      in_reasoning_block_ = true;
    }
    out(d.reasoning);
  }
  if (!d.content.empty()) {
    if (in_reasoning_block_) {
      out(mode_ == ReasoningMode::Dim ? std::string(kReset) + "\n\n" : "\n</think>\n\n");
      in_reasoning_block_ = false;
    }
    out(d.content);
  }
}

void ReasoningPrinter::push(std::string_view text) { print_delta(parser_.push(text)); }

void ReasoningPrinter::finish() {
  print_delta(parser_.flush());
  if (in_reasoning_block_) {
    out(mode_ == ReasoningMode::Dim ? kReset : "\n</think>");
    in_reasoning_block_ = false;
  }
}

}  // namespace dhi::cli
