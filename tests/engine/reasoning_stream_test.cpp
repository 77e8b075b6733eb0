// The R1 reasoning/answer split on a scripted token stream: token ids from the
// real DeepSeek-R1-Distill vocabulary go through the streaming detokenizer and the
// reasoning parser one token at a time, as they do during generation.
#include <gtest/gtest.h>

#include "chat/reasoning.h"
#include "chat/template.h"
#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"

namespace dhi {
namespace {

struct Split {
  std::string reasoning, content;
};

Split stream(const tok::Tokenizer& tk, const std::vector<int32_t>& ids, bool starts_in_reasoning) {
  tok::StreamDecoder decoder(tk);
  chat::ReasoningParser parser(starts_in_reasoning);
  Split s;
  auto take = [&](const chat::ReasoningParser::Delta& d) {
    s.reasoning += d.reasoning;
    s.content += d.content;
  };
  for (int32_t id : ids) {
    if (tk.is_eog(id)) break;
    take(parser.push(decoder.push(id)));
  }
  take(parser.push(decoder.flush()));
  take(parser.flush());
  return s;
}

class ReasoningStream : public ::testing::Test {
 protected:
  void SetUp() override {
    auto f = gguf::GgufFile::open(std::string(DHI_SHARED_DIR) +
                                  "/tokenizer/ggml-vocab-deepseek-r1-qwen.gguf");
    ASSERT_TRUE(f.ok()) << f.error().message;
    file_ = std::make_unique<gguf::GgufFile>(std::move(f).value());
    auto t = tok::Tokenizer::from_gguf(*file_);
    ASSERT_TRUE(t.ok()) << t.error().message;
    tk_ = std::make_unique<tok::Tokenizer>(std::move(t).value());
  }
  std::unique_ptr<gguf::GgufFile> file_;
  std::unique_ptr<tok::Tokenizer> tk_;
};

TEST_F(ReasoningStream, TemplateOpenedThink) {
  // The current R1 template ends the prompt with "<｜Assistant｜><think>\n", so the
  // model's first token is already reasoning.
  auto family = chat::template_from_name("deepseek-r1");
  ASSERT_TRUE(family.ok());
  ASSERT_TRUE(chat::opens_in_reasoning(*family, true));

  const std::string reasoning = "Okay, 2+2: 二加二 is four 🙂. Check: 4-2=2.\n";
  const std::string answer = "The answer is **4**.";
  std::vector<int32_t> ids = tk_->encode(reasoning + "</think>\n\n" + answer, false, true);
  ASSERT_NE(std::find(ids.begin(), ids.end(), 151649), ids.end());  // </think> is one token
  ids.push_back(tk_->eos());
  ids.push_back(tk_->find_token("Ignored").value_or(0));  // nothing after EOS is read

  Split s = stream(*tk_, ids, true);
  EXPECT_EQ(s.reasoning, reasoning);
  EXPECT_EQ(s.content, answer);
}

TEST_F(ReasoningStream, ModelOpensThink) {
  // The first R1 template did not open the block: the model emits <think> itself.
  const std::string text = "<think>\nhmm, short.\n</think>\n\nYes.";
  std::vector<int32_t> ids = tk_->encode(text, false, true);
  EXPECT_EQ(ids.front(), 151648);
  Split s = stream(*tk_, ids, false);
  EXPECT_EQ(s.reasoning, "\nhmm, short.\n");
  EXPECT_EQ(s.content, "Yes.");
}

TEST_F(ReasoningStream, NoReasoningIsAllContent) {
  std::vector<int32_t> ids = tk_->encode("Just an answer, no <think> here.", false, false);
  Split s = stream(*tk_, ids, false);
  EXPECT_EQ(s.reasoning, "");
  EXPECT_EQ(s.content, "Just an answer, no <think> here.");
}

TEST_F(ReasoningStream, UnfinishedReasoningStaysReasoning) {
  // Generation cut off by max tokens inside the block: nothing leaks into the answer.
  std::vector<int32_t> ids = tk_->encode("still thinking about </thi", false, true);
  Split s = stream(*tk_, ids, true);
  EXPECT_EQ(s.reasoning, "still thinking about </thi");
  EXPECT_EQ(s.content, "");
}

}  // namespace
}  // namespace dhi
