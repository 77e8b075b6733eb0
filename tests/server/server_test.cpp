// `dhi serve` driven over loopback with curl: the OpenAI response and stream
// shapes, R1 reasoning split and usage, concurrent greedy streams equal to
// single runs, the prompt cache across requests, errors as OpenAI error
// objects, body/header limits, API keys, 429 on a full queue, a client that
// disconnects freeing its slot, and SIGTERM ending open streams cleanly.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "serve_process.h"

namespace dhi::test {
namespace {

using json = nlohmann::json;

json parse(const std::string& s) { return json::parse(s, nullptr, false); }

// Polls /metrics until the gauge has the value (the engine publishes after each step).
bool wait_for_gauge(const std::string& url, const std::string& name, int value, int timeout_ms = 10000) {
  const std::string line = name + " " + std::to_string(value) + "\n";
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (curl(url + "/metrics").body.find(line) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::string stream_text(const std::string& body, const char* field = "text") {
  std::string text;
  for (const auto& d : sse_data(body)) {
    if (d == "[DONE]") break;
    json j = parse(d);
    for (const auto& c : j["choices"]) {
      if (c.contains(field) && c[field].is_string()) text += c[field].get<std::string>();
    }
  }
  return text;
}

class StoriesServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServeProcess;
    ASSERT_TRUE(server_->start({"-m", stories_model(), "--parallel", "8", "--ctx", "256", "--max-body", "65536",
                                "--alias", "stories"}))
        << server_->stderr_text();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->stop(), 0) << server_->stderr_text();
    delete server_;
  }
  static std::string url() { return server_->url(); }
  static ServeProcess* server_;
};
ServeProcess* StoriesServer::server_ = nullptr;

TEST_F(StoriesServer, HealthModelsMetrics) {
  auto h = curl(url() + "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(parse(h.body)["status"], "ok");
  auto m = curl(url() + "/v1/models");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(parse(m.body)["data"][0]["id"], "stories");
  post(url() + "/v1/completions", R"({"prompt":"Once","max_tokens":3,"temperature":0})");
  auto metrics = curl(url() + "/metrics");
  ASSERT_EQ(metrics.status, 200);
  for (const char* name : {"dhi_requests_total{endpoint=\"completions\",status=\"200\"}", "dhi_prompt_tokens_total",
                           "dhi_generated_tokens_total", "dhi_time_to_first_token_seconds_bucket{le=\"+Inf\"}",
                           "dhi_inter_token_latency_seconds_count", "dhi_queue_depth", "dhi_active_sequences",
                           "dhi_kv_cache_usage_ratio"}) {
    EXPECT_NE(metrics.body.find(name), std::string::npos) << name;
  }
}

TEST_F(StoriesServer, StreamEqualsNonStream) {
  const std::string req = R"({"model":"stories","prompt":"Once upon a time","max_tokens":20,"temperature":0)";
  auto full = post(url() + "/v1/completions", req + "}");
  ASSERT_EQ(full.status, 200) << full.body;
  json j = parse(full.body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 20);
  const std::string text = j["choices"][0]["text"];
  EXPECT_FALSE(text.empty());

  auto s = post(url() + "/v1/completions", req + R"(,"stream":true,"stream_options":{"include_usage":true}})", "-N");
  ASSERT_EQ(s.status, 200);
  EXPECT_NE(s.headers.find("text/event-stream"), std::string::npos);
  auto data = sse_data(s.body);
  ASSERT_GE(data.size(), 3u);
  EXPECT_EQ(data.back(), "[DONE]");
  json usage = parse(data[data.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 20);
  json last = parse(data[data.size() - 3]);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(stream_text(s.body), text);
}

TEST_F(StoriesServer, EightConcurrentStreamsEqualSingleRuns) {
  const std::vector<std::string> prompts = {"Once upon a time", "The cat sat", "Lily wanted to", "One day, a big dog",
                                            "Tom and Sue went", "The sun", "A little bird said", "Mom made a cake"};
  auto body = [](const std::string& p) {
    return json{{"prompt", p}, {"max_tokens", 40}, {"temperature", 0}, {"stream", true}}.dump();
  };
  std::vector<std::string> alone;
  for (const auto& p : prompts) alone.push_back(stream_text(post(url() + "/v1/completions", body(p), "-N").body));
  std::vector<std::string> together(prompts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i) {
    threads.emplace_back([&, i] { together[i] = stream_text(post(url() + "/v1/completions", body(prompts[i]), "-N").body); });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_FALSE(alone[i].empty());
    EXPECT_EQ(together[i], alone[i]) << prompts[i];
  }
}

TEST_F(StoriesServer, PromptCacheAcrossRequests) {
  const std::string p = "Once upon a time there was a little dog named Max who loved to run";
  auto a = parse(post(url() + "/v1/completions", json{{"prompt", p}, {"max_tokens", 8}, {"temperature", 0}}.dump()).body);
  const std::string cont = p + a["choices"][0]["text"].get<std::string>() + " and then";
  auto b = parse(post(url() + "/v1/completions", json{{"prompt", cont}, {"max_tokens", 4}, {"temperature", 0}}.dump()).body);
  EXPECT_GE(b["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), a["usage"]["prompt_tokens"].get<int>())
      << b.dump();
}

TEST_F(StoriesServer, ErrorsAreOpenAiErrorObjects) {
  struct Case {
    std::string path, body;
    int status;
    std::string param, code;
  };
  const std::vector<Case> cases = {
      {"/v1/completions", "{not json", 400, "", ""},
      {"/v1/completions", "[1,2]", 400, "", ""},
      {"/v1/completions", R"({"prompt":5})", 400, "prompt", ""},
      {"/v1/completions", R"({})", 400, "prompt", ""},
      {"/v1/completions", R"({"prompt":"x","temperature":"hot"})", 400, "temperature", ""},
      {"/v1/completions", R"({"prompt":"x","temperature":9})", 400, "temperature", ""},
      {"/v1/completions", R"({"prompt":"x","max_tokens":-1})", 400, "max_tokens", ""},
      {"/v1/completions", R"({"prompt":"x","n":2})", 400, "n", ""},
      {"/v1/completions", R"({"prompt":"x","stop":[1]})", 400, "stop", ""},
      {"/v1/completions", R"({"prompt":"x","stream":"yes"})", 400, "stream", ""},
      {"/v1/completions", R"({"prompt":[99999999]})", 400, "prompt", ""},
      {"/v1/completions", R"({"prompt":"x","model":"gpt-4"})", 404, "model", "model_not_found"},
      {"/v1/completions", json{{"prompt", std::string(3000, 'a') + " b c d e f g h i j k l m n o p q r s t u v w x y z "
                                                                    "once upon a time there was a big cat and a dog"}}
                              .dump(),
       400, "prompt", "context_length_exceeded"},
      {"/v1/completions", std::string(60, '[') + std::string(60, ']'), 400, "", ""},
      {"/v1/chat/completions", R"({"messages":[]})", 400, "messages", ""},
      {"/v1/chat/completions", R"({"messages":[{"role":"tool","content":"x"}]})", 400, "messages[0].role", ""},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}]})", 400, "", "no_chat_template"},
      {"/v1/nothing", "{}", 404, "", "not_found"},
  };
  for (const auto& c : cases) {
    auto r = post(url() + c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.body;
    json j = parse(r.body);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
    const json& e = j["error"];
    EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty());
    EXPECT_TRUE(e["type"].is_string());
    EXPECT_EQ(e["param"], c.param.empty() ? json(nullptr) : json(c.param)) << c.body;
    if (!c.code.empty()) {
      EXPECT_EQ(e["code"], c.code) << c.body;
    }
  }
  EXPECT_EQ(curl(url() + "/health").status, 200);
}

TEST_F(StoriesServer, BodyAndHeaderLimits) {
  auto big = post(url() + "/v1/completions", json{{"prompt", std::string(100000, 'a')}}.dump());
  EXPECT_EQ(big.status, 413);
  EXPECT_TRUE(parse(big.body).contains("error")) << big.body;
  std::string headers;
  for (int i = 0; i < 150; ++i) headers += " -H 'X-Filler-" + std::to_string(i) + ": x'";
  auto many = curl(headers + " " + url() + "/v1/models");
  EXPECT_EQ(many.status, 431);
  EXPECT_TRUE(parse(many.body).contains("error")) << many.body;
}

class R1Server : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new std::string(write_r1_model());
    ASSERT_FALSE(model_->empty());
    server_ = new ServeProcess;
    ASSERT_TRUE(server_->start({"-m", *model_, "--parallel", "2", "--ctx", "512", "--api-key", "s3cret"}))
        << server_->stderr_text();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(server_->stop(), 0) << server_->stderr_text();
    delete server_;
    std::remove(model_->c_str());
    delete model_;
  }
  static CurlResult chat(const json& body) {
    return post(server_->url() + "/v1/chat/completions", body.dump(), "-N -H 'Authorization: Bearer s3cret'");
  }
  static json messages(const std::string& user) {
    return json::array({{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", user}}});
  }
  static ServeProcess* server_;
  static std::string* model_;
};
ServeProcess* R1Server::server_ = nullptr;
std::string* R1Server::model_ = nullptr;

TEST_F(R1Server, ApiKeyIsRequired) {
  const std::string u = server_->url();
  auto none = curl(u + "/v1/models");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(parse(none.body)["error"]["code"], "invalid_api_key");
  EXPECT_EQ(curl("-H 'Authorization: Bearer s3cre' " + u + "/v1/models").status, 401);
  EXPECT_EQ(curl("-H 'Authorization: Bearer s3cret!' " + u + "/v1/models").status, 401);
  EXPECT_EQ(curl("-H 'Authorization: s3cret' " + u + "/metrics").status, 401);
  EXPECT_EQ(curl("-H 'Authorization: Bearer s3cret' " + u + "/v1/models").status, 200);
  EXPECT_EQ(curl(u + "/health").status, 200);  // health stays open for load balancers
}

TEST_F(R1Server, ReasoningGoesToReasoningContent) {
  json req = {{"messages", messages("What is 2+2?")}, {"max_tokens", 16}, {"temperature", 0}};
  auto r = chat(req);
  ASSERT_EQ(r.status, 200) << r.body;
  json j = parse(r.body);
  EXPECT_EQ(j["object"], "chat.completion");
  const json& msg = j["choices"][0]["message"];
  // The template opened <think>: random output is reasoning until a </think>.
  const std::string reasoning = msg.value("reasoning_content", "");
  const std::string content = msg["content"];
  EXPECT_FALSE(reasoning.empty()) << j.dump();
  EXPECT_EQ(reasoning.find("<think>"), std::string::npos);
  const json& usage = j["usage"];
  EXPECT_EQ(usage["completion_tokens"], 16);
  if (content.empty()) {
    EXPECT_EQ(usage["completion_tokens_details"]["reasoning_tokens"], 16);
  }
  EXPECT_GT(usage["completion_tokens_details"]["reasoning_tokens"].get<int>(), 0);

  req["stream"] = true;
  auto s = chat(req);
  std::string s_reasoning, s_content;
  for (const auto& d : sse_data(s.body)) {
    if (d == "[DONE]") break;
    json c = parse(d)["choices"][0];
    s_reasoning += c["delta"].value("reasoning_content", "");
    s_content += c["delta"].value("content", "");
  }
  EXPECT_EQ(s_reasoning, reasoning);
  EXPECT_EQ(s_content, content);

  req["stream"] = false;
  req["reasoning_format"] = "none";
  json raw = parse(chat(req).body)["choices"][0]["message"];
  EXPECT_FALSE(raw.contains("reasoning_content"));
  EXPECT_EQ(raw["content"].get<std::string>().rfind("<think>\n", 0), 0u) << raw.dump();
}

TEST_F(R1Server, ChatLogprobs) {
  auto r = chat({{"messages", messages("Hi")}, {"max_tokens", 5}, {"temperature", 0}, {"logprobs", true},
                 {"top_logprobs", 2}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json body = parse(r.body);
  const json& lp = body["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(lp.size(), 5u);
  for (const auto& t : lp) {
    EXPECT_TRUE(t["token"].is_string());
    EXPECT_TRUE(t["bytes"].is_array());
    EXPECT_EQ(t["top_logprobs"].size(), 2u);
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
  }
}

TEST_F(R1Server, NextTurnReusesTheCachedConversation) {
  json msgs = messages("Tell me a story");
  auto first = parse(chat({{"messages", msgs}, {"max_tokens", 6}, {"temperature", 0}}).body);
  ASSERT_TRUE(first.contains("usage")) << first.dump();
  msgs.push_back({{"role", "assistant"}, {"content", first["choices"][0]["message"]["content"]}});
  msgs.push_back({{"role", "user"}, {"content", "Go on"}});
  auto second = parse(chat({{"messages", msgs}, {"max_tokens", 6}, {"temperature", 0}}).body);
  // At least the first turn's prompt (system + user) is reused.
  EXPECT_GE(second["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(),
            first["usage"]["prompt_tokens"].get<int>() - 4)
      << second.dump();
}

// Joins a client thread however the test ends.
struct Joined {
  std::thread t;
  ~Joined() {
    if (t.joinable()) t.join();
  }
};

// One slot, no queue, a long context: a request that runs for seconds (the
// random R1-vocabulary model practically never samples its end token).
class OneSlotServer : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = write_r1_model();
    ASSERT_FALSE(model_.empty());
    ASSERT_TRUE(server_.start({"-m", model_, "--parallel", "1", "--queue", "0", "--ctx", "8192"}))
        << server_.stderr_text();
  }
  void TearDown() override { std::remove(model_.c_str()); }
  std::string long_stream() const {
    return json{{"prompt", "Once upon a time"}, {"max_tokens", 8000}, {"stream", true}, {"temperature", 0}}.dump();
  }
  std::string model_;
  ServeProcess server_;
};

TEST_F(OneSlotServer, FullQueueAnswers429AndDisconnectFreesTheSlot) {
  const std::string u = server_.url();
  // A client that gives up after a moment: its generation must stop then.
  Joined client{std::thread([&] { post(u + "/v1/completions", long_stream(), "-N --max-time 1.5"); })};
  ASSERT_TRUE(wait_for_gauge(u, "dhi_active_sequences", 1)) << curl(u + "/metrics").body << server_.stderr_text();
  auto busy = post(u + "/v1/completions", R"({"prompt":"Hi","max_tokens":2})");
  EXPECT_EQ(busy.status, 429) << busy.body;
  EXPECT_NE(busy.headers.find("Retry-After: 1"), std::string::npos) << busy.headers;
  EXPECT_EQ(parse(busy.body)["error"]["code"], "rate_limit_exceeded");
  client.t.join();
  // The disconnect frees the slot long before 8000 tokens are done.
  EXPECT_TRUE(wait_for_gauge(u, "dhi_active_sequences", 0, 5000)) << curl(u + "/metrics").body;
  auto ok = post(u + "/v1/completions", R"({"prompt":"Hi","max_tokens":2})");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(server_.stop(), 0) << server_.stderr_text();
}

TEST_F(OneSlotServer, SigtermEndsOpenStreamsAndExitsZero) {
  const std::string u = server_.url();
  CurlResult streamed;
  Joined client{std::thread([&] { streamed = post(u + "/v1/completions", long_stream(), "-N"); })};
  ASSERT_TRUE(wait_for_gauge(u, "dhi_active_sequences", 1)) << curl(u + "/metrics").body << server_.stderr_text();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(server_.stop(SIGTERM), 0) << server_.stderr_text();
  client.t.join();
  EXPECT_EQ(streamed.status, 200);
  auto data = sse_data(streamed.body);
  ASSERT_GE(data.size(), 2u) << streamed.body;
  EXPECT_EQ(data.back(), "[DONE]");
  EXPECT_EQ(parse(data[data.size() - 2])["choices"][0]["finish_reason"], "stop");
  EXPECT_LT(parse(data[data.size() - 2])["choices"].size(), 2u);
}

}  // namespace
}  // namespace dhi::test

namespace dhi::test {
namespace {

TEST(Serve, BadModelOrFlagsExitWithAnError) {
  ServeProcess missing;
  EXPECT_FALSE(missing.start({"-m", "/nonexistent/model.gguf"}));
  EXPECT_NE(missing.stderr_text().find("dhi: error:"), std::string::npos) << missing.stderr_text();
  ServeProcess budget;
  EXPECT_FALSE(budget.start({"-m", stories_model(), "--parallel", "64", "--ctx", "2048", "--kv-budget", "1"}));
  EXPECT_NE(budget.stderr_text().find("--kv-budget"), std::string::npos) << budget.stderr_text();
  ServeProcess bad_port;
  EXPECT_FALSE(bad_port.start({"-m", stories_model(), "--port", "70000"}));
}

TEST(BenchServe, ReportsEveryConcurrencyLevel) {
  const std::string out_path = temp_path("bench.json");
  const std::string cmd = dhi_binary() + " bench-serve -m " + stories_model() +
                          " --ctx 128 --concurrency 1,3 --requests 2 -n 6 -p 5 --json >" + out_path + " 2>&1";
  const int status = std::system(cmd.c_str());
  const std::string out = read_text(out_path);
  std::remove(out_path.c_str());
  ASSERT_EQ(status, 0) << out;
  json j = json::parse(out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << out;
  EXPECT_EQ(j["slots"], 3);
  ASSERT_EQ(j["levels"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const json& l = j["levels"][i];
    const int c = i == 0 ? 1 : 3;
    EXPECT_EQ(l["concurrency"], c);
    EXPECT_EQ(l["requests"], 2 * c);
    EXPECT_EQ(l["failed"], 0);
    // stories260K may end a story early, never run past max_tokens.
    EXPECT_GT(l["generated_tokens"].get<int>(), 0);
    EXPECT_LE(l["generated_tokens"].get<int>(), 6 * 2 * c);
    EXPECT_GT(l["tokens_per_s"].get<double>(), 0);
    EXPECT_GT(l["ttft_p50_ms"].get<double>(), 0);
    EXPECT_GE(l["ttft_p99_ms"].get<double>(), l["ttft_p50_ms"].get<double>());
  }
}

}  // namespace
}  // namespace dhi::test
