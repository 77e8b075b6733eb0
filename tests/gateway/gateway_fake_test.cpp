// `dhi gateway` in front of fake OpenAI upstreams (fake_upstream.py), which
// record what they receive and fail on command: failover before the first
// token and mid-stream (drop, stall) with exact text, the explicit error when
// nothing can continue, redaction before external backends, the circuit
// breaker, and the property test: thousands of random requests with random
// privacy levels, detector hits and upstream faults, after which no upstream
// has seen a request above its level, every request has completed with the
// uninterrupted answer or got an explicit error, and the audit log verifies.
#include <gtest/gtest.h>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <random>
#include <regex>
#include <thread>

#include "fake_upstream.h"
#include "policy/audit.h"
#include "policy/tier.h"
#include "server/serve_process.h"

namespace dhi::test {
namespace {

using json = nlohmann::json;

struct Answer {
  int status = 0;
  std::string text;  // reasoning + content
  std::string finish_reason;
  json error;  // error object (status != 200, or an error event)
  bool done = false;
  json usage;
};

// Reads a chat response, streamed or not.
Answer read_answer(int status, const std::string& body, bool stream) {
  Answer a;
  a.status = status;
  if (!stream || status != 200) {
    json j = json::parse(body, nullptr, false);
    if (status != 200) {
      if (j.is_object() && j.contains("error")) a.error = j["error"];
      return a;
    }
    const json& m = j["choices"][0]["message"];
    a.text = m.value("reasoning_content", "") + m.value("content", "");
    a.finish_reason = j["choices"][0].value("finish_reason", "");
    a.usage = j["usage"];
    a.done = true;
    return a;
  }
  for (const std::string& d : sse_data(body)) {
    if (d == "[DONE]") {
      a.done = true;
      continue;
    }
    json j = json::parse(d, nullptr, false);
    if (!j.is_object()) continue;
    if (j.contains("error")) a.error = j["error"];
    if (j.contains("usage") && j["usage"].is_object()) a.usage = j["usage"];
    if (!j.contains("choices") || j["choices"].empty()) continue;
    const json& c = j["choices"][0];
    a.text += c["delta"].value("reasoning_content", "") + c["delta"].value("content", "");
    if (c["finish_reason"].is_string()) a.finish_reason = c["finish_reason"];
  }
  return a;
}

std::string chat(const std::string& model, const std::string& text, int max_tokens, bool stream) {
  json b = {{"model", model}, {"messages", {{{"role", "user"}, {"content", text}}}}, {"max_tokens", max_tokens},
            {"stream", stream}};
  if (stream) b["stream_options"] = {{"include_usage", true}};
  return b.dump();
}

void control(const FakeUpstream& up, const json& behaviour) {
  const CurlResult r = curl_request(up.url() + "/_control", behaviour.dump());
  ASSERT_EQ(r.status, 200) << r.body;
}

json received(const FakeUpstream& up) { return json::parse(curl_request(up.url() + "/_received").body); }

// Generation requests an upstream received (health checks left out).
std::vector<json> generations(const FakeUpstream& up) {
  std::vector<json> out;
  for (const json& r : received(up)) {
    if (r["method"] == "POST" && r["path"].get<std::string>().find("completions") != std::string::npos)
      out.push_back(r["body"].is_string() ? json::parse(r["body"].get<std::string>(), nullptr, false) : r["body"]);
  }
  return out;
}

std::string hosted(const std::string& name, const FakeUpstream& up, const std::string& tier,
                   const std::string& extra = "") {
  return "[[backend]]\nname = \"" + name + "\"\nkind = \"hosted\"\nurl = \"" + up.url() + "/v1\"\ntier = \"" + tier +
         "\"\nmodels = [\"m\"]\n" + extra + "\n";
}

struct Gateway {
  ServeProcess proc;
  std::string config_path, audit_path;
  bool start(const std::string& body) {
    config_path = temp_path("gw.toml");
    audit_path = temp_path("audit.jsonl");
    std::ofstream(config_path) << "audit_log = \"" << audit_path << "\"\nhealth_interval = 0.2\n" << body;
    return proc.start_dhi({"gateway", "--config", config_path, "--port", "0"});
  }
  std::string url() const { return proc.url(); }
  ~Gateway() {
    proc.stop();
    std::remove(config_path.c_str());
    std::remove(audit_path.c_str());
  }
};

std::vector<json> audit_lines(const std::string& path, const std::string& type) {
  std::vector<json> out;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j["type"] == type) out.push_back(j);
  }
  return out;
}

class GatewayFakes : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(x_.start()) << x_.stderr_text();
    ASSERT_TRUE(y_.start()) << y_.stderr_text();
    ASSERT_TRUE(ref_.start()) << ref_.stderr_text();
  }
  // The uninterrupted answer, from an upstream that never fails.
  std::string reference(const std::string& text, int max_tokens) {
    const CurlResult r = curl_request(ref_.url() + "/v1/chat/completions", chat("m", text, max_tokens, false));
    return read_answer(r.status, r.body, false).text;
  }
  FakeUpstream x_, y_, ref_;
};

TEST_F(GatewayFakes, MidStreamDropContinuesWithExactText) {
  Gateway gw;
  // health = 0 keeps the alias order after x's failure (else x's failure
  // rate would move y ahead for the second request).
  ASSERT_TRUE(gw.start(hosted("x", x_, "local") + hosted("y", y_, "local") + "[alias]\nr = [\"x:m\", \"y:m\"]\n" +
                       "[routing]\nhealth = 0\n"))
      << gw.proc.stderr_text();
  control(x_, {{"drop_after", 5}, {"times", 1}});
  const CurlResult r = curl_request(gw.url() + "/v1/chat/completions", chat("r", "tell me", 20, true));
  const Answer a = read_answer(r.status, r.body, true);
  ASSERT_EQ(a.status, 200) << r.body;
  EXPECT_TRUE(a.error.is_null()) << a.error;
  EXPECT_TRUE(a.done);
  EXPECT_EQ(a.text, reference("tell me", 20));
  EXPECT_EQ(a.finish_reason, "length");
  EXPECT_EQ(a.usage["completion_tokens"], 20);

  // y got the conversation plus the text so far as an assistant prefix, and
  // only the tokens still owed.
  const auto ys = generations(y_);
  ASSERT_EQ(ys.size(), 1u);
  const json& last = ys[0]["messages"].back();
  EXPECT_EQ(last["role"], "assistant");
  EXPECT_EQ(last["prefix"], true);
  EXPECT_EQ(a.text.rfind(last["content"].get<std::string>(), 0), 0u);
  EXPECT_FALSE(last["content"].get<std::string>().empty());
  EXPECT_EQ(ys[0]["max_tokens"], 15);

  // Non-streaming clients get the same joined answer.
  control(x_, {{"drop_after", 3}, {"times", 1}});
  const CurlResult n = curl_request(gw.url() + "/v1/chat/completions", chat("r", "tell me", 20, false));
  const Answer b = read_answer(n.status, n.body, false);
  ASSERT_EQ(b.status, 200) << n.body;
  EXPECT_EQ(b.text, reference("tell me", 20));
  EXPECT_EQ(b.usage["completion_tokens"], 20);

  gw.proc.stop();
  const auto attempts = audit_lines(gw.audit_path, "attempt");
  ASSERT_EQ(attempts.size(), 4u);
  EXPECT_EQ(attempts[0]["outcome"], "dropped");
  EXPECT_EQ(attempts[0]["completion_tokens"], 5);
  EXPECT_EQ(attempts[1]["continuation"], true);
  EXPECT_EQ(attempts[1]["outcome"], "ok");
  auto report = policy::verify_audit_log(std::filesystem::path(gw.audit_path));
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->clean()) << report->to_json().dump();
}

TEST_F(GatewayFakes, StallHitsTheIdleTimeoutAndContinues) {
  Gateway gw;
  ASSERT_TRUE(gw.start(hosted("x", x_, "local", "timeout = { idle = 0.5 }") + hosted("y", y_, "local") +
                       "[alias]\nr = [\"x:m\", \"y:m\"]\n"))
      << gw.proc.stderr_text();
  control(x_, {{"stall_after", 4}, {"times", 1}});
  const CurlResult r = curl_request(gw.url() + "/v1/chat/completions", chat("r", "a stall", 12, true));
  const Answer a = read_answer(r.status, r.body, true);
  ASSERT_EQ(a.status, 200) << r.body;
  EXPECT_TRUE(a.error.is_null()) << a.error;
  EXPECT_EQ(a.text, reference("a stall", 12));
  gw.proc.stop();
  const auto attempts = audit_lines(gw.audit_path, "attempt");
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0]["outcome"], "stalled");
}

TEST_F(GatewayFakes, FailureBeforeFirstTokenTriesTheNextAndOpensTheCircuit) {
  Gateway gw;
  ASSERT_TRUE(gw.start(hosted("x", x_, "local") + hosted("y", y_, "local") + "[alias]\nr = [\"x:m\", \"y:m\"]\n" +
                       "[circuit]\nfailures = 2\ncooldown = 60\n[routing]\nhealth = 0\n"))
      << gw.proc.stderr_text();
  control(x_, {{"fail_status", 500}});
  for (int i = 0; i < 3; ++i) {
    const CurlResult r = curl_request(gw.url() + "/v1/chat/completions", chat("r", "q" + std::to_string(i), 6, i == 1));
    const Answer a = read_answer(r.status, r.body, i == 1);
    ASSERT_EQ(a.status, 200) << r.body;
    EXPECT_EQ(a.text, reference("q" + std::to_string(i), 6));
  }
  // Two failures opened x's circuit: the third request went straight to y.
  EXPECT_EQ(generations(x_).size(), 2u);
  EXPECT_EQ(generations(y_).size(), 3u);
  const std::string metrics = curl_request(gw.url() + "/metrics").body;
  EXPECT_NE(metrics.find("dhi_gateway_backend_circuit_open{backend=\"x\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("dhi_gateway_backend_failovers_total{backend=\"x\"} 2"), std::string::npos) << metrics;
}

TEST_F(GatewayFakes, RecentFailuresMoveABackendDown) {
  Gateway gw;
  ASSERT_TRUE(gw.start(hosted("x", x_, "local") + hosted("y", y_, "local") + "[alias]\nr = [\"x:m\", \"y:m\"]\n"))
      << gw.proc.stderr_text();
  control(x_, {{"fail_status", 500}, {"times", 1}});
  for (int i = 0; i < 2; ++i) {
    const CurlResult r = curl_request(gw.url() + "/v1/chat/completions", chat("r", "q", 4, false));
    ASSERT_EQ(r.status, 200) << r.body;
  }
  // x failed once: its failure rate (weight health = 1) puts y first next time.
  EXPECT_EQ(generations(x_).size(), 1u);
  EXPECT_EQ(generations(y_).size(), 2u);
}

TEST_F(GatewayFakes, NothingCanContinueEndsWithAnErrorEvent) {
  Gateway gw;
  ASSERT_TRUE(gw.start(hosted("x", x_, "local") + hosted("y", y_, "local") + "[alias]\nr = [\"x:m\", \"y:m\"]\n"))
      << gw.proc.stderr_text();
  control(x_, {{"drop_after", 3}});
  control(y_, {{"fail_status", 503}});
  const CurlResult r = curl_request(gw.url() + "/v1/chat/completions", chat("r", "doomed", 10, true));
  const Answer a = read_answer(r.status, r.body, true);
  EXPECT_EQ(a.status, 200);
  EXPECT_TRUE(a.done);  // the stream is closed properly ...
  ASSERT_TRUE(a.error.is_object()) << r.body;  // ... after an explicit error event
  EXPECT_EQ(a.error["code"], "continuation_failed");
  EXPECT_EQ(a.text, reference("doomed", 3));
  EXPECT_TRUE(a.finish_reason.empty());
  // Before any text, the same failure is an HTTP error.
  control(x_, {{"fail_status", 500}, {"drop_after", nullptr}});
  const CurlResult e = curl_request(gw.url() + "/v1/chat/completions", chat("r", "doomed", 10, true));
  EXPECT_EQ(e.status, 502) << e.body;
  EXPECT_NE(e.body.find("all_backends_failed"), std::string::npos) << e.body;
}

TEST_F(GatewayFakes, RedactsOnlyForExternalBackends) {
  Gateway gw;
  ASSERT_TRUE(gw.start(hosted("x", x_, "external") + hosted("y", y_, "local") +
                       "[alias]\next = [\"x:m\"]\nloc = [\"y:m\"]\n" +
                       "[privacy]\ndetectors = [\"email\"]\non_detect = \"redact\"\n"))
      << gw.proc.stderr_text();
  for (const char* model : {"ext", "loc"}) {
    const CurlResult r = curl_request(gw.url() + "/v1/chat/completions", chat(model, "write to ann@example.com", 4, false));
    ASSERT_EQ(r.status, 200) << r.body;
  }
  const std::string xs = generations(x_)[0]["messages"][0]["content"];
  const std::string ys = generations(y_)[0]["messages"][0]["content"];
  EXPECT_EQ(xs.find("ann@example.com"), std::string::npos) << xs;
  EXPECT_NE(xs.find("[REDACTED:email]"), std::string::npos) << xs;
  EXPECT_EQ(ys, "write to ann@example.com");
}

// The official openai npm package against the gateway (node/gateway_client.mjs):
// models, chat streaming and not through mid-stream failovers, typed errors.
TEST_F(GatewayFakes, OpenAiNodeClient) {
  const std::string dir = DHI_GATEWAY_NODE_DIR;
  auto run = [](const std::string& cmd, int& status) {
    std::string out;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    char buf[4096];
    size_t n;
    while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int st = p ? pclose(p) : -1;
    status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
  };
  int status = 0;
  if (!std::filesystem::exists(dir + "/node_modules/openai/package.json")) {
    const std::string out = run("cd '" + dir + "' && npm ci --no-audit --no-fund", status);
    ASSERT_EQ(status, 0) << "npm ci failed (is the npm registry reachable?):\n" << out;
  }
  setenv("GW_TEST_APP_KEY", "app-secret-1", 1);
  Gateway gw;
  ASSERT_TRUE(gw.start(hosted("x", x_, "local") + hosted("y", y_, "local") + hosted("z", ref_, "trusted") +
                       "[alias]\nr = [\"x:m\", \"y:m\"]\nremote = [\"z:m\"]\n[routing]\nhealth = 0\n"
                       "[[key]]\nid = \"app\"\nkey_env = \"GW_TEST_APP_KEY\"\n"))
      << gw.proc.stderr_text();
  const std::string expected = reference("tell the client", 12);
  const std::string out = run("node '" + dir + "/gateway_client.mjs' " + gw.url() + " app-secret-1 '" + expected +
                                  "' " + x_.url() + "/_control",
                              status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("all checks passed"), std::string::npos) << out;
  EXPECT_EQ(generations(y_).size(), 2u);  // both answers were finished by y
}

// The issue's property test. Three upstreams, one per tier, behind two
// aliases that put the most exposed backend first or last; random faults on
// all of them (seeded). Each request carries a tag, a random X-DHI-Privacy
// header, and random detector hits (an e-mail or card number raises the level
// to trusted; a secret blocks).
TEST(GatewayProperty, NoRequestAboveItsLevelAndNoneLost) {
  FakeUpstream loc, tru, ext, ref;
  for (FakeUpstream* u : {&loc, &tru, &ext, &ref}) ASSERT_TRUE(u->start()) << u->stderr_text();
  int seed = 1;
  for (FakeUpstream* u : {&loc, &tru, &ext})
    control(*u, {{"p_fail", 0.08}, {"p_drop", 0.08}, {"p_stall", 0.01}, {"seed", seed++}});
  const std::string timeouts = "timeout = { first_token = 2, idle = 0.4 }";
  Gateway gw;
  ASSERT_TRUE(gw.start(hosted("loc", loc, "local", timeouts) + hosted("tru", tru, "trusted", timeouts) +
                       hosted("ext", ext, "external", timeouts) +
                       "[alias]\nopen = [\"ext:m\", \"tru:m\", \"loc:m\"]\nclosed = [\"loc:m\", \"tru:m\", \"ext:m\"]\n"
                       "[circuit]\nfailures = 4\ncooldown = 0.2\n"
                       "[privacy]\ndefault = \"any\"\ndetectors = [\"email\", \"card\", \"secret\"]\n"
                       "on_detect = \"trusted\"\nper_detector = { secret = \"block\" }\n"))
      << gw.proc.stderr_text();

  constexpr int kRequests = 2000;
  constexpr int kThreads = 8;
  struct Req {
    policy::Tier level = policy::Tier::external;
    bool blocked = false;
    std::string text;
    int max_tokens = 0;
    Answer answer;
    std::string reference;  // the uninterrupted answer
  };
  std::vector<Req> reqs(kRequests);
  std::mt19937 rng(12345);
  const char* headers[] = {"", "local", "trusted", "any"};
  std::vector<std::string> header_of(kRequests);
  std::vector<std::string> model_of(kRequests);
  std::vector<bool> stream_of(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    Req& r = reqs[i];
    const std::string h = headers[rng() % 4];
    header_of[i] = h;
    r.level = h.empty() || h == "any" ? policy::Tier::external : *policy::parse_privacy_level(h);
    r.text = "req-" + std::to_string(i) + " please answer";
    const unsigned hit = rng() % 8;
    if (hit == 0) r.text += " mail bob@example.org";
    if (hit == 1) r.text += " card 4111 1111 1111 1111";
    if (hit == 2) {
      r.text += " key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD";
      r.blocked = true;
    }
    if (hit == 0 || hit == 1) r.level = policy::min_tier(r.level, policy::Tier::trusted);
    r.max_tokens = 4 + int(rng() % 12);
    model_of[i] = rng() % 2 ? "open" : "closed";
    stream_of[i] = rng() % 2;
  }

  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      httplib::Client cli("127.0.0.1", gw.proc.port());
      httplib::Client ref_cli("127.0.0.1", ref.port());
      cli.set_read_timeout(30);
      for (int i; (i = next++) < kRequests;) {
        httplib::Headers hs;
        if (!header_of[i].empty()) hs.emplace("X-DHI-Privacy", header_of[i]);
        auto res = cli.Post("/v1/chat/completions", hs, chat(model_of[i], reqs[i].text, reqs[i].max_tokens, stream_of[i]),
                            "application/json");
        reqs[i].answer = res ? read_answer(res->status, res->body, stream_of[i]) : Answer{};
        if (auto want = ref_cli.Post("/v1/chat/completions", chat("m", reqs[i].text, reqs[i].max_tokens, false),
                                     "application/json"))
          reqs[i].reference = read_answer(want->status, want->body, false).text;
      }
    });
  }
  for (auto& t : threads) t.join();

  // No upstream ever saw a request above its level, nor a blocked one.
  const std::regex tag(R"(req-(\d+) )");
  std::map<std::string, int> seen_by_tier;
  for (auto [up, tier] : {std::pair{&loc, policy::Tier::local}, std::pair{&tru, policy::Tier::trusted},
                          std::pair{&ext, policy::Tier::external}}) {
    for (const json& body : generations(*up)) {
      std::smatch m;
      const std::string text = body["messages"][0]["content"];
      ASSERT_TRUE(std::regex_search(text, m, tag)) << text;
      const Req& r = reqs[std::stoi(m[1])];
      EXPECT_FALSE(r.blocked) << text;
      EXPECT_TRUE(policy::tier_allowed(tier, r.level))
          << policy::tier_name(tier) << " received a request at level " << policy::level_name(r.level) << ": " << text;
      ++seen_by_tier[policy::tier_name(tier)];
    }
  }
  // Every request completed with the uninterrupted answer, or got an explicit error.
  int completed = 0, refused = 0, failed_streams = 0;
  for (int i = 0; i < kRequests; ++i) {
    const Req& r = reqs[i];
    const Answer& a = r.answer;
    ASSERT_NE(a.status, 0) << "request " << i << " got no response";
    if (r.blocked) {
      EXPECT_EQ(a.status, 403) << i;
      continue;
    }
    if (a.status != 200) {
      EXPECT_TRUE(a.error.is_object()) << "request " << i << ": status " << a.status << " without an error object";
      ++refused;
      continue;
    }
    EXPECT_TRUE(a.done) << i;
    if (a.error.is_object()) {
      EXPECT_TRUE(stream_of[i]) << i;
      ++failed_streams;
      continue;
    }
    EXPECT_EQ(a.text, r.reference) << "request " << i;
    EXPECT_EQ(a.finish_reason, "length") << i;
    ++completed;
  }
  std::printf("property: %d completed, %d refused with an HTTP error, %d streams ended by an error event; "
              "generation requests seen: local %d, trusted %d, external %d\n",
              completed, refused, failed_streams, seen_by_tier["local"], seen_by_tier["trusted"],
              seen_by_tier["external"]);
  EXPECT_GT(completed, kRequests / 2);
  EXPECT_GT(seen_by_tier["external"], 0);

  gw.proc.stop();
  auto report = policy::verify_audit_log(std::filesystem::path(gw.audit_path), policy::VerifyOptions{true});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->clean()) << report->to_json().dump();
  EXPECT_EQ(report->requests, size_t(kRequests));
  EXPECT_GT(report->continuations, 0u);
  // The command-line checker agrees.
  const int rc = std::system((dhi_binary() + " audit verify '" + gw.audit_path + "' > /dev/null").c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 0);
}

}  // namespace
}  // namespace dhi::test
