// The audit log writer (whole lines under concurrency, text fields only when
// enabled) and verify_audit_log on clean logs and on each kind of violation.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "policy/audit.h"
#include "policy/policy.h"

namespace dhi::policy {
namespace {

using nlohmann::json;

std::string temp_file(const std::string& stem) {
  static int counter = 0;
  const std::string path = ::testing::TempDir() + "/dhi_audit_" + std::to_string(getpid()) + "_" +
                           std::to_string(counter++) + "_" + stem;
  std::remove(path.c_str());
  return path;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string slurp_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Records as the gateway writes them.
json request(const std::string& id, const std::string& level, const std::string& action = "allow",
             json candidates = json::array({{{"backend", "laptop"}, {"tier", "local"}, {"model", "r1"}, {"skipped", nullptr}},
                                            {{"backend", "spare"}, {"tier", "trusted"}, {"model", "r1"}, {"skipped", nullptr}},
                                            {{"backend", "cloud"}, {"tier", "external"}, {"model", "ds"}, {"skipped", nullptr}}})) {
  return {{"type", "request"}, {"id", id}, {"time", "2026-11-26T09:51:48.123Z"}, {"key_id", "team-a"},
          {"model", "reasoning"}, {"privacy_level", level}, {"level_source", "header"},
          {"detectors", action == "allow" ? json::array() : json::array({"email"})}, {"action", action},
          {"candidates", std::move(candidates)}};
}

json attempt(const std::string& id, int n, const std::string& backend, const std::string& tier,
             const std::string& model = "r1", bool continuation = false, const std::string& outcome = "ok") {
  return {{"type", "attempt"}, {"request_id", id}, {"time", "2026-11-26T09:51:48.200Z"}, {"attempt", n},
          {"backend", backend}, {"tier", tier}, {"model", model}, {"continuation", continuation},
          {"outcome", outcome}, {"error", outcome == "ok" ? json(nullptr) : json("connection reset")},
          {"prompt_tokens", 12}, {"completion_tokens", 5}, {"first_token_ms", 31.5}, {"latency_ms", 120}};
}

json result(const std::string& id, const std::string& backend, int failovers = 0, int status = 200) {
  return {{"type", "result"}, {"request_id", id}, {"time", "2026-11-26T09:51:49.000Z"},
          {"outcome", status == 200 ? "ok" : "error"}, {"backend", backend.empty() ? json(nullptr) : json(backend)},
          {"failovers", failovers}, {"prompt_tokens", 12}, {"completion_tokens", 16}, {"latency_ms", 900},
          {"status", status}};
}

std::string log_of(const std::vector<json>& records) {
  std::string s;
  for (const json& r : records) s += r.dump() + "\n";
  return s;
}

AuditReport verify(const std::string& text, bool strict = false) {
  std::istringstream in(text);
  auto r = verify_audit_log(in, VerifyOptions{strict});
  EXPECT_TRUE(r.ok());
  return std::move(r).value();
}

// The one violation of a log that has exactly one, with its line.
void expect_violation(const std::vector<json>& records, const std::string& kind, size_t line) {
  const AuditReport r = verify(log_of(records));
  ASSERT_EQ(r.violations.size(), 1u) << kind << ": " << r.to_json().dump(2);
  EXPECT_EQ(r.violations[0].kind, kind) << r.violations[0].message;
  EXPECT_EQ(r.violations[0].line, line) << r.violations[0].message;
}

TEST(AuditLog, Rfc3339) {
  using namespace std::chrono;
  EXPECT_EQ(rfc3339_utc_ms(system_clock::time_point(milliseconds(0))), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(rfc3339_utc_ms(system_clock::time_point(milliseconds(1795686708123))), "2026-11-26T09:51:48.123Z");
}

TEST(AuditLog, ConcurrentWritersNeverInterleave) {
  const std::string path = temp_file("concurrent.jsonl");
  auto log = AuditLog::open(path, /*include_text=*/true);
  ASSERT_TRUE(log.ok()) << log.error().message;
  constexpr int kThreads = 8, kPerThread = 300;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Some lines far above a pipe buffer, so one write(2) must carry many pages.
        const size_t size = i % 50 == 0 ? 200000 : static_cast<size_t>(i * 7 % 300);
        json r = {{"type", "attempt"}, {"thread", t}, {"i", i}, {"prompt", std::string(size, 'a' + t)}};
        ASSERT_TRUE((*log)->write(r).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  const std::vector<std::string> lines = lines_of(path);
  ASSERT_EQ(lines.size(), size_t{kThreads * kPerThread});
  std::vector<int> next(kThreads, 0);
  for (const std::string& l : lines) {
    const json j = json::parse(l, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << l.substr(0, 80);
    const int t = j["thread"];
    // One thread's lines stay in its order, each with its own fill byte only.
    EXPECT_EQ(j["i"], next[t]++);
    const std::string& p = j["prompt"].get_ref<const std::string&>();
    EXPECT_EQ(p.find_first_not_of(static_cast<char>('a' + t)), std::string::npos);
  }
}

TEST(AuditLog, TextOnlyWhenEnabledAndAppends) {
  const std::string path = temp_file("text.jsonl");
  {
    auto log = AuditLog::open(path, /*include_text=*/false);
    ASSERT_TRUE(log.ok());
    EXPECT_FALSE((*log)->include_text());
    ASSERT_TRUE((*log)->write({{"type", "request"}, {"id", "r1"}, {"prompt", "secret prompt"}}).ok());
    ASSERT_TRUE((*log)->write({{"type", "result"}, {"request_id", "r1"}, {"completion", "secret answer"}}).ok());
    EXPECT_FALSE((*log)->write(json::array({1})).ok());
    EXPECT_FALSE((*log)->write({{"no_type", 1}}).ok());
  }
  {
    auto log = AuditLog::open(path, /*include_text=*/true);
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->write({{"type", "request"}, {"id", "r2"}, {"prompt", "kept"}}).ok());
  }
  const std::vector<std::string> lines = lines_of(path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].find("secret"), std::string::npos);
  EXPECT_EQ(lines[1].find("secret"), std::string::npos);
  EXPECT_EQ(json::parse(lines[2])["prompt"], "kept");
  // Invalid UTF-8 in a field does not make the writer fail or write invalid JSON.
  auto log = AuditLog::open(path, true);
  ASSERT_TRUE((*log)->write({{"type", "request"}, {"prompt", std::string("a\xff\xfe b")}}).ok());
  EXPECT_FALSE(json::parse(lines_of(path).back(), nullptr, false).is_discarded());
}

TEST(AuditLog, OpenErrorsAreClear) {
  auto dir = AuditLog::open(::testing::TempDir(), false);
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message.find("cannot open"), std::string::npos);
  EXPECT_FALSE(AuditLog::open("/nonexistent-dir/x/audit.jsonl", false).ok());
}

TEST(AuditVerify, CleanLogWithFailoverAndBlock) {
  const std::string path = temp_file("clean.jsonl");
  {
    auto log = AuditLog::open(path, false);
    ASSERT_TRUE(log.ok());
    for (const json& r :
         {request("a", "any"), attempt("a", 1, "laptop", "local", "r1", false, "dropped"),
          attempt("a", 2, "cloud", "external", "ds", true), result("a", "cloud", 1),
          request("b", "trusted", "raise",
                  json::array({{{"backend", "laptop"}, {"tier", "local"}, {"model", "r1"}, {"skipped", nullptr}},
                               {{"backend", "cloud"}, {"tier", "external"}, {"model", "ds"},
                                {"skipped", "tier external above level trusted"}}})),
          attempt("b", 1, "laptop", "local"), result("b", "laptop"), request("c", "any", "block"),
          result("c", "", 0, 403)})
      ASSERT_TRUE((*log)->write(r).ok());
  }
  auto report = verify_audit_log(std::filesystem::path(path));
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_TRUE(report->clean()) << report->to_json().dump(2);
  EXPECT_TRUE(report->warnings.empty());
  EXPECT_EQ(report->lines, 9u);
  EXPECT_EQ(report->requests, 3u);
  EXPECT_EQ(report->attempts, 3u);
  EXPECT_EQ(report->results, 3u);
  EXPECT_EQ(report->failovers, 1u);
  EXPECT_EQ(report->continuations, 1u);
  EXPECT_EQ(report->blocked, 1u);
  EXPECT_EQ(report->attempts_per_tier.at("local"), 2u);
  EXPECT_EQ(report->attempts_per_tier.at("external"), 1u);
  EXPECT_EQ(report->requests_per_level.at("any"), 2u);
  EXPECT_EQ(report->to_json()["clean"], true);
}

TEST(AuditVerify, TypedRecordsOfARealDecisionVerify) {
  PolicyConfig config;
  config.detectors = {"email"};
  auto detectors = make_detectors(config);
  ASSERT_TRUE(detectors.ok());
  const auto now = std::chrono::system_clock::now();
  RequestRecord rq;
  rq.id = "req-1";
  rq.time = now;
  rq.model = "reasoning";
  rq.decision = decide(config, *detectors, std::nullopt, std::nullopt, "mail bob@example.com");
  rq.candidates = {{"laptop", Tier::local, "r1", ""},
                   {"spare", Tier::trusted, "r1", ""},
                   {"cloud", Tier::external, "ds", "tier external above level trusted"}};
  rq.prompt = "mail bob@example.com";
  const json rj = rq.to_json();
  EXPECT_EQ(rj["privacy_level"], "trusted");
  EXPECT_EQ(rj["level_source"], "default");
  EXPECT_EQ(rj["detectors"], json::array({"email"}));
  EXPECT_EQ(rj["action"], "raise");
  EXPECT_TRUE(rj["key_id"].is_null());
  EXPECT_TRUE(rj["candidates"][0]["skipped"].is_null());
  EXPECT_EQ(rj["candidates"][2]["tier"], "external");

  AttemptRecord a1;
  a1.request_id = "req-1";
  a1.time = now;
  a1.backend = "laptop";
  a1.tier = Tier::local;
  a1.model = "r1";
  a1.outcome = "dropped";
  a1.error = "connection reset after 2 tokens";
  a1.completion_tokens = 2;
  a1.first_token_ms = 12.5;
  a1.latency_ms = 40;
  AttemptRecord a2 = a1;
  a2.attempt = 2;
  a2.backend = "spare";
  a2.tier = Tier::trusted;
  a2.continuation = true;
  a2.outcome = "ok";
  a2.error.clear();
  a2.prompt_tokens = 9;
  a2.completion_tokens = 14;
  EXPECT_TRUE(a1.to_json()["prompt_tokens"].is_null());
  EXPECT_TRUE(a2.to_json()["error"].is_null());
  ResultRecord res;
  res.request_id = "req-1";
  res.time = now;
  res.outcome = "ok";
  res.backend = "spare";
  res.failovers = 1;
  res.prompt_tokens = 9;
  res.completion_tokens = 16;
  res.latency_ms = 300;
  res.completion = "the answer";

  const std::string path = temp_file("typed.jsonl");
  {
    auto log = AuditLog::open(path, /*include_text=*/false);
    ASSERT_TRUE(log.ok());
    for (const json& r : {rj, a1.to_json(), a2.to_json(), res.to_json()}) ASSERT_TRUE((*log)->write(r).ok());
  }
  auto report = verify_audit_log(std::filesystem::path(path), VerifyOptions{/*strict=*/true});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->clean()) << report->to_json().dump(2);
  EXPECT_EQ(report->failovers, 1u);
  EXPECT_EQ(report->continuations, 1u);
  EXPECT_EQ(slurp_text(path).find("bob@example.com"), std::string::npos);
  EXPECT_EQ(slurp_text(path).find("the answer"), std::string::npos);
}

TEST(AuditVerify, EachKindOfViolation) {
  // A request sent above its level: the check `dhi audit verify` exists for.
  expect_violation({request("a", "trusted"), attempt("a", 1, "cloud", "external", "ds"), result("a", "cloud")},
                   "tier_above_level", 2);
  expect_violation({request("a", "local"), attempt("a", 1, "spare", "trusted"), result("a", "spare")},
                   "tier_above_level", 2);
  expect_violation({attempt("x", 1, "laptop", "local"), request("x", "any"), result("x", "")}, "unknown_request", 1);
  expect_violation({request("a", "any", "block"), attempt("a", 1, "laptop", "local"), result("a", "laptop")},
                   "attempt_after_block", 2);
  json skipped = request("a", "any");
  skipped["candidates"][0]["skipped"] = "circuit open";
  expect_violation({skipped, attempt("a", 1, "laptop", "local"), result("a", "laptop")}, "skipped_candidate", 2);
  expect_violation({request("a", "any"), attempt("a", 1, "elsewhere", "local"), result("a", "elsewhere")},
                   "not_a_candidate", 2);
  expect_violation({request("a", "any"), attempt("a", 1, "cloud", "local", "ds"), result("a", "cloud")},
                   "tier_mismatch", 2);
  expect_violation({request("a", "any"), attempt("a", 2, "laptop", "local"), result("a", "laptop")}, "attempt_order",
                   2);
  expect_violation({request("a", "any"), attempt("a", 1, "laptop", "local", "r1", true), result("a", "laptop")},
                   "attempt_order", 2);
  expect_violation({request("a", "any"), result("a", ""), attempt("a", 1, "laptop", "local")}, "attempt_after_result",
                   3);
  expect_violation({request("a", "any"), result("a", ""), result("a", "")}, "duplicate_result", 3);
  expect_violation({request("a", "any"), result("a", ""), request("a", "local")},
                   "duplicate_request", 3);
  expect_violation({result("zz", "")}, "unknown_request", 1);
  expect_violation({request("a", "any"), attempt("a", 1, "laptop", "local"), result("a", "cloud")}, "result_backend",
                   3);
  // Schema: missing and mistyped fields, an unknown type, a bad time.
  json no_level = request("a", "any");
  no_level.erase("privacy_level");
  expect_violation({no_level, result("a", "")}, "schema", 1);
  json bad_time = request("a", "any");
  bad_time["time"] = "yesterday";
  expect_violation({bad_time, result("a", "")}, "schema", 1);
  json bad_tokens = attempt("a", 1, "laptop", "local");
  bad_tokens["completion_tokens"] = -3;
  expect_violation({request("a", "any"), bad_tokens, result("a", "laptop")}, "schema", 2);
  expect_violation({request("a", "any"), {{"type", "response"}}, result("a", "")}, "schema", 2);
  json bad_candidate = request("a", "any");
  bad_candidate["candidates"][1]["tier"] = "cloud";
  expect_violation({bad_candidate, result("a", "")}, "schema", 1);
  // A schema-broken attempt above its level is still reported as such.
  json broken_high = attempt("a", 1, "cloud", "external", "ds");
  broken_high.erase("latency_ms");
  const AuditReport r = verify(log_of({request("a", "local"), broken_high, result("a", "")}));
  ASSERT_EQ(r.violations.size(), 2u);
  EXPECT_EQ(r.violations[0].kind, "schema");
  EXPECT_EQ(r.violations[1].kind, "tier_above_level");
}

TEST(AuditVerify, ParseErrorsIncompleteRequestsAndTornLines) {
  const AuditReport garbage = verify("{not json\n" + log_of({request("a", "any"), result("a", "")}) + "\n[1,2]\n");
  ASSERT_EQ(garbage.violations.size(), 3u);
  EXPECT_EQ(garbage.violations[0].line, 1u);
  EXPECT_EQ(garbage.violations[0].kind, "parse");
  EXPECT_EQ(garbage.violations[1].line, 4u);  // the empty line
  EXPECT_EQ(garbage.violations[2].line, 5u);

  // No result: a warning, a violation under --strict.
  const std::string open_request = log_of({request("a", "any"), attempt("a", 1, "laptop", "local")});
  const AuditReport lenient = verify(open_request);
  EXPECT_TRUE(lenient.clean());
  EXPECT_EQ(lenient.incomplete, 1u);
  ASSERT_EQ(lenient.warnings.size(), 1u);
  EXPECT_EQ(lenient.warnings[0].kind, "incomplete");
  EXPECT_EQ(lenient.warnings[0].line, 1u);
  const AuditReport strict = verify(open_request, /*strict=*/true);
  ASSERT_EQ(strict.violations.size(), 1u);
  EXPECT_EQ(strict.violations[0].kind, "incomplete");

  // A last line without its newline that does not parse: a crash mid-write.
  std::string torn = log_of({request("a", "any"), result("a", "")});
  torn += request("b", "any").dump().substr(0, 40);
  const AuditReport t = verify(torn);
  EXPECT_TRUE(t.clean());
  ASSERT_EQ(t.warnings.size(), 1u);
  EXPECT_EQ(t.warnings[0].kind, "torn_line");
  EXPECT_EQ(t.warnings[0].line, 3u);
  EXPECT_FALSE(verify(torn, true).clean());

  EXPECT_TRUE(verify("").clean());
  EXPECT_FALSE(verify_audit_log(std::filesystem::path("/nonexistent/audit.jsonl")).ok());
}

}  // namespace
}  // namespace dhi::policy
