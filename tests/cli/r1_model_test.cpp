// A model with the real DeepSeek-R1-Distill-Qwen vocabulary and chat template but
// tiny random weights, generated with the project's GGUF writer, driven through the
// `dhi` executable: template rendering, special tokens in the prompt, the
// reasoning split in the output, and multi-turn chat reusing the KV cache.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
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

// Runs `dhi ARGS` with stdout on a pipe; sends SIGINT (what Ctrl-C sends) once
// the first `wait_for_bytes` bytes of stdout arrived, or after `delay` when
// that is zero. Returns stdout, stderr (from `err_path`), the exit status and
// how long the first output (or the delay) took.
struct InterruptedRun {
  std::string out, err;
  int status = -1;
  std::chrono::milliseconds until_signal{0};
};

InterruptedRun run_and_interrupt(const std::vector<std::string>& args, size_t wait_for_bytes,
                                 std::chrono::milliseconds delay) {
  InterruptedRun r;
  const std::string err_path = ::testing::TempDir() + "/dhi_sigint_" + std::to_string(getpid()) + ".err";
  int fds[2];
  if (pipe(fds) != 0) return r;
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(err, 2);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    const std::string bin = dhi_binary();
    argv.push_back(const_cast<char*>(bin.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  bool signalled = false;
  auto interrupt = [&] {
    r.until_signal = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    kill(pid, SIGINT);
    signalled = true;
  };
  // A deadline far beyond any start-up, so a child that never writes still ends.
  const auto deadline = t0 + (wait_for_bytes ? std::chrono::milliseconds(120000) : delay);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (!signalled && left.count() <= 0) interrupt();
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, signalled ? 1000 : int(std::max<int64_t>(left.count(), 1))) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    r.out.append(buf, size_t(n));
    if (!signalled && wait_for_bytes && r.out.size() >= wait_for_bytes) interrupt();
  }
  close(fds[0]);
  waitpid(pid, &r.status, 0);
  r.err = read_text(err_path);
  std::remove(err_path.c_str());
  return r;
}

TEST_F(R1RandomModel, CtrlCStopsGenerationCleanly) {
  // A context far beyond what the run fills (and within the model's training
  // context); SIGINT must end generation at the next token with a normal exit.
  // The signal goes once generation has visibly started, not after a fixed
  // time: a loaded machine may take seconds to set up the 200K-token cache.
  const std::vector<std::string> args = {"run", "-m", *path_, "--raw", "-p", "Once upon a time", "-n", "-1",
                                         "--ctx", "200000", "--temp", "0.8", "--seed", "1"};
  auto streamed = run_and_interrupt(args, 1, {});
  ASSERT_TRUE(WIFEXITED(streamed.status)) << streamed.err;
  EXPECT_EQ(WEXITSTATUS(streamed.status), 0) << streamed.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(streamed.err, m, std::regex("generated: (\\d+) tokens"))) << streamed.err;
  EXPECT_GT(std::stoi(m[1]), 0);

  // --json prints nothing until the end, so its signal comes after twice the
  // time the streamed run took to its first output; a signal that still came
  // before the first token (a machine busier than a moment ago) must end the
  // run just as cleanly, and the next try waits twice as long.
  std::vector<std::string> json_args = args;
  json_args.push_back("--json");
  auto delay = 2 * streamed.until_signal + std::chrono::milliseconds(500);
  size_t tokens = 0;
  for (int attempt = 0; attempt < 4 && tokens == 0; ++attempt, delay *= 2) {
    auto quiet = run_and_interrupt(json_args, 0, delay);
    ASSERT_TRUE(WIFEXITED(quiet.status)) << quiet.err;
    EXPECT_EQ(WEXITSTATUS(quiet.status), 0) << quiet.err;
    auto j = nlohmann::json::parse(quiet.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << quiet.out;
    EXPECT_EQ(j["finish_reason"], "cancelled");
    tokens = j["tokens"].size();
  }
  EXPECT_GT(tokens, 0u) << "no token before SIGINT in 4 tries, the last after " << delay.count() / 2 << " ms";
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
