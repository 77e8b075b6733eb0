// Runs tests/gateway/fake_upstream.py (a fake OpenAI-compatible provider) as a
// child process on a free loopback port, and curl as a client: the pieces the
// gateway tests share. The port is the first line the script prints.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace dhi::test {

inline std::string gateway_temp_path(const std::string& stem) {
  static std::atomic<int> counter{0};
  return ::testing::TempDir() + "/dhi_gw_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" + stem;
}

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class FakeUpstream {
 public:
  FakeUpstream() = default;
  FakeUpstream(const FakeUpstream&) = delete;
  ~FakeUpstream() { stop(); }

  // Starts `python3 fake_upstream.py --port 0 ARGS...`; false if it does not
  // print its port within `timeout_s`.
  bool start(const std::vector<std::string>& args = {}, int timeout_s = 30) {
    out_path_ = gateway_temp_path("upstream.out");
    err_path_ = gateway_temp_path("upstream.err");
    pid_ = fork();
    if (pid_ == 0) {
      const int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int null_fd = open("/dev/null", O_RDONLY);
      dup2(out, STDOUT_FILENO);
      dup2(err, STDERR_FILENO);
      dup2(null_fd, STDIN_FILENO);
      std::vector<std::string> all = {"python3", std::string(DHI_TESTS_DIR) + "/gateway/fake_upstream.py", "--port",
                                      "0"};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string out = slurp(out_path_);
      if (out.find('\n') != std::string::npos) {
        port_ = std::atoi(out.c_str());
        return port_ > 0;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // SIGTERM, then the exit code (-1: killed or hung).
  int stop(int timeout_s = 20) {
    if (pid_ <= 0) return exit_code_;
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        pid_ = -1;
        return exit_code_ = -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return exit_code_;
  }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string stderr_text() const { return slurp(err_path_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_code_ = -1;
  std::string out_path_, err_path_;
};

struct HttpResult {
  int status = 0;     // HTTP status; 0 when no response came
  int curl_exit = 0;  // curl's exit code: 18/56 a cut connection, 28 a timeout
  std::string body;
};

// curl ARGS (already shell-quoted) URL; a non-empty `json_body` is POSTed.
inline HttpResult curl_request(const std::string& url, const std::string& json_body = "",
                               const std::string& args = "") {
  const std::string base = gateway_temp_path("curl");
  // A stall fails the test in two minutes instead of hanging it (args may set
  // their own --max-time: the last wins).
  std::string cmd = "curl -s -N --max-time 120 -o " + base + ".out -w '%{http_code}' " + args;
  if (!json_body.empty()) {
    std::ofstream(base + ".in", std::ios::binary) << json_body;
    cmd += " -H 'Content-Type: application/json' --data-binary @" + base + ".in";
  }
  cmd += " '" + url + "'";
  HttpResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[64] = {};
  const size_t n = fread(buf, 1, sizeof buf - 1, p);
  const int status = pclose(p);
  r.curl_exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.status = std::atoi(std::string(buf, n).c_str());
  r.body = slurp(base + ".out");
  std::remove((base + ".out").c_str());
  std::remove((base + ".in").c_str());
  return r;
}

// The data: payloads of a server-sent-event stream, [DONE] included.
inline std::vector<std::string> sse_payloads(const std::string& body) {
  std::vector<std::string> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("data: ", 0) == 0) out.push_back(line.substr(6));
  }
  return out;
}

}  // namespace dhi::test
