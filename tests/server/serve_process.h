// Starts the real `dhi serve` on a free loopback port (--port 0; the port is
// read from the "listening on" line it prints on stderr) and stops it with a
// signal, reporting how it exited. Also: curl as a child process, and a tiny
// R1-vocabulary random model written with the project's GGUF writer.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gguf/reader.h"
#include "model/synth.h"
#include "model/test_util.h"

namespace dhi::test {

inline std::string dhi_binary() { return std::string(DHI_BINARY_DIR) + "/src/cli/dhi"; }
inline std::string shared_dir() { return DHI_SHARED_DIR; }
inline std::string stories_model() { return shared_dir() + "/models/stories260K.gguf"; }

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::string temp_path(const std::string& stem) {
  static std::atomic<int> counter{0};
  return ::testing::TempDir() + "/dhi_srv_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
         stem;
}

// A qwen2 model with the real DeepSeek-R1-Distill-Qwen vocabulary and chat
// template and tiny random weights (as tests/cli/r1_model_test.cpp makes).
inline std::string write_r1_model() {
  auto vocab = gguf::GgufFile::open(shared_dir() + "/tokenizer/ggml-vocab-deepseek-r1-qwen.gguf");
  if (!vocab) return "";
  // OneSlotServer runs one long request with --ctx 8192.
  const model::SynthSpec spec = model::test::tiny_r1_spec(*vocab, 8192);
  auto writer = model::synth_model(spec);
  if (!writer) return "";
  const std::string path = temp_path("r1.gguf");
  if (!writer->write_file(path)) return "";
  return path;
}

class ServeProcess {
 public:
  ServeProcess() = default;
  ServeProcess(const ServeProcess&) = delete;
  ~ServeProcess() { stop(); }

  // Starts `dhi serve --port 0 ARGS...` and waits until it listens.
  bool start(const std::vector<std::string>& args, int timeout_s = 60) {
    std::vector<std::string> all = {"serve", "--port", "0"};
    all.insert(all.end(), args.begin(), args.end());
    return start_dhi(all, timeout_s);
  }

  // Starts `dhi ARGS...` (a server command given --port 0) and waits until it
  // prints "listening on http://127.0.0.1:PORT".
  bool start_dhi(const std::vector<std::string>& args, int timeout_s = 60) {
    err_path_ = temp_path("serve.err");
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, STDERR_FILENO);
      const int null_fd = open("/dev/null", O_RDWR);
      dup2(null_fd, STDOUT_FILENO);
      dup2(null_fd, STDIN_FILENO);
      std::vector<std::string> all = {dhi_binary()};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      std::smatch m;
      const std::string err = read_file(err_path_);
      if (std::regex_search(err, m, listening)) {
        port_ = std::stoi(m[1]);
        return true;
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

  // Sends `sig`, then waits; returns the exit code (-1: killed by a signal or hung).
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

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string stderr_text() const { return read_file(err_path_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_code_ = -1;
  std::string err_path_;
};

struct CurlResult {
  int status = 0;  // HTTP status; 0 when curl got no response
  std::string body;
  std::string headers;
};

// curl ARGS (already shell-quoted); with_body sends `body` as JSON from a file.
inline CurlResult curl(const std::string& args, const std::string& body = "", bool with_body = false) {
  const std::string base = temp_path("curl");
  // A server that stalls fails the test in two minutes instead of hanging it
  // until ctest's timeout (args may set their own --max-time: the last wins).
  std::string cmd = "curl -s --max-time 120 -o " + base + ".out -D " + base + ".hdr -w '%{http_code}' " + args;
  if (with_body) {
    std::ofstream(base + ".in", std::ios::binary) << body;
    cmd += " -H 'Content-Type: application/json' --data-binary @" + base + ".in";
  }
  FILE* p = popen(cmd.c_str(), "r");
  CurlResult r;
  if (!p) return r;
  char buf[64] = {};
  const size_t n = fread(buf, 1, sizeof buf - 1, p);
  pclose(p);
  r.status = std::atoi(std::string(buf, n).c_str());
  r.body = read_file(base + ".out");
  r.headers = read_file(base + ".hdr");
  std::remove((base + ".out").c_str());
  std::remove((base + ".hdr").c_str());
  std::remove((base + ".in").c_str());
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
