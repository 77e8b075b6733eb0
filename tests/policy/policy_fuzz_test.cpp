// Randomized robustness: random bytes and mutated records into the audit
// verifier, random bytes and near-miss strings into the detectors. Nothing may
// crash (the ASan+UBSan build runs this too), findings stay inside the text on
// character boundaries, and the verifier's counts stay consistent.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "policy/audit.h"
#include "policy/detectors.h"
#include "policy/policy.h"

namespace dhi::policy {
namespace {

using nlohmann::json;

std::string random_bytes(std::mt19937& rng, size_t max_len) {
  std::uniform_int_distribution<size_t> len(0, max_len);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(len(rng), '\0');
  for (char& c : s) c = static_cast<char>(byte(rng));
  return s;
}

// A random JSON value of limited depth, with the audit schema's keys likely.
json random_value(std::mt19937& rng, int depth) {
  static const char* keys[] = {"type", "id", "request_id", "attempt", "backend", "tier", "model", "privacy_level",
                               "action", "candidates", "skipped", "time", "status", "continuation", "latency_ms"};
  static const char* strings[] = {"request", "attempt", "result", "local", "trusted", "external", "any", "block",
                                  "r1", "a", "laptop", "cloud", "2026-11-26T09:51:48.123Z", ""};
  switch (std::uniform_int_distribution<int>(0, depth > 3 ? 4 : 6)(rng)) {
    case 0: return nullptr;
    case 1: return std::uniform_int_distribution<int>(-3, 5)(rng);
    case 2: return std::uniform_int_distribution<int>(0, 1)(rng) == 1;
    case 3: return strings[std::uniform_int_distribution<size_t>(0, std::size(strings) - 1)(rng)];
    case 4: return std::uniform_real_distribution<double>(-10, 1e6)(rng);
    case 5: {
      json a = json::array();
      for (int i = std::uniform_int_distribution<int>(0, 3)(rng); i > 0; --i) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    default: {
      json o = json::object();
      for (int i = std::uniform_int_distribution<int>(0, 8)(rng); i > 0; --i)
        o[keys[std::uniform_int_distribution<size_t>(0, std::size(keys) - 1)(rng)]] = random_value(rng, depth + 1);
      return o;
    }
  }
}

TEST(PolicyFuzz, VerifierSurvivesRandomLogs) {
  std::mt19937 rng(7);
  const json valid_request = json::parse(R"({"type":"request","id":"a","time":"2026-11-26T09:51:48.123Z",
    "key_id":null,"model":"m","privacy_level":"trusted","level_source":"default","detectors":[],"action":"allow",
    "candidates":[{"backend":"laptop","tier":"local","model":"r1","skipped":null}]})");
  for (int round = 0; round < 300; ++round) {
    std::string log;
    const int n = std::uniform_int_distribution<int>(0, 30)(rng);
    for (int i = 0; i < n; ++i) {
      switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
        case 0: log += random_bytes(rng, 80); break;
        case 1: log += random_value(rng, 0).dump(); break;
        case 2: {
          json r = valid_request;
          r[std::string(1, "itpca"[i % 5])] = random_value(rng, 1);
          r["type"] = std::vector<std::string>{"request", "attempt", "result"}[static_cast<size_t>(i % 3)];
          r["request_id"] = "a";
          log += r.dump();
          break;
        }
        default: {
          std::string s = valid_request.dump();
          s[std::uniform_int_distribution<size_t>(0, s.size() - 1)(rng)] = static_cast<char>(rng());
          log += s;
        }
      }
      if (std::uniform_int_distribution<int>(0, 9)(rng) != 0) log += '\n';
    }
    std::istringstream in(log);
    auto report = verify_audit_log(in, VerifyOptions{round % 2 == 0});
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->requests + report->attempts + report->results <= report->lines, true);
    EXPECT_LE(report->incomplete, report->requests);
    (void)report->to_json().dump();
  }
}

TEST(PolicyFuzz, VerifierSurvivesDeepNestingAndLongLines) {
  const std::string deep = std::string(200000, '[') + "\n" + "{\"type\":" + std::string(100000, '[') + "\n";
  std::istringstream in(deep + std::string(1 << 20, 'x') + "\n");
  auto report = verify_audit_log(in);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->violations.size(), 3u);
}

TEST(PolicyFuzz, DetectorsSurviveRandomText) {
  std::mt19937 rng(11);
  PolicyConfig config;
  config.detectors = builtin_detector_names();
  config.custom.push_back({"word", "[\\p{L}]{3,}\\d"});
  auto d = make_detectors(config);
  ASSERT_TRUE(d.ok());
  // Near-misses: fragments of every detector's shapes glued at random.
  const std::vector<std::string> pieces = {"+", "+44", " ", "-", ".", "/", "(", ")", "0", "4111", "1111 ", "DE89",
                                           "3704", "@", "example", ".com", "sk-", "proj-", "AKIA", "ghp_", "eyJ",
                                           "-----BEGIN ", "PRIVATE KEY-----", "\n", "ü", "😀", "\xff", "\xc3"};
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    if (round % 2 == 0) {
      text = random_bytes(rng, 200);
    } else {
      for (int i = std::uniform_int_distribution<int>(0, 40)(rng); i > 0; --i)
        text += pieces[std::uniform_int_distribution<size_t>(0, pieces.size() - 1)(rng)];
    }
    for (const Finding& f : d->scan(text)) {
      ASSERT_LE(f.offset + f.length, text.size());
      ASSERT_GT(f.length, 0u);
    }
    const std::string redacted = d->redact(text);
    // Redacting twice changes nothing more for the built-ins' own markers.
    EXPECT_EQ(d->redact(redacted), redacted) << text;
    const PrivacyDecision decision = decide(config, *d, std::nullopt, std::nullopt, text);
    EXPECT_EQ(decision.fired.empty(), d->scan(text).empty());
    json body = {{"messages", json::array({{{"role", "user"}, {"content", text}}})}};
    // Invalid UTF-8 must not throw from the walkers themselves.
    redact_request(body, *d);
    EXPECT_EQ(request_text(body), d->redact(text));
  }
}

}  // namespace
}  // namespace dhi::policy
