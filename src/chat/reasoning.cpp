// ReasoningParser: a small state machine over a held-back buffer. See reasoning.h.
#include "chat/reasoning.h"

#include <algorithm>
#include <utility>

namespace dhi::chat {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Length of the longest suffix of `text` that is a proper prefix of `tag`.
size_t partial_tag_suffix(std::string_view text, std::string_view tag) {
  const size_t max_len = std::min(text.size(), tag.empty() ? size_t{0} : tag.size() - 1);
  for (size_t len = max_len; len > 0; --len) {
    if (text.substr(text.size() - len) == tag.substr(0, len)) return len;
  }
  return 0;
}

}  // namespace

ReasoningParser::ReasoningParser(bool starts_in_reasoning, std::string open_tag, std::string close_tag)
    : open_tag_(std::move(open_tag)),
      close_tag_(std::move(close_tag)),
      state_(starts_in_reasoning ? State::Reasoning : State::Start) {
  // An empty tag could never be told apart from no tag: treat the block as
  // never opening (empty open tag) or never closing (empty close tag).
  if (open_tag_.empty() && state_ == State::Start) state_ = State::Content;
}

ReasoningParser::Delta ReasoningParser::push(std::string_view text) {
  Delta out;
  pending_.append(text);
  run(out);
  return out;
}

void ReasoningParser::run(Delta& out) {
  for (;;) {
    switch (state_) {
      case State::Start: {
        size_t ws = 0;
        while (ws < pending_.size() && is_space(pending_[ws])) ++ws;
        const std::string_view rest = std::string_view(pending_).substr(ws);
        if (rest.size() >= open_tag_.size() && rest.substr(0, open_tag_.size()) == open_tag_) {
          pending_.erase(0, ws + open_tag_.size());
          state_ = State::Reasoning;
          continue;
        }
        if (rest.size() < open_tag_.size() && std::string_view(open_tag_).substr(0, rest.size()) == rest) {
          return;  // still could be the open tag (or only whitespace so far)
        }
        state_ = State::Content;
        continue;
      }
      case State::Reasoning: {
        if (close_tag_.empty()) {
          out.reasoning += pending_;
          pending_.clear();
          return;
        }
        const size_t close = pending_.find(close_tag_);
        if (close != std::string::npos) {
          out.reasoning.append(pending_, 0, close);
          pending_.erase(0, close + close_tag_.size());
          state_ = State::AfterClose;
          continue;
        }
        const size_t hold = partial_tag_suffix(pending_, close_tag_);
        out.reasoning.append(pending_, 0, pending_.size() - hold);
        pending_.erase(0, pending_.size() - hold);
        return;
      }
      case State::AfterClose: {
        size_t ws = 0;
        while (ws < pending_.size() && is_space(pending_[ws])) ++ws;
        pending_.erase(0, ws);
        if (pending_.empty()) return;
        state_ = State::Content;
        continue;
      }
      case State::Content:
        out.content += pending_;
        pending_.clear();
        return;
    }
  }
}

ReasoningParser::Delta ReasoningParser::flush() {
  Delta out;
  switch (state_) {
    case State::Start:
    case State::Content: out.content = std::move(pending_); break;
    case State::Reasoning: out.reasoning = std::move(pending_); break;
    case State::AfterClose: break;  // only trimmed whitespace was held
  }
  pending_.clear();
  return out;
}

}  // namespace dhi::chat
