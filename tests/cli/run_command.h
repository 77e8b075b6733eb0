// Runs the built `dhi` binary as a child process and captures its output, so CLI
// tests exercise the real executable the way a user does.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "support/process.h"

namespace dhi::test {

struct CommandResult {
  int exit_code = -1;     // -1 when the child did not exit normally
  bool signaled = false;  // killed by a signal (a crash)
  std::string out;
  std::string err;
};

inline std::string dhi_binary() { return std::string(DHI_BINARY_DIR) + "/src/cli/dhi"; }
inline std::string shared_dir() { return DHI_SHARED_DIR; }

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// `args` is already shell-quoted where needed; stdin is `input`; `env` is a
// space-separated list of NAME=VALUE settings for the child only.
inline CommandResult run_dhi_env(const std::string& env, const std::string& args,
                                 const std::string& input = "") {
  static int counter = 0;
  std::string base = ::testing::TempDir() + "/dhi_cli_" + std::to_string(getpid()) + "_" +
                     std::to_string(counter++);
  std::string in_path = base + ".in";
  { std::ofstream(in_path, std::ios::binary) << input; }
  // `exec` so that a crash of dhi is seen as a signal, not as the shell's exit code.
  std::string cmd = "exec env " + env + " " + dhi_binary() + " " + args + " <" + in_path + " >" + base +
                    ".out 2>" + base + ".err";
  int status = std::system(cmd.c_str());
  CommandResult r;
  if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
    // sh reports a child killed by signal N as exit code 128 + N.
    r.signaled = r.exit_code > 128;
  } else {
    r.signaled = true;
  }
  r.out = read_text(base + ".out");
  r.err = read_text(base + ".err");
  std::remove(in_path.c_str());
  std::remove((base + ".out").c_str());
  std::remove((base + ".err").c_str());
  return r;
}

inline CommandResult run_dhi(const std::string& args, const std::string& input = "") {
  return run_dhi_env("", args, input);
}

}  // namespace dhi::test
