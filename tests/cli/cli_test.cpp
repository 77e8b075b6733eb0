// End-to-end tests of the `dhi` executable on the shared real models: golden
// greedy output, tokenization, JSON output, and clear errors on bad input.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "run_command.h"

namespace dhi::test {
namespace {

std::string stories() { return shared_dir() + "/models/stories260K.gguf"; }
std::string stories_qwen2() { return shared_dir() + "/models/stories260K-qwen2.gguf"; }

nlohmann::json golden() {
  return nlohmann::json::parse(read_text(shared_dir() + "/models/stories260K.golden.json"));
}

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "/" + name; }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(CliRun, StoriesGreedyMatchesGolden) {
  const nlohmann::json cases = golden()["cases"];
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) {
    for (const std::string& model : {stories(), stories_qwen2()}) {
      auto r = run_dhi("run -m " + shell_quote(model) + " --raw -p " +
                       shell_quote(c["prompt"].get<std::string>()) + " -n " +
                       std::to_string(c["n_predict"].get<int>()) + " --temp 0");
      ASSERT_EQ(r.exit_code, 0) << r.err;
      // stdout is the continuation and a final newline; timings are on stderr.
      EXPECT_EQ(r.out, c["continuation"].get<std::string>() + "\n") << model;
      EXPECT_NE(r.err.find("tok/s"), std::string::npos);
    }
  }
}

TEST(CliRun, JsonHasTokensAndTimings) {
  const nlohmann::json c = golden()["cases"][0];
  auto r = run_dhi("run -m " + shell_quote(stories()) + " --raw --json -p " +
                   shell_quote(c["prompt"].get<std::string>()) + " -n 48 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["text"], c["continuation"]);
  EXPECT_EQ(j["tokens"], c["generated_ids"]);
  EXPECT_EQ(j["prompt_tokens"], c["prompt_ids"]);
  EXPECT_EQ(j["finish_reason"], "length");
  EXPECT_TRUE(j["reasoning"].is_null());
  for (const char* k : {"load_ms", "prompt_tps", "gen_tps", "ttft_ms", "prompt_tokens", "gen_tokens"})
    EXPECT_TRUE(j["timings"].contains(k)) << k;
  EXPECT_EQ(j["timings"]["gen_tokens"], 48);
}

TEST(CliRun, SameSeedSameOutput) {
  std::string args = "run -m " + shell_quote(stories()) +
                     " --raw --json -p 'Once upon a time' -n 32 --temp 1.0 --seed 1234";
  auto a = run_dhi(args);
  auto b = run_dhi(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(nlohmann::json::parse(a.out)["tokens"], nlohmann::json::parse(b.out)["tokens"]);
}

TEST(CliRun, StopStringEndsGeneration) {
  auto r = run_dhi("run -m " + shell_quote(stories()) +
                   " --raw --json -p 'Once upon a time' -n 48 --temp 0 --stop Lily");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["text"], ", there was a little girl named ");
  EXPECT_EQ(j["finish_reason"], "stop");
}

TEST(CliTokenize, MatchesGoldenIds) {
  const nlohmann::json cases = golden()["tokenization"];
  ASSERT_GE(cases.size(), 6u);
  for (const auto& t : cases) {
    auto r = run_dhi("tokenize -m " + shell_quote(stories()) + " " +
                     shell_quote(t["text"].get<std::string>()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string expected;
    for (const auto& id : t["ids_with_bos"]) {
      if (!expected.empty()) expected += ' ';
      expected += std::to_string(id.get<int>());
    }
    EXPECT_EQ(r.out, expected + "\n") << t["text"];
  }
}

TEST(CliTokenize, NoBosAndSpecialTokens) {
  auto r = run_dhi("tokenize -m " + shell_quote(stories()) + " --no-bos 'Once upon a time'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "403 407 261 378\n");

  std::string r1 = shared_dir() + "/tokenizer/ggml-vocab-deepseek-r1-qwen.gguf";
  auto special = run_dhi("tokenize -m " + shell_quote(r1) + " '<｜User｜>hi<think>'");
  ASSERT_EQ(special.exit_code, 0) << special.err;
  EXPECT_EQ(special.out.rfind("151646 151644 ", 0), 0u) << special.out;  // BOS, then <｜User｜>
  EXPECT_NE(special.out.find(" 151648\n"), std::string::npos) << special.out;
  // Control tokens are parsed only with special-token parsing on; user-defined
  // ones such as <think> always are, as in the Hugging Face tokenizer.
  auto plain = run_dhi("tokenize -m " + shell_quote(r1) + " --no-special --no-bos '<｜User｜><think>'");
  ASSERT_EQ(plain.exit_code, 0);
  EXPECT_EQ(plain.out.find("151644"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("151648"), std::string::npos) << plain.out;

  auto pieces = run_dhi("tokenize -m " + shell_quote(stories()) + " --pieces 'Once'");
  ASSERT_EQ(pieces.exit_code, 0);
  EXPECT_EQ(pieces.out, "1 \"<s>\"\n403 \" Once\"\n");
}

TEST(CliInfo, DescribesModel) {
  auto r = run_dhi("info " + shell_quote(stories()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("architecture: llama"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("n_embd 64, n_layer 5, n_head 8, n_head_kv 4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("F32"), std::string::npos);
  EXPECT_NE(r.out.find("512 tokens"), std::string::npos);
  EXPECT_NE(r.out.find("memory at context"), std::string::npos);
}

// Every bad input ends with one clear line on stderr and a non-zero exit, never
// a signal.
void expect_clean_failure(const CommandResult& r, const std::string& needle) {
  EXPECT_FALSE(r.signaled) << r.err;
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
}

TEST(CliErrors, MissingFile) {
  expect_clean_failure(run_dhi("run -m /nonexistent/model.gguf -p hi"), "/nonexistent/model.gguf");
  expect_clean_failure(run_dhi("info /nonexistent/model.gguf"), "/nonexistent/model.gguf");
}

TEST(CliErrors, WrongMagicAndTruncation) {
  std::string bad = temp_path("dhi_bad_magic.gguf");
  write_bytes(bad, "NOTAGGUFFILE at all, just some text");
  expect_clean_failure(run_dhi("run -m " + bad + " -p hi"), "magic");

  std::string full = read_text(stories());
  for (size_t len : {size_t(3), size_t(100), size_t(5000), full.size() / 2, full.size() - 1}) {
    std::string cut = temp_path("dhi_truncated.gguf");
    write_bytes(cut, full.substr(0, len));
    auto r = run_dhi("run -m " + cut + " --raw -p hi -n 2");
    expect_clean_failure(r, "dhi: error:");
  }
}

TEST(CliErrors, PromptLongerThanContext) {
  std::string long_prompt;
  for (int i = 0; i < 40; ++i) long_prompt += "Once upon a time ";
  expect_clean_failure(
      run_dhi("run -m " + shell_quote(stories()) + " --raw --ctx 16 -p " + shell_quote(long_prompt)),
      "context");
}

TEST(CliErrors, InvalidFlags) {
  expect_clean_failure(run_dhi("run -m " + shell_quote(stories()) + " -p hi --temp -1"), "temp");
  expect_clean_failure(run_dhi("run -m " + shell_quote(stories()) + " -p hi -n abc"), "-n");
  expect_clean_failure(run_dhi("run -p hi"), "model");
  expect_clean_failure(run_dhi("frobnicate"), "frobnicate");
  expect_clean_failure(run_dhi("run -m " + shell_quote(stories()) + " -p hi --top-p 2"), "top");
}

TEST(CliErrors, BadForcedIsa) {
  auto r = run_dhi_env("DHI_FORCE_ISA=sse9", "run -m " + shell_quote(stories()) + " --raw -p hi -n 2");
  expect_clean_failure(r, "DHI_FORCE_ISA");
}

TEST(CliRun, EveryIsaPathGivesTheGoldenTokens) {
  // Greedy tokens must not depend on the kernel path (F32 weights: f32 activations
  // on every path).
  const nlohmann::json c = golden()["cases"][0];
  for (const char* isa : {"generic", "avx2", "avx512"}) {
    auto r = run_dhi_env(std::string("DHI_FORCE_ISA=") + isa,
                         "run -m " + shell_quote(stories()) + " --raw --json -p " +
                             shell_quote(c["prompt"].get<std::string>()) + " -n 48 --temp 0");
    if (r.exit_code != 0 && r.err.find("does not support") != std::string::npos) continue;
    ASSERT_EQ(r.exit_code, 0) << isa << ": " << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["tokens"], c["generated_ids"]) << isa;
  }
}

TEST(CliErrors, NoTemplateWithoutRaw) {
  expect_clean_failure(run_dhi("run -m " + shell_quote(stories()) + " -p hi -n 4"),
                       "chat template");
  expect_clean_failure(
      run_dhi("run -m " + shell_quote(stories()) + " -p hi -n 4 --chat-template nonsense"),
      "nonsense");
}

}  // namespace
}  // namespace dhi::test
