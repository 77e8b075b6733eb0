// Runs tests/gateway/fake_upstream.py (a fake OpenAI-compatible provider) as a
// child process on a free loopback port; the port is the first line the
// script prints. Also curl with the gateway tests' argument order.
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

#include "support/process.h"

namespace dhi::test {

class FakeUpstream {
 public:
  // Starts `python3 fake_upstream.py --port 0 ARGS...`; false if it does not
  // print its port within `timeout_s`.
  bool start(const std::vector<std::string>& args = {}, int timeout_s = 30) {
    std::vector<std::string> all = {"python3", std::string(DHI_TESTS_DIR) + "/gateway/fake_upstream.py", "--port",
                                    "0"};
    all.insert(all.end(), args.begin(), args.end());
    if (!child_.start(all)) return false;
    const bool printed = child_.wait_for(
        [](const std::string& out, const std::string&) { return out.find('\n') != std::string::npos; }, timeout_s);
    port_ = printed ? std::atoi(child_.stdout_text().c_str()) : 0;
    return port_ > 0;
  }

  // SIGTERM, then the exit code (-1: killed or hung).
  int stop(int timeout_s = 20) { return child_.stop(SIGTERM, timeout_s); }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string stderr_text() const { return child_.stderr_text(); }

 private:
  ChildProcess child_;
  int port_ = 0;
};

// curl ARGS (already shell-quoted) URL; a non-empty `json_body` is POSTed.
inline CurlResult curl_request(const std::string& url, const std::string& json_body = "",
                               const std::string& args = "") {
  return curl(args + " '" + url + "'", json_body, !json_body.empty());
}

}  // namespace dhi::test
