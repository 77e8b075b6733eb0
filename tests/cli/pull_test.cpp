// Model management end to end: the real `dhi` binary against a stand-in for the
// Hugging Face hub on loopback (tests/hub/fake_hf_server.py) and a fake Ollama
// store in a temporary folder. HF_HOME, OLLAMA_MODELS and HF_ENDPOINT point into
// the test's own folder, so nothing of the user's is read or written.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "hub/digest.h"
#include "hub/fake_hub.h"
#include "run_command.h"

namespace dhi::test {
namespace {
namespace fs = std::filesystem;

constexpr const char* kRepo = "test-org/tiny-GGUF";
constexpr const char* kCommit = "0123456789abcdef0123456789abcdef01234567";
constexpr const char* kCatalogRepo = "unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF";
constexpr const char* kCatalogFile = "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf";

std::string stories() { return shared_dir() + "/models/stories260K.gguf"; }
std::string stories_qwen2() { return shared_dir() + "/models/stories260K-qwen2.gguf"; }

std::string sha256_of(const std::string& bytes) {
  hub::Digest d(hub::DigestKind::Sha256, bytes.size());
  d.update(bytes.data(), bytes.size());
  return d.hex();
}

nlohmann::json golden_case() {
  return nlohmann::json::parse(read_text(shared_dir() + "/models/stories260K.golden.json"))["cases"][0];
}

std::vector<FakeHub::File> hub_files() {
  return {{kRepo, "tiny-Q8_0.gguf", stories()},
          {kRepo, "tiny-Q4_K_M.gguf", stories_qwen2()},
          {kCatalogRepo, kCatalogFile, stories()}};
}

class PullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int n = 0;
    home_ = ::testing::TempDir() + "/dhi_pull_" + std::to_string(getpid()) + "_" + std::to_string(n++);
    fs::remove_all(home_);
    fs::create_directories(home_);
  }
  void TearDown() override { fs::remove_all(home_); }

  std::string env(const std::string& endpoint, const std::string& extra = "") const {
    return "HF_ENDPOINT=" + endpoint + " HF_HOME=" + home_ + " OLLAMA_MODELS=" + home_ +
           "/ollama HF_TOKEN= HF_HUB_OFFLINE=0 HF_HUB_CACHE= " + extra;
  }
  std::string repo_dir(const std::string& repo) const {
    std::string name = repo;
    name.replace(name.find('/'), 1, "--");
    return home_ + "/hub/models--" + name;
  }
  std::vector<std::string> files_under(const std::string& dir) const {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (!it->is_directory()) out.push_back(it->path().string());
    return out;
  }

  std::string home_;
};

TEST_F(PullTest, PullStoresTheExactBytesInTheHubCacheLayout) {
  FakeHub hub(hub_files());
  auto r = run_dhi_env(env(hub.endpoint()), std::string("pull hf://") + kRepo + "/tiny-Q8_0.gguf");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string source = read_text(stories());
  const std::string sha = sha256_of(source);
  const std::string dir = repo_dir(kRepo);
  const std::string snapshot = dir + "/snapshots/" + kCommit + "/tiny-Q8_0.gguf";
  EXPECT_EQ(read_text(snapshot), source);
  // As huggingface_hub writes it: a relative link to the blob named by its sha256,
  // and refs/main holding the commit without a newline.
  EXPECT_TRUE(fs::is_symlink(snapshot));
  EXPECT_EQ(fs::read_symlink(snapshot).string(), "../../blobs/" + sha);
  EXPECT_EQ(read_text(dir + "/blobs/" + sha), source);
  EXPECT_EQ(read_text(dir + "/refs/main"), kCommit);
  EXPECT_FALSE(fs::exists(dir + "/blobs/" + sha + ".incomplete"));
  EXPECT_NE(r.out.find(snapshot), std::string::npos) << r.out;
  // The body came from the "CDN" host the resolve endpoint redirected to.
  auto gets = hub.cdn_gets();
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_EQ(gets[0]["host"].get<std::string>().rfind("localhost:", 0), 0u) << gets[0];
  EXPECT_EQ(hub.stats()["bytes_served"], source.size());

  // A second pull asks the hub, finds nothing new and downloads nothing.
  hub.reset_stats();
  r = run_dhi_env(env(hub.endpoint()), std::string("pull hf://") + kRepo + "/tiny-Q8_0.gguf");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("up to date"), std::string::npos) << r.out;
  EXPECT_TRUE(hub.cdn_gets().empty());
}

TEST_F(PullTest, GatedRepositoryNeedsTheTokenWhichStaysOffTheCdn) {
  FakeHub hub(hub_files(), {{kRepo, "secret-token"}});
  auto denied = run_dhi_env(env(hub.endpoint()), std::string("pull hf://") + kRepo + "/tiny-Q8_0.gguf");
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_NE(denied.err.find("HTTP 401"), std::string::npos) << denied.err;
  EXPECT_NE(denied.err.find("HF_TOKEN"), std::string::npos) << denied.err;
  EXPECT_TRUE(files_under(repo_dir(kRepo)).empty());

  auto ok = run_dhi_env(env(hub.endpoint(), "HF_TOKEN=secret-token"),
                        std::string("pull hf://") + kRepo + "/tiny-Q8_0.gguf");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  bool resolve_had_token = false;
  const nlohmann::json stats = hub.stats();
  for (const auto& req : stats["requests"]) {
    const std::string path = req["path"];
    if (path.rfind("/cdn/", 0) == 0) {
      EXPECT_EQ(req["auth"], "") << "the token leaked to the CDN host";
    }
    if (path.find("/resolve/") != std::string::npos && req["auth"] == "Bearer secret-token") resolve_had_token = true;
  }
  EXPECT_TRUE(resolve_had_token);
}

TEST_F(PullTest, MissingRepositoryOrFileIsAClearError) {
  FakeHub hub(hub_files());
  auto r = run_dhi_env(env(hub.endpoint()), "pull hf://test-org/nothing-here/x.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("repository test-org/nothing-here not found"), std::string::npos) << r.err;
  r = run_dhi_env(env(hub.endpoint()), std::string("pull hf://") + kRepo + "/missing.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no such file"), std::string::npos) << r.err;
  r = run_dhi_env(env(hub.endpoint()), std::string("pull ") + kRepo + ":Q5_K_S");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no GGUF file with quant Q5_K_S"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tiny-Q8_0.gguf"), std::string::npos) << r.err;
  // Nothing listening: a network error, not a crash.
  r = run_dhi_env(env("http://127.0.0.1:1"), std::string("pull hf://") + kRepo + "/tiny-Q8_0.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_FALSE(r.signaled);
  EXPECT_NE(r.err.find("127.0.0.1:1"), std::string::npos) << r.err;
}

TEST_F(PullTest, RepositoryAndQuantPicksTheFileFromTheTree) {
  FakeHub hub(hub_files());
  auto r = run_dhi_env(env(hub.endpoint()), std::string("pull ") + kRepo + ":q4_k_m");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(repo_dir(kRepo) + "/snapshots/" + kCommit + "/tiny-Q4_K_M.gguf"), read_text(stories_qwen2()));
  bool listed = false;
  const nlohmann::json stats = hub.stats();
  for (const auto& req : stats["requests"])
    if (req["path"].get<std::string>().rfind(std::string("/api/models/") + kRepo + "/tree/main", 0) == 0) listed = true;
  EXPECT_TRUE(listed);
}

TEST_F(PullTest, ConnectionCutHalfWayIsResumedWithRange) {
  FakeHub hub(hub_files());
  hub.set_mode("cut-once");
  auto r = run_dhi_env(env(hub.endpoint()), std::string("pull hf://") + kRepo + "/tiny-Q8_0.gguf");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string source = read_text(stories());
  EXPECT_EQ(read_text(repo_dir(kRepo) + "/snapshots/" + kCommit + "/tiny-Q8_0.gguf"), source);
  auto gets = hub.cdn_gets();
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[0]["range"], "");
  EXPECT_EQ(gets[1]["range"], "bytes=" + std::to_string(source.size() / 2) + "-");
  EXPECT_EQ(hub.stats()["bytes_served"], source.size());
  EXPECT_NE(r.err.find("resuming at"), std::string::npos) << r.err;
}

TEST_F(PullTest, ConnectionThatKeepsFailingKeepsThePartialFile) {
  FakeHub hub(hub_files());
  hub.set_mode("cut");
  auto r = run_dhi_env(env(hub.endpoint()), std::string("pull hf://") + kRepo + "/tiny-Q8_0.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("run again to resume"), std::string::npos) << r.err;
  const std::string source = read_text(stories());
  const std::string partial = repo_dir(kRepo) + "/blobs/" + sha256_of(source) + ".incomplete";
  // Each attempt resumed where the last stopped (the server then sends a byte).
  EXPECT_GE(fs::file_size(partial), source.size() / 2);
  EXPECT_LT(fs::file_size(partial), source.size() / 2 + 8);
  EXPECT_FALSE(fs::exists(repo_dir(kRepo) + "/snapshots"));
}

TEST_F(PullTest, PullKilledHalfWayResumesOnRerun) {
  FakeHub hub(hub_files());
  hub.set_mode("stall");
  const std::string source = read_text(stories());
  const std::string partial = repo_dir(kRepo) + "/blobs/" + sha256_of(source) + ".incomplete";
  const std::string env_line = env(hub.endpoint());
  pid_t pid = fork();
  if (pid == 0) {
    const std::string cmd = "exec env " + env_line + " " + dhi_binary() + " pull hf://" + kRepo +
                            "/tiny-Q8_0.gguf >/dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until half the file is on disk (the server then stalls), and kill it.
  std::error_code ec;
  auto on_disk = [&] { return fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0; };
  for (int i = 0; i < 800 && on_disk() < source.size() / 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ASSERT_EQ(on_disk(), source.size() / 2);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  const uint64_t served_before = hub.stats()["bytes_served"];

  hub.set_mode("normal");
  hub.reset_stats();
  auto r = run_dhi_env(env_line, std::string("pull hf://") + kRepo + "/tiny-Q8_0.gguf");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming"), std::string::npos) << r.err;
  EXPECT_EQ(read_text(repo_dir(kRepo) + "/snapshots/" + kCommit + "/tiny-Q8_0.gguf"), source);
  auto gets = hub.cdn_gets();
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_EQ(gets[0]["range"], "bytes=" + std::to_string(source.size() / 2) + "-");
  // Both runs together fetched the file once.
  const uint64_t served_after = hub.stats()["bytes_served"];
  EXPECT_EQ(served_before + served_after, source.size());
}

TEST_F(PullTest, WrongBytesAreRejectedAndNothingIsStored) {
  FakeHub hub(hub_files());
  hub.set_mode("corrupt");
  auto r = run_dhi_env(env(hub.endpoint()), std::string("pull hf://") + kRepo + "/tiny-Q8_0.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("checksum mismatch"), std::string::npos) << r.err;
  EXPECT_TRUE(files_under(repo_dir(kRepo) + "/snapshots").empty());
  EXPECT_TRUE(files_under(repo_dir(kRepo) + "/blobs").empty());
  // And a run by name fails the same way, with no model left behind to load.
  r = run_dhi_env(env(hub.endpoint()), "run deepseek-r1:1.5b --raw -p hi -n 1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("checksum mismatch"), std::string::npos) << r.err;
  EXPECT_TRUE(files_under(repo_dir(kCatalogRepo) + "/snapshots").empty());
}

TEST_F(PullTest, NotEnoughDiskSpaceIsCheckedBeforeDownloading) {
  FakeHub hub(hub_files());
  hub.set_mode("huge");
  auto r = run_dhi_env(env(hub.endpoint()), std::string("pull hf://") + kRepo + "/tiny-Q8_0.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not enough disk space"), std::string::npos) << r.err;
  EXPECT_TRUE(hub.cdn_gets().empty());
}

TEST_F(PullTest, RunByCatalogNamePullsOnFirstUseThenUsesTheCache) {
  FakeHub hub(hub_files());
  const nlohmann::json c = golden_case();
  const std::string args = "run deepseek-r1:1.5b --raw --temp 0 -n " + std::to_string(c["n_predict"].get<int>()) +
                           " -p " + shell_quote(c["prompt"]);
  auto r = run_dhi_env(env(hub.endpoint()), args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, c["continuation"].get<std::string>() + "\n");
  EXPECT_NE(r.err.find("pulling deepseek-r1:1.5b"), std::string::npos) << r.err;
  EXPECT_EQ(hub.cdn_gets().size(), 1u);

  // Again: from the cache, without asking the hub anything.
  hub.reset_stats();
  r = run_dhi_env(env(hub.endpoint()), args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, c["continuation"].get<std::string>() + "\n");
  EXPECT_TRUE(hub.stats()["requests"].empty());

  // -m takes names too.
  r = run_dhi_env(env(hub.endpoint()), "run -m deepseek-r1:1.5b --raw --temp 0 -n 4 -p Once");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(PullTest, OfflineUsesTheCacheAndNeverTheNetwork) {
  FakeHub hub(hub_files());
  auto r = run_dhi_env(env(hub.endpoint()), "run deepseek-r1:1.5b --offline --raw -n 1 -p hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("offline"), std::string::npos) << r.err;
  r = run_dhi_env(env(hub.endpoint(), "HF_HUB_OFFLINE=1"), "pull deepseek-r1:1.5b");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("offline"), std::string::npos) << r.err;
  EXPECT_TRUE(hub.stats()["requests"].empty());

  ASSERT_EQ(run_dhi_env(env(hub.endpoint()), "pull deepseek-r1:1.5b").exit_code, 0);
  hub.reset_stats();
  r = run_dhi_env(env(hub.endpoint()), "pull deepseek-r1:1.5b --offline");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_dhi_env(env(hub.endpoint()), "run deepseek-r1:1.5b --offline --raw --temp 0 -n 4 -p Once");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_dhi_env(env(hub.endpoint()), "info deepseek-r1:1.5b --offline");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("architecture: llama"), std::string::npos) << r.out;
  EXPECT_TRUE(hub.stats()["requests"].empty());
  // `pull` asks the hub; when it cannot be reached, the cached copy stands.
  r = run_dhi_env(env("http://127.0.0.1:1"), "pull deepseek-r1:1.5b");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("using the cached copy"), std::string::npos) << r.err;
}

// An Ollama store: manifests/registry.ollama.ai/library/NAME/TAG pointing to blobs/sha256-<hex>.
void make_ollama_model(const std::string& root, const std::string& name, const std::string& tag,
                       const std::string& gguf_path) {
  const std::string bytes = read_text(gguf_path);
  const std::string sha = sha256_of(bytes);
  fs::create_directories(root + "/blobs");
  fs::create_directories(root + "/manifests/registry.ollama.ai/library/" + name);
  std::ofstream(root + "/blobs/sha256-" + sha, std::ios::binary) << bytes;
  const std::string params = "{\"stop\":[\"<|end|>\"]}";
  const std::string params_sha = sha256_of(params);
  std::ofstream(root + "/blobs/sha256-" + params_sha, std::ios::binary) << params;
  nlohmann::json m = {
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.docker.distribution.manifest.v2+json"},
      {"config", {{"mediaType", "application/vnd.docker.container.image.v1+json"}, {"digest", "sha256:" + params_sha}, {"size", params.size()}}},
      {"layers",
       {{{"mediaType", "application/vnd.ollama.image.params"}, {"digest", "sha256:" + params_sha}, {"size", params.size()}},
        {{"mediaType", "application/vnd.ollama.image.model"}, {"digest", "sha256:" + sha}, {"size", bytes.size()}}}}};
  std::ofstream(root + "/manifests/registry.ollama.ai/library/" + name + "/" + tag) << m.dump();
}

TEST_F(PullTest, OllamaStoreIsListedAndRunnableByName) {
  const std::string store = home_ + "/ollama";
  make_ollama_model(store, "tinystories", "260k", stories());
  // Broken manifests are skipped by the listing, not fatal.
  fs::create_directories(store + "/manifests/registry.ollama.ai/library/broken");
  std::ofstream(store + "/manifests/registry.ollama.ai/library/broken/latest") << "{not json";
  const std::string no_server = env("http://127.0.0.1:1");

  auto r = run_dhi_env(no_server, "ls --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto list = nlohmann::json::parse(r.out);
  ASSERT_EQ(list.size(), 1u) << r.out;
  EXPECT_EQ(list[0]["name"], "tinystories:260k");
  EXPECT_EQ(list[0]["source"], "ollama");
  EXPECT_EQ(list[0]["arch"], "llama");
  EXPECT_EQ(list[0]["size"], fs::file_size(stories()));
  EXPECT_GT(list[0]["n_params"].get<uint64_t>(), 200000u);

  const nlohmann::json c = golden_case();
  r = run_dhi_env(no_server, "run tinystories:260k --raw --temp 0 -n " + std::to_string(c["n_predict"].get<int>()) +
                                 " -p " + shell_quote(c["prompt"]));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, c["continuation"].get<std::string>() + "\n");

  r = run_dhi_env(no_server, "run broken --raw -n 1 -p hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a JSON manifest"), std::string::npos) << r.err;
  r = run_dhi_env(no_server, "rm tinystories:260k");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("ollama rm"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(store + "/blobs"));
}

TEST_F(PullTest, LsShowsPulledModelsAndRmRemovesThem) {
  FakeHub hub(hub_files());
  ASSERT_EQ(run_dhi_env(env(hub.endpoint()), "pull deepseek-r1:1.5b").exit_code, 0);
  ASSERT_EQ(run_dhi_env(env(hub.endpoint()), std::string("pull hf://") + kRepo + "/tiny-Q4_K_M.gguf").exit_code, 0);
  auto r = run_dhi_env(env(hub.endpoint()), "ls");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("deepseek-r1:1.5b"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(std::string("hf://") + kRepo + "/tiny-Q4_K_M.gguf"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("qwen2"), std::string::npos) << r.out;

  r = run_dhi_env(env(hub.endpoint()), "rm deepseek-r1:1.5b");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(repo_dir(kCatalogRepo)));
  r = run_dhi_env(env(hub.endpoint()), "ls --json");
  auto list = nlohmann::json::parse(r.out);
  ASSERT_EQ(list.size(), 1u) << r.out;
  EXPECT_EQ(list[0]["name"], std::string("hf://") + kRepo + "/tiny-Q4_K_M.gguf");
  r = run_dhi_env(env(hub.endpoint()), "rm deepseek-r1:1.5b");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not in the cache"), std::string::npos) << r.err;
}

TEST_F(PullTest, UnknownNamesAndMissingFilesAreClearErrors) {
  const std::string no_server = env("http://127.0.0.1:1");
  auto r = run_dhi_env(no_server, "run no-such-model:1b -p hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a catalog name"), std::string::npos) << r.err;
  r = run_dhi_env(no_server, "run missing.gguf -p hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("missing.gguf: no such file"), std::string::npos) << r.err;
  r = run_dhi_env(no_server, "pull 'hf://a/b/../../etc/passwd'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("invalid file path"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace dhi::test
