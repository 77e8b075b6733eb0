// What the tests that start real servers share: temporary paths no earlier
// process can have left behind, child processes whose output goes to files
// the parent polls (for a port, a "listening on" line), and curl as a client.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace dhi::test {

// A fresh path in the test temp folder. The pid alone is not enough: with
// pid_max at 32768 a suite run recycles pids, and a file a dead process left
// under the same name would be read as this one's (a stale port, a stale
// "listening on" line). A random token per process makes names unique across
// runs too.
inline std::string temp_path(const std::string& stem) {
  static const std::string token = [] {
    std::random_device rd;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
    return std::string(buf);
  }();
  static std::atomic<int> counter{0};
  return ::testing::TempDir() + "/dhi_" + std::to_string(getpid()) + "_" + token + "_" +
         std::to_string(counter++) + "_" + stem;
}

inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// One child process: stdin from /dev/null, stdout and stderr to files the
// parent creates empty before the fork, so everything read from them is this
// child's. Stopped (and its files removed) on destruction.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    stop();
    if (!out_path_.empty()) std::remove(out_path_.c_str());
    if (!err_path_.empty()) std::remove(err_path_.c_str());
  }

  // Runs argv[0] (searched in PATH). False when the output files cannot be
  // created or the fork fails.
  bool start(const std::vector<std::string>& argv) {
    stop();
    out_path_ = temp_path("child.out");
    err_path_ = temp_path("child.err");
    const int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || err < 0 || null_fd < 0 || argv.empty()) {
      for (int fd : {out, err, null_fd})
        if (fd >= 0) close(fd);
      return false;
    }
    std::vector<std::string> args = argv;
    std::vector<char*> cargv;
    for (auto& a : args) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      // dup2 clears close-on-exec on the copies: only 0, 1, 2 reach the child.
      dup2(null_fd, STDIN_FILENO);
      dup2(out, STDOUT_FILENO);
      dup2(err, STDERR_FILENO);
      execvp(cargv[0], cargv.data());
      _exit(127);
    }
    for (int fd : {out, err, null_fd}) close(fd);
    exit_code_ = -1;
    return pid_ > 0;
  }

  // Polls `found(stdout, stderr)` until it holds (true), the child exits or
  // `timeout_s` passes (false).
  bool wait_for(const std::function<bool(const std::string& out, const std::string& err)>& found,
                int timeout_s) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
      if (found(stdout_text(), stderr_text())) return true;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return found(stdout_text(), stderr_text());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Sends `sig`, then waits up to `timeout_s` (SIGKILL after); returns the
  // exit code, -1 when killed by a signal or hung.
  int stop(int sig = SIGTERM, int timeout_s = 60) {
    if (pid_ <= 0) return exit_code_;
    kill(pid_, sig);
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

  pid_t pid() const { return pid_; }
  std::string stdout_text() const { return read_text(out_path_); }
  std::string stderr_text() const { return read_text(err_path_); }

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string out_path_, err_path_;
};

struct CurlResult {
  int status = 0;     // HTTP status; 0 when no response came
  int curl_exit = 0;  // curl's exit code: 18/56 a cut connection, 28 a timeout
  std::string body;
  std::string headers;
};

// curl ARGS (already shell-quoted, the URL among them), unbuffered (-N); with
// `with_body`, `body` is POSTed as JSON from a file.
inline CurlResult curl(const std::string& args, const std::string& body = "", bool with_body = false) {
  const std::string base = temp_path("curl");
  // A server that stalls fails the test in two minutes instead of hanging it
  // until ctest's timeout (args may set their own --max-time: the last wins).
  std::string cmd =
      "curl -s -N --max-time 120 -o " + base + ".out -D " + base + ".hdr -w '%{http_code}' " + args;
  if (with_body) {
    std::ofstream(base + ".in", std::ios::binary) << body;
    cmd += " -H 'Content-Type: application/json' --data-binary @" + base + ".in";
  }
  CurlResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[64] = {};
  const size_t n = fread(buf, 1, sizeof buf - 1, p);
  const int status = pclose(p);
  r.curl_exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.status = std::atoi(std::string(buf, n).c_str());
  r.body = read_text(base + ".out");
  r.headers = read_text(base + ".hdr");
  for (const char* ext : {".out", ".hdr", ".in"}) std::remove((base + ext).c_str());
  return r;
}

inline CurlResult post(const std::string& url, const std::string& body, const std::string& extra = "") {
  return curl(extra + " " + url, body, true);
}

// The data: payloads of a server-sent-event stream, [DONE] included.
inline std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("data: ", 0) == 0) out.push_back(line.substr(6));
  }
  return out;
}

}  // namespace dhi::test
