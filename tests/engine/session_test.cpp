// Generation sessions on the real stories260K model: golden greedy tokens, prefix
// reuse between calls, max tokens, a full context, cancellation and stop strings.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/session.h"
#include "gguf/reader.h"
#include "model/context.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace dhi::engine {
namespace {

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = DHI_SHARED_DIR;
    auto f = gguf::GgufFile::open(dir + "/models/stories260K.gguf");
    ASSERT_TRUE(f.ok()) << f.error().message;
    file_ = std::make_unique<gguf::GgufFile>(std::move(f).value());
    auto m = model::Model::load(*file_);
    ASSERT_TRUE(m.ok()) << m.error().message;
    model_ = std::move(m).value();
    auto t = tok::Tokenizer::from_gguf(*file_);
    ASSERT_TRUE(t.ok()) << t.error().message;
    tk_ = std::make_unique<tok::Tokenizer>(std::move(t).value());
    std::ifstream g(dir + "/models/stories260K.golden.json");
    std::stringstream ss;
    ss << g.rdbuf();
    golden_ = nlohmann::json::parse(ss.str())["cases"][0];
  }

  std::unique_ptr<model::Context> context(uint32_t n_ctx = 256) {
    model::ContextParams p;
    p.n_ctx = n_ctx;
    p.n_threads = 2;
    auto c = model::Context::create(*model_, p);
    EXPECT_TRUE(c.ok()) << c.error().message;
    return std::move(c).value();
  }

  static GenerateParams greedy(int32_t n) {
    GenerateParams p;
    p.max_tokens = n;
    p.sampling.temperature = 0;
    return p;
  }

  std::vector<int32_t> prompt() const { return golden_["prompt_ids"].get<std::vector<int32_t>>(); }
  std::vector<int32_t> expected() const {
    return golden_["generated_ids"].get<std::vector<int32_t>>();
  }

  std::unique_ptr<gguf::GgufFile> file_;
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<tok::Tokenizer> tk_;
  nlohmann::json golden_;
};

TEST_F(SessionTest, GreedyMatchesGoldenAndStreamsText) {
  auto ctx = context();
  Session s(*ctx, *tk_);
  std::string streamed;
  auto r = s.generate(prompt(), greedy(48), [&](std::string_view t) { streamed += t; });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tokens, expected());
  EXPECT_EQ(r->text, golden_["continuation"].get<std::string>());
  EXPECT_EQ(streamed, r->text);
  EXPECT_EQ(r->finish_reason, FinishReason::Length);
  EXPECT_EQ(r->timings.prompt_tokens, 5);
  EXPECT_EQ(r->timings.gen_tokens, 48);
}

TEST_F(SessionTest, PrefixReuseGivesSameTokens) {
  auto ctx = context();
  Session s(*ctx, *tk_);
  // First 20 tokens; then the prompt extended by them continues as one long run would.
  auto first = s.generate(prompt(), greedy(20));
  ASSERT_TRUE(first.ok());
  std::vector<int32_t> extended = prompt();
  extended.insert(extended.end(), first->tokens.begin(), first->tokens.end());
  auto second = s.generate(extended, greedy(28));
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_GE(second->timings.prompt_cached, 5 + 19 - 1);
  EXPECT_LE(second->timings.prompt_tokens, 2);
  std::vector<int32_t> all = first->tokens;
  all.insert(all.end(), second->tokens.begin(), second->tokens.end());
  EXPECT_EQ(all, expected());

  // A different prompt drops the cache beyond the common prefix and still matches.
  auto again = s.generate(prompt(), greedy(48));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->tokens, expected());
}

TEST_F(SessionTest, ContextFullStops) {
  auto ctx = context(16);
  Session s(*ctx, *tk_);
  auto r = s.generate(prompt(), greedy(100));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->finish_reason, FinishReason::ContextFull);
  EXPECT_EQ(r->tokens.size(), 16u - 5u + 1u);  // the last token is sampled but not evaluated
  std::vector<int32_t> golden = expected();
  golden.resize(12);
  EXPECT_EQ(golden, r->tokens);
}

TEST_F(SessionTest, PromptTooLongIsAnError) {
  auto ctx = context(8);
  Session s(*ctx, *tk_);
  std::vector<int32_t> long_prompt(8, 403);
  auto r = s.generate(long_prompt, greedy(4));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("context"), std::string::npos);
}

TEST_F(SessionTest, CancelStopsBeforeFirstToken) {
  auto ctx = context();
  Session s(*ctx, *tk_);
  std::atomic<bool> cancel{true};
  auto p = greedy(10);
  p.cancel = &cancel;
  auto r = s.generate(prompt(), p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish_reason, FinishReason::Cancelled);
  EXPECT_TRUE(r->tokens.empty());
}

TEST_F(SessionTest, StopStringEndsAndIsNotEmitted) {
  auto ctx = context();
  Session s(*ctx, *tk_);
  auto p = greedy(48);
  p.stop = {"girl"};
  auto r = s.generate(prompt(), p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text, ", there was a little ");
  EXPECT_EQ(r->finish_reason, FinishReason::Stop);
}

}  // namespace
}  // namespace dhi::engine
