// A model with the real DeepSeek-R1-Distill-Qwen vocabulary and chat template but
// tiny random weights, generated with the project's GGUF writer, driven through the
// `dhi` executable: template rendering, special tokens in the prompt, the
// reasoning split in the output, and multi-turn chat reusing the KV cache.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "gguf/reader.h"
#include "model/synth.h"
#include "model/test_util.h"
#include "run_command.h"

namespace dhi::test {
namespace {

class R1RandomModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto vocab = gguf::GgufFile::open(shared_dir() + "/tokenizer/ggml-vocab-deepseek-r1-qwen.gguf");
    ASSERT_TRUE(vocab.ok()) << vocab.error().message;
    // Room for CtrlCStopsGenerationCleanly's long context.
    const model::SynthSpec spec = model::test::tiny_r1_spec(*vocab, 262144);
    auto writer = model::synth_model(spec);
    ASSERT_TRUE(writer.ok()) << writer.error().message;
    path_ = new std::string(::testing::TempDir() + "/dhi_r1_random_" + std::to_string(getpid()) +
                            ".gguf");
    auto st = writer->write_file(*path_);
    ASSERT_TRUE(st.ok()) << st.error().message;
  }
  static void TearDownTestSuite() {
    if (path_) std::remove(path_->c_str());
    delete path_;
    path_ = nullptr;
  }
  static std::string model() { return shell_quote(*path_); }
  static std::string* path_;
};
std::string* R1RandomModel::path_ = nullptr;

TEST_F(R1RandomModel, CtrlCStopsGenerationCleanly) {
  // A context far beyond what 3 s of generation fills (and within the model's
  // training context); SIGINT (what Ctrl-C sends) must end generation at the
  // next token with a normal exit and output. 3 s, not less: a loaded machine
  // may still be setting up the 200K-token cache at 1.5 s.
  std::string out = ::testing::TempDir() + "/dhi_sigint_" + std::to_string(getpid()) + ".json";
  std::string cmd = "timeout --preserve-status -s INT 3 " + dhi_binary() + " run -m " + model() +
                    " --raw --json -p 'Once upon a time' -n -1 --ctx 200000 --temp 0.8 --seed 1 >" + out +
                    " 2>/dev/null";
  int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  auto j = nlohmann::json::parse(read_file(out));
  EXPECT_EQ(j["finish_reason"], "cancelled");
  EXPECT_GT(j["tokens"].size(), 0u);
  std::remove(out.c_str());
}

TEST_F(R1RandomModel, RunAppliesTheChatTemplate) {
  auto r = run_dhi("run -m " + model() + " -p 'What is 2+2?' -n 12 --temp 0 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  std::vector<int32_t> prompt = j["prompt_tokens"];
  ASSERT_GE(prompt.size(), 6u);
  EXPECT_EQ(prompt[0], 151646);  // <｜begin▁of▁sentence｜> (add_bos)
  EXPECT_EQ(prompt[1], 151644);  // <｜User｜>
  // The generation prompt: <｜Assistant｜><think>\n
  EXPECT_EQ(prompt[prompt.size() - 3], 151645);
  EXPECT_EQ(prompt[prompt.size() - 2], 151648);
  EXPECT_EQ(j["tokens"].size(), 12u);
  // The template opened <think>: random output that never closes it is all reasoning.
  EXPECT_TRUE(j["reasoning"].is_string());
  std::vector<int32_t> out = j["tokens"];
  if (std::find(out.begin(), out.end(), 151649) == out.end()) {
    EXPECT_EQ(j["text"], "");
    EXPECT_FALSE(j["reasoning"].get<std::string>().empty()) << j.dump();
  }
}

TEST_F(R1RandomModel, ReasoningModes) {
  std::string base = "run -m " + model() + " -p hello -n 8 --temp 0 --reasoning ";
  auto show = run_dhi(base + "show");
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(show.out.rfind("<think>\n", 0), 0u) << show.out;
  auto hide = run_dhi(base + "hide");
  ASSERT_EQ(hide.exit_code, 0) << hide.err;
  EXPECT_EQ(hide.out.find("<think>"), std::string::npos);
  EXPECT_LT(hide.out.size(), show.out.size());
  auto dim = run_dhi(base + "dim");
  ASSERT_EQ(dim.exit_code, 0) << dim.err;
  EXPECT_NE(dim.out.find("\033[2m"), std::string::npos);
}

TEST_F(R1RandomModel, ChatReusesTheCacheAcrossTurns) {
  auto r = run_dhi("chat -m " + model() + " -n 6 --temp 0", "Hi there\nAnd again\n/exit\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::regex turn(R"(\[(\d+) new prompt tokens \((\d+) cached\))");
  std::vector<std::pair<int, int>> turns;
  for (std::sregex_iterator it(r.err.begin(), r.err.end(), turn), end; it != end; ++it)
    turns.emplace_back(std::stoi((*it)[1]), std::stoi((*it)[2]));
  ASSERT_EQ(turns.size(), 2u) << r.err;
  EXPECT_EQ(turns[0].second, 0);
  // The second turn re-reads only what follows the shared prefix (the R1 template
  // drops the first reply's reasoning, so the reuse stops at the assistant turn).
  EXPECT_GT(turns[1].second, turns[0].first / 2) << r.err;
}

TEST_F(R1RandomModel, InfoNamesTemplateAndTokenizer) {
  auto r = run_dhi("info " + model());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("chat template: deepseek-r1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pre: deepseek-r1-qwen"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("architecture: qwen2"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace dhi::test
