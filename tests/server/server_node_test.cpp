// The official openai npm package against real `dhi serve` processes: the
// set-up installs the pinned package (node/package-lock.json) with `npm ci`
// into the build folder once; node/client.mjs then runs its assertions (chat
// with reasoning_content, streaming, usage, logprobs, typed errors, eight
// concurrent streaming clients equal to single runs). No npm registry or no
// Node.js is a failure, not a skip.
#include <gtest/gtest.h>

#include <filesystem>

#include "serve_process.h"

namespace dhi::test {
namespace {

std::string run(const std::string& cmd, int& status) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) {
    status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = pclose(p);
  status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

TEST(OpenAiNodeClient, AllChecksPass) {
  const std::string dir = DHI_NODE_CLIENT_DIR;
  int status = 0;
  if (!std::filesystem::exists(dir + "/node_modules/openai/package.json")) {
    const std::string out = run("cd '" + dir + "' && npm ci --no-audit --no-fund", status);
    ASSERT_EQ(status, 0) << "npm ci failed (is the npm registry reachable?):\n" << out;
  }
  const std::string r1 = write_r1_model();
  ASSERT_FALSE(r1.empty());
  ServeProcess r1_server, stories_server;
  ASSERT_TRUE(r1_server.start({"-m", r1, "--parallel", "2", "--ctx", "512", "--api-key", "node-key", "--alias", "r1"}))
      << r1_server.stderr_text();
  ASSERT_TRUE(stories_server.start({"-m", stories_model(), "--parallel", "8", "--ctx", "256", "--alias", "stories"}))
      << stories_server.stderr_text();
  const std::string out = run("node '" + dir + "/client.mjs' " + r1_server.url() + " node-key r1 " +
                                  stories_server.url() + " stories",
                              status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("all checks passed"), std::string::npos) << out;
  EXPECT_EQ(r1_server.stop(), 0) << r1_server.stderr_text();
  EXPECT_EQ(stories_server.stop(), 0) << stories_server.stderr_text();
  std::remove(r1.c_str());
}

}  // namespace
}  // namespace dhi::test
