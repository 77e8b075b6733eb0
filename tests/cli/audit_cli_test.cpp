// `dhi audit verify` as a user runs it: a clean log, a log with a request sent
// above its level, --strict, --json, and the usage and I/O errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/run_command.h"

namespace dhi::test {
namespace {

using nlohmann::json;

std::string write_log(const std::string& stem, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/dhi_audit_cli_" + std::to_string(getpid()) + "_" + stem;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

const char* kRequest =
    R"({"type":"request","id":"%s","time":"2026-11-26T10:00:00.000Z","key_id":null,"model":"reasoning",)"
    R"("privacy_level":"%s","level_source":"header","detectors":[],"action":"allow","candidates":[)"
    R"({"backend":"laptop","tier":"local","model":"r1","skipped":null},)"
    R"({"backend":"cloud","tier":"external","model":"ds","skipped":null}]})";
const char* kAttempt =
    R"({"type":"attempt","request_id":"%s","attempt":1,"backend":"%s","tier":"%s","model":"%s",)"
    R"("continuation":false,"outcome":"ok","error":null,"prompt_tokens":3,"completion_tokens":4,)"
    R"("first_token_ms":5,"latency_ms":9})";
const char* kResult =
    R"({"type":"result","request_id":"%s","outcome":"ok","backend":"%s","failovers":0,"prompt_tokens":3,)"
    R"("completion_tokens":4,"latency_ms":10,"status":200})";

std::string fmt(const char* f, const std::string& a, const std::string& b = "", const std::string& c = "",
                const std::string& d = "") {
  char buf[1024];
  std::snprintf(buf, sizeof buf, f, a.c_str(), b.c_str(), c.c_str(), d.c_str());
  return std::string(buf) + "\n";
}

std::string clean_log() {
  return fmt(kRequest, "a", "any") + fmt(kAttempt, "a", "cloud", "external", "ds") + fmt(kResult, "a", "cloud") +
         fmt(kRequest, "b", "local") + fmt(kAttempt, "b", "laptop", "local", "r1") + fmt(kResult, "b", "laptop");
}

TEST(AuditCli, CleanLogExitsZeroWithASummary) {
  const CommandResult r = run_dhi("audit verify " + shell_quote(write_log("clean.jsonl", clean_log())));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("2 requests"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("local 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("external 1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("clean"), std::string::npos) << r.out;
}

TEST(AuditCli, RequestAboveItsLevelExitsOne) {
  const std::string log = clean_log() + fmt(kRequest, "c", "trusted") + fmt(kAttempt, "c", "cloud", "external", "ds") +
                          fmt(kResult, "c", "cloud");
  const CommandResult r = run_dhi("audit verify " + shell_quote(write_log("above.jsonl", log)));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("violation: line 8: tier_above_level"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("NOT clean"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("1 violation"), std::string::npos) << r.err;
}

TEST(AuditCli, StrictAndJson) {
  const std::string log = clean_log() + fmt(kRequest, "open", "any");
  const std::string path = write_log("open.jsonl", log);
  const CommandResult lenient = run_dhi("audit verify --json " + shell_quote(path));
  ASSERT_EQ(lenient.exit_code, 0) << lenient.err;
  const json j = json::parse(lenient.out);
  EXPECT_EQ(j["clean"], true);
  EXPECT_EQ(j["incomplete"], 1);
  EXPECT_EQ(j["warnings"][0]["kind"], "incomplete");
  EXPECT_EQ(j["warnings"][0]["line"], 7);
  const CommandResult strict = run_dhi("audit verify --strict --json " + shell_quote(path));
  EXPECT_EQ(strict.exit_code, 1);
  EXPECT_EQ(json::parse(strict.out)["violations"][0]["kind"], "incomplete");
}

TEST(AuditCli, UsageAndIoErrorsExitTwo) {
  const CommandResult missing = run_dhi("audit verify /nonexistent/dir/audit.jsonl");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("cannot open"), std::string::npos) << missing.err;
  EXPECT_EQ(run_dhi("audit verify").exit_code, 2);
  EXPECT_EQ(run_dhi("audit verify a.jsonl --no-such-flag").exit_code, 2);
  EXPECT_EQ(run_dhi("audit").exit_code, 2);
  EXPECT_FALSE(run_dhi("audit verify").signaled);
}

}  // namespace
}  // namespace dhi::test
