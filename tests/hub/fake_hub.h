// Starts tests/hub/fake_hf_server.py (a stand-in for the Hugging Face hub on
// 127.0.0.1, port chosen by the OS) for one test and stops it afterwards, and
// talks to its control endpoints.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "hub/http.h"

namespace dhi::test {

class FakeHub {
 public:
  struct File {
    std::string repo, path, local;
  };

  // `gated`: repository -> the token it requires.
  FakeHub(const std::vector<File>& files, const std::vector<std::pair<std::string, std::string>>& gated = {}) {
    port_file_ = ::testing::TempDir() + "/fake_hub_port_" + std::to_string(getpid()) + "_" +
                 std::to_string(counter()++);
    std::filesystem::remove(port_file_);
    std::vector<std::string> args = {"python3", std::string(DHI_TESTS_DIR) + "/hub/fake_hf_server.py", port_file_};
    for (const auto& [repo, token] : gated) args.insert(args.end(), {"--gated", repo, token});
    for (const File& f : files) args.insert(args.end(), {"--file", f.repo, f.path, f.local});
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("python3", argv.data());
      _exit(127);
    }
    for (int i = 0; i < 200 && port_ == 0; ++i) {
      std::ifstream f(port_file_);
      if (!(f >> port_)) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    EXPECT_NE(port_, 0) << "the fake hub did not start";
  }
  ~FakeHub() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove(port_file_);
  }
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void set_mode(const std::string& mode) { control("mode?set=" + mode); }
  void reset_stats() { control("reset"); }
  nlohmann::json stats() { return nlohmann::json::parse(control("stats")); }

  // The CDN GET requests seen (the body downloads).
  std::vector<nlohmann::json> cdn_gets() {
    std::vector<nlohmann::json> out;
    const nlohmann::json s = stats();
    for (const auto& r : s["requests"])
      if (r["method"] == "GET" && r["path"].get<std::string>().rfind("/cdn/", 0) == 0) out.push_back(r);
    return out;
  }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::string control(const std::string& what) {
    hub::HttpRequest req;
    req.url = endpoint() + "/_control/" + what;
    auto r = hub::http_get_text(req, 1 << 24);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r->body : "{}";
  }

  pid_t pid_ = -1;
  int port_ = 0;
  std::string port_file_;
};

}  // namespace dhi::test
