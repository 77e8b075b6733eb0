// Starts tests/hub/fake_hf_server.py (a stand-in for the Hugging Face hub on
// 127.0.0.1, port chosen by the OS) for one test and stops it afterwards, and
// talks to its control endpoints.
#pragma once

#include <gtest/gtest.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hub/http.h"
#include "support/process.h"

namespace dhi::test {

class FakeHub {
 public:
  struct File {
    std::string repo, path, local;
  };

  // `gated`: repository -> the token it requires.
  FakeHub(const std::vector<File>& files, const std::vector<std::pair<std::string, std::string>>& gated = {}) {
    port_file_ = temp_path("hub_port");
    std::vector<std::string> args = {"python3", std::string(DHI_TESTS_DIR) + "/hub/fake_hf_server.py", port_file_};
    for (const auto& [repo, token] : gated) args.insert(args.end(), {"--gated", repo, token});
    for (const File& f : files) args.insert(args.end(), {"--file", f.repo, f.path, f.local});
    const auto port_written = [&](const std::string&, const std::string&) {
      std::ifstream f(port_file_);
      return bool(f >> port_);
    };
    if (!child_.start(args) || !child_.wait_for(port_written, 5)) port_ = 0;
    EXPECT_NE(port_, 0) << "the fake hub did not start: " << child_.stderr_text();
  }
  ~FakeHub() {
    child_.stop();
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
  std::string control(const std::string& what) {
    hub::HttpRequest req;
    req.url = endpoint() + "/_control/" + what;
    auto r = hub::http_get_text(req, 1 << 24);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r->body : "{}";
  }

  ChildProcess child_;
  int port_ = 0;
  std::string port_file_;
};

}  // namespace dhi::test
