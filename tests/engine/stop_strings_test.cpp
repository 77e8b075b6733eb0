// StopStringMatcher: scripted streams and every chunking (one push, byte by
// byte, every split into two and three pieces) must agree.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/stop_strings.h"

namespace dhi::engine {
namespace {

struct Outcome {
  std::string text;  // everything emitted, flush included
  bool stopped = false;
  bool operator==(const Outcome&) const = default;
};

Outcome run_chunks(const std::vector<std::string>& stops, const std::vector<std::string>& chunks) {
  StopStringMatcher m(stops);
  Outcome o;
  for (const std::string& c : chunks) {
    auto r = m.push(c);
    if (o.stopped) {
      EXPECT_TRUE(r.emit.empty()) << "emitted after the stop";
    }
    o.text += r.emit;
    o.stopped = o.stopped || r.stopped;
  }
  o.text += m.flush();
  return o;
}

void expect_all_chunkings(const std::vector<std::string>& stops, const std::string& text, const Outcome& expected) {
  EXPECT_EQ(run_chunks(stops, {text}), expected);
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  EXPECT_EQ(run_chunks(stops, bytes), expected) << "byte by byte";
  for (size_t i = 0; i <= text.size(); ++i) {
    ASSERT_EQ(run_chunks(stops, {text.substr(0, i), text.substr(i)}), expected) << "split at " << i;
    for (size_t j = i; j <= text.size(); ++j) {
      ASSERT_EQ(run_chunks(stops, {text.substr(0, i), text.substr(i, j - i), text.substr(j)}), expected)
          << "split at " << i << "," << j;
    }
  }
}

TEST(StopStrings, StopsBeforeTheStopString) {
  expect_all_chunkings({"<|im_end|>"}, "Hello there!<|im_end|>ignored", {"Hello there!", true});
  expect_all_chunkings({"\n\nUser:"}, "a\nb\n\nUse\n\nUser: x", {"a\nb\n\nUse", true});
}

TEST(StopStrings, NoStopEmitsEverything) {
  expect_all_chunkings({"STOP"}, "no stop here, ST, STO, S", {"no stop here, ST, STO, S", false});
  expect_all_chunkings({}, "anything", {"anything", false});
  expect_all_chunkings({""}, "empty stops are ignored", {"empty stops are ignored", false});
}

TEST(StopStrings, EarliestCompletionWins) {
  // "bc" completes (at byte 3) before "abcd" does (byte 4), whatever the chunking.
  expect_all_chunkings({"abcd", "bc"}, "xabcd", {"xa", true});
  // Both complete at the same byte: the one that starts earlier wins.
  expect_all_chunkings({"bc", "abc"}, "xabc", {"x", true});
  // Overlapping prefixes: "aab" inside "aaab".
  expect_all_chunkings({"aab"}, "aaaab!", {"aa", true});
}

TEST(StopStrings, HoldsBackPossiblePrefixes) {
  StopStringMatcher m({"</s>", "###"});
  auto r = m.push("text </");
  EXPECT_EQ(r.emit, "text ");
  EXPECT_FALSE(r.stopped);
  r = m.push("x #");
  EXPECT_EQ(r.emit, "</x ");
  r = m.push("#");
  EXPECT_EQ(r.emit, "");
  r = m.push("#tail");
  EXPECT_EQ(r.emit, "");
  EXPECT_TRUE(r.stopped);
  EXPECT_TRUE(m.stopped());
  r = m.push("more");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.emit, "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopStrings, FlushReleasesAPartialStop) {
  StopStringMatcher m({"<|eot_id|>"});
  EXPECT_EQ(m.push("done<|eot").emit, "done");
  EXPECT_EQ(m.flush(), "<|eot");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopStrings, MultiByteStops) {
  expect_all_chunkings({"<｜end▁of▁sentence｜>"}, "答え<｜end▁of▁sentence｜>", {"答え", true});
}

}  // namespace
}  // namespace dhi::engine
