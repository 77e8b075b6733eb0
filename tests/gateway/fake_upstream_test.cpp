// Proves the fake OpenAI upstream (fake_upstream.py) that the gateway tests
// stand on: deterministic answers, streamed and not; continuation of a cut
// answer on a second upstream joining into the uninterrupted text; injected
// failures, drops, stalls and seeded random faults; key check, /_received and
// /_reset. Real processes on loopback, curl as the client.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gateway/fake_upstream.h"

namespace dhi::test {
namespace {

using nlohmann::json;

json chat_body(const std::string& user, int max_tokens, bool stream) {
  json b = {{"model", "m"},
            {"messages", json::array({{{"role", "system"}, {"content", "be brief"}}, {{"role", "user"}, {"content", user}}})},
            {"max_tokens", max_tokens},
            {"stream", stream}};
  if (stream) b["stream_options"] = {{"include_usage", true}};
  return b;
}

struct Streamed {
  std::vector<std::string> content;    // one entry per content chunk
  std::vector<std::string> reasoning;  // one entry per reasoning chunk
  json usage;
  bool done = false;
  int curl_exit = 0;
};

Streamed parse_stream(const CurlResult& r) {
  Streamed s;
  s.curl_exit = r.curl_exit;
  for (const std::string& p : sse_data(r.body)) {
    if (p == "[DONE]") {
      s.done = true;
      continue;
    }
    const json j = json::parse(p);
    if (j.contains("usage")) s.usage = j["usage"];
    if (j["choices"].empty()) continue;
    if (j["choices"][0].contains("text")) {  // legacy completions
      if (!j["choices"][0]["text"].get<std::string>().empty()) s.content.push_back(j["choices"][0]["text"]);
      continue;
    }
    const json& delta = j["choices"][0]["delta"];
    if (delta.contains("content") && !delta["content"].get<std::string>().empty())
      s.content.push_back(delta["content"]);
    if (delta.contains("reasoning_content")) s.reasoning.push_back(delta["reasoning_content"]);
  }
  return s;
}

std::string joined(const std::vector<std::string>& parts, size_t n = std::string::npos) {
  std::string s;
  for (size_t i = 0; i < parts.size() && i < n; ++i) s += parts[i];
  return s;
}

class FakeUpstreamTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(up_.start({"--api-key", "key-1"})) << up_.stderr_text(); }
  CurlResult post(const std::string& path, const json& body, const std::string& args = "") {
    return curl_request(up_.url() + path, body.dump(), "-H 'Authorization: Bearer key-1' " + args);
  }
  void control(const json& update) {
    const CurlResult r = curl_request(up_.url() + "/_control", update.dump());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  FakeUpstream up_;
};

TEST_F(FakeUpstreamTest, DeterministicAnswersStreamedOrNot) {
  const CurlResult a = post("/v1/chat/completions", chat_body("hello", 7, false));
  ASSERT_EQ(a.status, 200) << a.body;
  const json ja = json::parse(a.body);
  const std::string text = ja["choices"][0]["message"]["content"];
  EXPECT_EQ(ja["usage"]["completion_tokens"], 7);
  EXPECT_EQ(ja["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(std::count(text.begin(), text.end(), ' '), 6);
  // Same conversation, same answer; another conversation, another answer.
  const json again = json::parse(post("/v1/chat/completions", chat_body("hello", 7, false)).body);
  EXPECT_EQ(again["choices"], ja["choices"]);
  EXPECT_EQ(again["usage"], ja["usage"]);
  EXPECT_NE(json::parse(post("/v1/chat/completions", chat_body("hello!", 7, false)).body)["choices"][0]["message"]
                ["content"],
            text);
  // Streamed: one word per chunk, the same text, usage at the end, [DONE].
  const Streamed s = parse_stream(post("/v1/chat/completions", chat_body("hello", 7, true)));
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.content.size(), 7u);
  EXPECT_EQ(joined(s.content), text);
  EXPECT_EQ(s.usage["completion_tokens"], 7);
  EXPECT_EQ(s.usage["prompt_tokens"], ja["usage"]["prompt_tokens"]);
  // Default length 16 words, finish_reason stop; a shorter answer is a prefix.
  json no_max = chat_body("hello", 1, false);
  no_max.erase("max_tokens");
  const json d = json::parse(post("/v1/chat/completions", no_max).body);
  EXPECT_EQ(d["usage"]["completion_tokens"], 16);
  EXPECT_EQ(d["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(d["choices"][0]["message"]["content"].get<std::string>().rfind(text, 0), 0u);
  // Legacy completions.
  const CurlResult c = post("/v1/completions", {{"model", "m"}, {"prompt", "once upon"}, {"max_tokens", 3}});
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(json::parse(c.body)["object"], "text_completion");
  const Streamed cs =
      parse_stream(post("/v1/completions", {{"model", "m"}, {"prompt", "once upon"}, {"max_tokens", 3}, {"stream", true}}));
  EXPECT_TRUE(cs.done);
  EXPECT_EQ(cs.content.size(), 3u);
  EXPECT_EQ(joined(cs.content), json::parse(c.body)["choices"][0]["text"]);
}

TEST_F(FakeUpstreamTest, ContinuationOnASecondUpstreamJoinsIntoTheSameAnswer) {
  FakeUpstream other;
  ASSERT_TRUE(other.start({"--api-key", "key-1"})) << other.stderr_text();
  constexpr int kTokens = 9;
  const std::string full =
      json::parse(post("/v1/chat/completions", chat_body("tell me", kTokens, false)).body)["choices"][0]["message"]
                                                                                          ["content"];
  const Streamed whole = parse_stream(post("/v1/chat/completions", chat_body("tell me", kTokens, true)));
  ASSERT_EQ(joined(whole.content), full);
  for (size_t k = 0; k <= kTokens; ++k) {
    // The first k chunks came from this upstream; the other one continues.
    const std::string prefix = joined(whole.content, k);
    json body = chat_body("tell me", kTokens - static_cast<int>(k), true);
    body["messages"].push_back({{"role", "assistant"}, {"content", prefix}, {"prefix", true}});
    if (k == kTokens) body["max_tokens"] = 1;  // nothing left; the API needs >= 1
    const Streamed rest = parse_stream(
        curl_request(other.url() + "/v1/chat/completions", body.dump(), "-H 'Authorization: Bearer key-1'"));
    ASSERT_TRUE(rest.done);
    if (k < kTokens) {
      EXPECT_EQ(prefix + joined(rest.content), full) << "k=" << k;
      EXPECT_EQ(rest.usage["completion_tokens"], kTokens - static_cast<int>(k));
    }
  }
  // A cut inside the second word: its rest is one token, then whole words.
  const std::string cut = full.substr(0, full.find(' ') + 3);
  json body = chat_body("tell me", kTokens - 1, false);
  body["messages"].push_back({{"role", "assistant"}, {"content", cut}, {"prefix", true}});
  const json r = json::parse(post("/v1/chat/completions", body).body);
  EXPECT_EQ(cut + r["choices"][0]["message"]["content"].get<std::string>(), full);
  EXPECT_EQ(r["usage"]["completion_tokens"], kTokens - 1);
  // A prefix that is not part of the answer gets a fresh (still deterministic) sequence.
  json foreign = chat_body("tell me", 3, false);
  foreign["messages"].push_back({{"role", "assistant"}, {"content", "zzz unrelated"}, {"prefix", true}});
  const CurlResult f = post("/v1/chat/completions", foreign);
  ASSERT_EQ(f.status, 200);
  const std::string fresh = json::parse(f.body)["choices"][0]["message"]["content"];
  EXPECT_EQ(full.find(fresh), std::string::npos);
  EXPECT_EQ(json::parse(post("/v1/chat/completions", foreign).body)["choices"][0]["message"]["content"], fresh);
  EXPECT_EQ(other.stop(), 0);
}

TEST_F(FakeUpstreamTest, ReasoningAnswersContinueInsideTheReasoningToo) {
  FakeUpstream a, b;
  ASSERT_TRUE(a.start({"--reasoning"})) << a.stderr_text();
  ASSERT_TRUE(b.start({"--reasoning"})) << b.stderr_text();
  constexpr int kTokens = 8;  // 4 reasoning + 4 content
  const Streamed whole = parse_stream(curl_request(a.url() + "/v1/chat/completions", chat_body("why", kTokens, true).dump()));
  ASSERT_EQ(whole.reasoning.size(), 4u);
  ASSERT_EQ(whole.content.size(), 4u);
  for (size_t k = 1; k < kTokens; ++k) {
    // The gateway sends back what it has: reasoning so far, content so far.
    const std::string reasoning = joined(whole.reasoning, k);
    const std::string content = k > 4 ? joined(whole.content, k - 4) : "";
    json body = chat_body("why", kTokens - static_cast<int>(k), true);
    body["messages"].push_back(
        {{"role", "assistant"}, {"content", content}, {"reasoning_content", reasoning}, {"prefix", true}});
    const Streamed rest = parse_stream(curl_request(b.url() + "/v1/chat/completions", body.dump()));
    ASSERT_TRUE(rest.done);
    EXPECT_EQ(reasoning + joined(rest.reasoning), joined(whole.reasoning)) << "k=" << k;
    EXPECT_EQ(content + joined(rest.content), joined(whole.content)) << "k=" << k;
  }
}

TEST_F(FakeUpstreamTest, FailDropAndStall) {
  control({{"fail_status", 503}, {"times", 1}});
  const CurlResult fail = post("/v1/chat/completions", chat_body("x", 5, true));
  EXPECT_EQ(fail.status, 503);
  EXPECT_EQ(json::parse(fail.body)["error"]["code"], 503);
  EXPECT_EQ(post("/v1/chat/completions", chat_body("x", 5, true)).status, 200);  // times: 1 is spent

  control({{"drop_after", 3}, {"times", 1}});
  const Streamed dropped = parse_stream(post("/v1/chat/completions", chat_body("x", 5, true)));
  EXPECT_EQ(dropped.content.size(), 3u);
  EXPECT_FALSE(dropped.done);
  EXPECT_NE(dropped.curl_exit, 0);  // the connection was reset, not closed cleanly

  control({{"drop_after", 0}, {"times", 1}});
  const CurlResult whole_drop = post("/v1/chat/completions", chat_body("x", 5, false));
  EXPECT_NE(whole_drop.curl_exit, 0);
  EXPECT_TRUE(json::parse(whole_drop.body, nullptr, false).is_discarded());

  control({{"stall_after", 2}, {"times", 1}});
  const auto t0 = std::chrono::steady_clock::now();
  const Streamed stalled = parse_stream(post("/v1/chat/completions", chat_body("x", 5, true), "-m 2"));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1900));
  EXPECT_EQ(stalled.content.size(), 2u);
  EXPECT_FALSE(stalled.done);
  EXPECT_EQ(stalled.curl_exit, 28);  // curl's timeout

  control({{"delay_ms", 100}});
  const auto t1 = std::chrono::steady_clock::now();
  EXPECT_TRUE(parse_stream(post("/v1/chat/completions", chat_body("x", 5, true))).done);
  EXPECT_GE(std::chrono::steady_clock::now() - t1, std::chrono::milliseconds(500));
}

TEST_F(FakeUpstreamTest, SeededRandomFaultsRepeat) {
  auto outcomes = [&] {
    std::string s;
    for (int i = 0; i < 30; ++i) {
      const CurlResult r = post("/v1/chat/completions", chat_body("r", 6, true), "-m 2");
      const Streamed st = parse_stream(r);
      s += r.status == 503 ? 'F' : st.done ? 'o' : st.curl_exit == 28 ? 'S' : 'D';
    }
    return s;
  };
  control({{"p_fail", 0.2}, {"p_drop", 0.2}, {"p_stall", 0.05}, {"seed", 42}});
  const std::string first = outcomes();
  control({{"seed", 42}});
  EXPECT_EQ(outcomes(), first);
  for (char c : {'F', 'o', 'D'}) EXPECT_NE(first.find(c), std::string::npos) << first;
}

TEST_F(FakeUpstreamTest, KeysModelsReasoningReceivedAndReset) {
  EXPECT_EQ(curl_request(up_.url() + "/v1/chat/completions", chat_body("x", 2, false).dump()).status, 401);
  EXPECT_EQ(curl_request(up_.url() + "/v1/chat/completions", chat_body("x", 2, false).dump(),
                         "-H 'Authorization: Bearer wrong'")
                .status,
            401);
  EXPECT_EQ(curl_request(up_.url() + "/health").status, 200);
  EXPECT_EQ(post("/v1/chat/completions", json::parse("[1]")).status, 400);
  EXPECT_EQ(post("/v1/chat/completions", {{"model", "m"}, {"messages", json::array()}}).status, 400);
  EXPECT_EQ(curl_request(up_.url() + "/_control", R"({"nonsense": 1})").status, 400);

  control({{"reasoning", true}});
  const Streamed r = parse_stream(post("/v1/chat/completions", chat_body("think", 7, true)));
  EXPECT_EQ(r.reasoning.size(), 4u);  // reasoning tokens count against max_tokens
  EXPECT_EQ(r.content.size(), 3u);
  EXPECT_EQ(r.usage["completion_tokens"], 7);
  const json whole = json::parse(post("/v1/chat/completions", chat_body("think", 7, false)).body);
  EXPECT_EQ(whole["choices"][0]["message"]["reasoning_content"], joined(r.reasoning));
  EXPECT_EQ(whole["choices"][0]["message"]["content"], joined(r.content));

  const json received = json::parse(curl_request(up_.url() + "/_received").body);
  ASSERT_GE(received.size(), 5u);
  const json& last = received.back();
  EXPECT_EQ(last["path"], "/v1/chat/completions");
  EXPECT_EQ(last["body"]["messages"][1]["content"], "think");
  EXPECT_EQ(last["headers"]["authorization"], "(present)");
  EXPECT_EQ(curl_request(up_.url() + "/_received").body.find("key-1"), std::string::npos);
  ASSERT_EQ(curl_request(up_.url() + "/_reset", "{}").status, 200);
  EXPECT_EQ(json::parse(curl_request(up_.url() + "/_received").body).size(), 0u);
  EXPECT_EQ(parse_stream(post("/v1/chat/completions", chat_body("think", 3, true))).reasoning.size(), 0u);

  FakeUpstream named;
  ASSERT_TRUE(named.start({"--model", "deepseek-reasoner", "--model", "r1"}));
  const json models = json::parse(curl_request(named.url() + "/v1/models").body);
  ASSERT_EQ(models["data"].size(), 2u);
  EXPECT_EQ(models["data"][0]["id"], "deepseek-reasoner");
  json body = chat_body("x", 2, false);
  EXPECT_EQ(curl_request(named.url() + "/v1/chat/completions", body.dump()).status, 404);
  body["model"] = "r1";
  EXPECT_EQ(curl_request(named.url() + "/v1/chat/completions", body.dump()).status, 200);
  EXPECT_EQ(named.stop(), 0);
}

}  // namespace
}  // namespace dhi::test
