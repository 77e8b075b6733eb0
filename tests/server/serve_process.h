// Starts the real `dhi serve` on a free loopback port (--port 0; the port is
// read from the "listening on" line it prints on stderr) and stops it with a
// signal, reporting how it exited. Also a tiny R1-vocabulary random model
// written with the project's GGUF writer.
#pragma once

#include <regex>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "model/synth.h"
#include "model/test_util.h"
#include "support/process.h"

namespace dhi::test {

inline std::string dhi_binary() { return std::string(DHI_BINARY_DIR) + "/src/cli/dhi"; }
inline std::string shared_dir() { return DHI_SHARED_DIR; }
inline std::string stories_model() { return shared_dir() + "/models/stories260K.gguf"; }

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
  // Starts `dhi serve --port 0 ARGS...` and waits until it listens.
  bool start(const std::vector<std::string>& args, int timeout_s = 60) {
    std::vector<std::string> all = {"serve", "--port", "0"};
    all.insert(all.end(), args.begin(), args.end());
    return start_dhi(all, timeout_s);
  }

  // Starts `dhi ARGS...` (a server command given --port 0) and waits until it
  // prints "listening on http://127.0.0.1:PORT".
  bool start_dhi(const std::vector<std::string>& args, int timeout_s = 60) {
    std::vector<std::string> all = {dhi_binary()};
    all.insert(all.end(), args.begin(), args.end());
    if (!child_.start(all)) return false;
    const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
    return child_.wait_for(
        [&](const std::string&, const std::string& err) {
          std::smatch m;
          if (!std::regex_search(err, m, listening)) return false;
          port_ = std::stoi(m[1]);
          return true;
        },
        timeout_s);
  }

  // Sends `sig`, then waits; returns the exit code (-1: killed by a signal or hung).
  int stop(int sig = SIGTERM, int timeout_s = 60) { return child_.stop(sig, timeout_s); }

  int port() const { return port_; }
  pid_t pid() const { return child_.pid(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string stderr_text() const { return child_.stderr_text(); }

 private:
  ChildProcess child_;
  int port_ = 0;
};

}  // namespace dhi::test
