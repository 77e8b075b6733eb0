// ReasoningParser: scripted streams, and every two- and three-way chunking of
// sample streams (plus byte-by-byte) must give the same split as one push.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chat/reasoning.h"

namespace dhi::chat {
namespace {

struct Split {
  std::string reasoning;
  std::string content;
  bool operator==(const Split&) const = default;
};

void add(Split& s, const ReasoningParser::Delta& d) {
  s.reasoning += d.reasoning;
  s.content += d.content;
}

Split run_chunks(bool starts_in_reasoning, const std::vector<std::string>& chunks) {
  ReasoningParser p(starts_in_reasoning);
  Split s;
  for (const std::string& c : chunks) add(s, p.push(c));
  add(s, p.flush());
  return s;
}

Split run_whole(bool starts, const std::string& text) { return run_chunks(starts, {text}); }

// Checks that every split of `text` into 1, 2 and 3 chunks and byte-by-byte
// gives `expected`.
void expect_all_chunkings(bool starts, const std::string& text, const Split& expected) {
  EXPECT_EQ(run_whole(starts, text), expected);
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  EXPECT_EQ(run_chunks(starts, bytes), expected) << "byte by byte";
  for (size_t i = 0; i <= text.size(); ++i) {
    ASSERT_EQ(run_chunks(starts, {text.substr(0, i), text.substr(i)}), expected) << "split at " << i;
    for (size_t j = i; j <= text.size(); ++j) {
      ASSERT_EQ(run_chunks(starts, {text.substr(0, i), text.substr(i, j - i), text.substr(j)}), expected)
          << "split at " << i << "," << j;
    }
  }
}

TEST(Reasoning, R1OutputWhenPromptOpenedTheBlock) {
  // The prompt ended with "<think>\n"; R1 writes the reasoning, "</think>", then "\n\n" and the answer.
  expect_all_chunkings(true, "Okay, 2+2 is 4.\n</think>\n\nThe answer is **4**.",
                       {"Okay, 2+2 is 4.\n", "The answer is **4**."});
}

TEST(Reasoning, ModelOpensTheBlockItself) {
  expect_all_chunkings(false, "<think>\nhmm <b> and </thin k>\n</think>\n \tAnswer </think> stays",
                       {"\nhmm <b> and </thin k>\n", "Answer </think> stays"});
  // Whitespace before the open tag is dropped with it.
  expect_all_chunkings(false, "\n\n<think>r</think>c", {"r", "c"});
}

TEST(Reasoning, NoBlockAtAllIsContent) {
  expect_all_chunkings(false, "Hello <think>not reasoning</think> world", {"", "Hello <think>not reasoning</think> world"});
  expect_all_chunkings(false, "  <thi", {"", "  <thi"});  // stream ended inside a would-be tag
  expect_all_chunkings(false, "<thinking>x", {"", "<thinking>x"});
}

TEST(Reasoning, UnclosedBlockIsAllReasoning) {
  expect_all_chunkings(true, "still thinking </thi", {"still thinking </thi", ""});
  expect_all_chunkings(false, "<think>abc", {"abc", ""});
}

TEST(Reasoning, OnlyWhitespaceAfterClose) {
  expect_all_chunkings(true, "r</think>\n\n", {"r", ""});
  expect_all_chunkings(true, "</think>", {"", ""});
}

TEST(Reasoning, HoldsBackOnlyWhatCouldBeATag) {
  ReasoningParser p(true);
  auto d = p.push("abc</th");
  EXPECT_EQ(d.reasoning, "abc");  // "</th" is held
  EXPECT_EQ(d.content, "");
  d = p.push("ank you");  // not a tag after all
  EXPECT_EQ(d.reasoning, "</thank you");
  d = p.push("</think>");
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "");
  d = p.push("\n");
  EXPECT_EQ(d.content, "");  // trimmed
  d = p.push("\nHi");
  EXPECT_EQ(d.content, "Hi");
  d = p.push(" there\n");
  EXPECT_EQ(d.content, " there\n");  // only the whitespace right after </think> is trimmed
  d = p.flush();
  EXPECT_EQ(d.reasoning, "");
  EXPECT_EQ(d.content, "");
}

TEST(Reasoning, CustomTags) {
  ReasoningParser p(false, "[R]", "[/R]");
  Split s;
  add(s, p.push("[R]a[/"));
  add(s, p.push("R] b"));
  add(s, p.flush());
  EXPECT_EQ(s, (Split{"a", "b"}));
}

TEST(Reasoning, Utf8TextPassesThroughUnchanged) {
  expect_all_chunkings(true, "思考 é</think>\n答え ✓", {"思考 é", "答え ✓"});
}

}  // namespace
}  // namespace dhi::chat
