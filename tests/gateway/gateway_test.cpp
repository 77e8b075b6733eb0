// `dhi gateway` end to end with real processes on loopback: real `dhi serve`
// nodes running the tiny R1-vocabulary model play the laptop and the spare
// node; curl is the client. Covers forwarding (streaming and not, both
// endpoints), privacy levels and their refusals, failover before the first
// token, the node's side of a continuation ("prefix": true), and a node killed
// with SIGKILL mid-stream whose completion another node finishes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "gguf/reader.h"
#include "policy/audit.h"
#include "server/serve_process.h"
#include "tokenizer/tokenizer.h"

namespace dhi::test {
namespace {

using json = nlohmann::json;

struct Streamed {
  std::string reasoning, content;
  bool done = false;
  json error;  // an error event, if any
  json usage;
  std::string id;
  int chunks = 0;
  json logprobs;  // the chunks' chat logprobs entries, in order (null: none came)
};

Streamed parse_stream(const std::string& body) {
  Streamed s;
  for (const std::string& d : sse_data(body)) {
    if (d == "[DONE]") {
      s.done = true;
      continue;
    }
    json j = json::parse(d, nullptr, false);
    if (!j.is_object()) continue;
    if (j.contains("error")) {
      s.error = j["error"];
      continue;
    }
    if (j.contains("id")) s.id = j["id"];
    if (j.contains("usage") && j["usage"].is_object()) s.usage = j["usage"];
    if (!j.contains("choices") || j["choices"].empty()) continue;
    const json& c = j["choices"][0];
    if (c.contains("logprobs") && c["logprobs"].is_object())
      for (const json& e : c["logprobs"]["content"]) s.logprobs.push_back(e);
    if (c.contains("delta")) {
      s.reasoning += c["delta"].value("reasoning_content", "");
      s.content += c["delta"].value("content", "");
    } else {
      s.content += c.value("text", "");
    }
    ++s.chunks;
  }
  return s;
}

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

std::vector<json> records(const std::vector<json>& all, const std::string& type) {
  std::vector<json> out;
  for (const json& r : all)
    if (r["type"] == type) out.push_back(r);
  return out;
}

// One `dhi gateway` with a config written to a temp file.
struct GatewayRun {
  ServeProcess proc;
  std::string config_path, audit_path;
  bool start(const std::string& config_body) {
    config_path = temp_path("gw.toml");
    audit_path = temp_path("audit.jsonl");
    std::ofstream(config_path) << "audit_log = \"" << audit_path << "\"\nhealth_interval = 0.2\n" << config_body;
    return proc.start_dhi({"gateway", "--config", config_path, "--port", "0"});
  }
  std::string url() const { return proc.url(); }
  std::vector<json> audit() const { return read_jsonl(audit_path); }
  ~GatewayRun() {
    proc.stop();
    std::remove(config_path.c_str());
    std::remove(audit_path.c_str());
  }
};

std::string node_backend(const std::string& name, const std::string& url, const std::string& tier,
                         const std::string& extra = "") {
  return "[[backend]]\nname = \"" + name + "\"\nkind = \"node\"\nurl = \"" + url + "\"\ntier = \"" + tier +
         "\"\nmodels = [\"r1\"]\n" + extra + "\n";
}

std::string chat_body(const std::string& model, const std::string& text, int max_tokens, bool stream) {
  json b = {{"model", model},
            {"messages", {{{"role", "user"}, {"content", text}}}},
            {"max_tokens", max_tokens},
            {"temperature", 0},
            {"stream", stream}};
  if (stream) b["stream_options"] = {{"include_usage", true}};
  return b.dump();
}

class GatewayNodes : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new std::string(write_r1_model());
    ASSERT_FALSE(model_->empty());
    a_ = new ServeProcess();
    b_ = new ServeProcess();
    ASSERT_TRUE(a_->start({"-m", *model_, "--parallel", "2", "--ctx", "2048", "--alias", "r1"})) << a_->stderr_text();
    ASSERT_TRUE(b_->start({"-m", *model_, "--parallel", "2", "--ctx", "2048", "--alias", "r1"})) << b_->stderr_text();
  }
  static void TearDownTestSuite() {
    delete a_;
    delete b_;
    if (model_) std::remove(model_->c_str());
    delete model_;
  }
  static std::string* model_;
  static ServeProcess* a_;
  static ServeProcess* b_;
};
std::string* GatewayNodes::model_ = nullptr;
ServeProcess* GatewayNodes::a_ = nullptr;
ServeProcess* GatewayNodes::b_ = nullptr;

TEST_F(GatewayNodes, ForwardsChatStreamingAndNot) {
  GatewayRun gw;
  ASSERT_TRUE(gw.start(node_backend("laptop", a_->url(), "local") + "[alias]\nreasoning = [\"laptop:r1\"]\n"))
      << gw.proc.stderr_text();
  const CurlResult direct = post(a_->url() + "/v1/chat/completions", chat_body("r1", "Say hi", 16, false));
  ASSERT_EQ(direct.status, 200) << direct.body;
  const json d = json::parse(direct.body);

  const CurlResult r = post(gw.url() + "/v1/chat/completions", chat_body("reasoning", "Say hi", 16, false));
  ASSERT_EQ(r.status, 200) << r.body;
  const json g = json::parse(r.body);
  EXPECT_EQ(g["model"], "reasoning");
  EXPECT_EQ(g["object"], "chat.completion");
  EXPECT_EQ(g["choices"][0]["message"].value("reasoning_content", ""),
            d["choices"][0]["message"].value("reasoning_content", ""));
  EXPECT_EQ(g["choices"][0]["message"]["content"], d["choices"][0]["message"]["content"]);
  EXPECT_EQ(g["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(g["usage"]["completion_tokens"], 16);
  EXPECT_EQ(g["usage"]["prompt_tokens"], d["usage"]["prompt_tokens"]);

  const CurlResult s = post(gw.url() + "/v1/chat/completions", chat_body("reasoning", "Say hi", 16, true), "-N");
  ASSERT_EQ(s.status, 200) << s.body;
  const Streamed st = parse_stream(s.body);
  EXPECT_TRUE(st.done);
  EXPECT_TRUE(st.error.is_null()) << st.error;
  EXPECT_EQ(st.reasoning, d["choices"][0]["message"].value("reasoning_content", ""));
  EXPECT_EQ(st.content, d["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_EQ(st.usage["completion_tokens"], 16);
  EXPECT_EQ(st.id.rfind("chatcmpl-gw-", 0), 0u) << st.id;

  // The legacy endpoint by the concrete model name.
  json cb = {{"model", "r1"}, {"prompt", "Once upon"}, {"max_tokens", 8}, {"temperature", 0}};
  const CurlResult dc = post(a_->url() + "/v1/completions", cb.dump());
  const CurlResult gc = post(gw.url() + "/v1/completions", cb.dump());
  ASSERT_EQ(gc.status, 200) << gc.body;
  EXPECT_EQ(json::parse(gc.body)["choices"][0]["text"], json::parse(dc.body)["choices"][0]["text"]);

  // Models: the alias and the concrete model.
  const CurlResult m = curl(gw.url() + "/v1/models");
  EXPECT_NE(m.body.find("\"reasoning\""), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("\"r1\""), std::string::npos) << m.body;
  // Per-backend metrics.
  const CurlResult metrics = curl(gw.url() + "/metrics");
  EXPECT_NE(metrics.body.find("dhi_gateway_backend_requests_total{backend=\"laptop\"} 3"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("dhi_gateway_backend_latency_seconds_count{backend=\"laptop\"} 3"), std::string::npos);
}

// Logprobs a client asks for come through as the node sent them, streamed or
// not, on both endpoints; the ones the gateway asks nodes for on its own (to
// count tokens) never reach a client that did not ask.
TEST_F(GatewayNodes, LogprobsPassThroughOnlyWhenAsked) {
  GatewayRun gw;
  ASSERT_TRUE(gw.start(node_backend("laptop", a_->url(), "local") + "[alias]\nreasoning = [\"laptop:r1\"]\n"))
      << gw.proc.stderr_text();
  auto with_logprobs = [](const std::string& model, bool stream) {
    json b = json::parse(chat_body(model, "Say hi", 12, stream));
    b["logprobs"] = true;
    b["top_logprobs"] = 2;
    return b.dump();
  };
  const CurlResult direct = post(a_->url() + "/v1/chat/completions", with_logprobs("r1", false));
  ASSERT_EQ(direct.status, 200) << direct.body;
  const json expected = json::parse(direct.body)["choices"][0]["logprobs"];
  ASSERT_EQ(expected["content"].size(), 12u) << expected;

  const CurlResult r = post(gw.url() + "/v1/chat/completions", with_logprobs("reasoning", false));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["choices"][0]["logprobs"], expected);
  const Streamed st = parse_stream(post(gw.url() + "/v1/chat/completions", with_logprobs("reasoning", true), "-N").body);
  EXPECT_TRUE(st.done);
  EXPECT_EQ(st.logprobs, expected["content"]);

  // Not asked: null everywhere, though the node was asked for them.
  const CurlResult plain = post(gw.url() + "/v1/chat/completions", chat_body("reasoning", "Say hi", 12, false));
  EXPECT_TRUE(json::parse(plain.body)["choices"][0]["logprobs"].is_null()) << plain.body;
  const Streamed plain_st = parse_stream(post(gw.url() + "/v1/chat/completions", chat_body("reasoning", "Say hi", 12, true), "-N").body);
  EXPECT_TRUE(plain_st.done);
  EXPECT_TRUE(plain_st.logprobs.is_null()) << plain_st.logprobs;

  // Legacy completions: the parallel arrays, text_offset included.
  const json cb = {{"model", "r1"}, {"prompt", "Once upon"}, {"max_tokens", 8}, {"temperature", 0}, {"logprobs", 1}};
  const json dc = json::parse(post(a_->url() + "/v1/completions", cb.dump()).body);
  const CurlResult gc = post(gw.url() + "/v1/completions", cb.dump());
  ASSERT_EQ(gc.status, 200) << gc.body;
  ASSERT_EQ(dc["choices"][0]["logprobs"]["tokens"].size(), 8u) << dc;
  EXPECT_EQ(json::parse(gc.body)["choices"][0]["logprobs"], dc["choices"][0]["logprobs"]);
}

TEST_F(GatewayNodes, FailoverBeforeFirstToken) {
  GatewayRun gw;
  // "broken" is healthy (node B answers /health) but refuses the request: it
  // does not serve the model "ghost" the alias sends it (HTTP 404).
  ASSERT_TRUE(gw.start("[[backend]]\nname = \"broken\"\nkind = \"node\"\nurl = \"" + b_->url() +
                       "\"\ntier = \"local\"\nmodels = [\"ghost\"]\n\n" + node_backend("laptop", a_->url(), "local") +
                       "[alias]\nreasoning = [\"broken:ghost\", \"laptop:r1\"]\n"))
      << gw.proc.stderr_text();
  const CurlResult r = post(gw.url() + "/v1/chat/completions", chat_body("reasoning", "Hello", 8, true), "-N");
  ASSERT_EQ(r.status, 200) << r.body;
  const Streamed st = parse_stream(r.body);
  EXPECT_TRUE(st.done);
  EXPECT_TRUE(st.error.is_null()) << st.error;
  EXPECT_EQ(st.usage["completion_tokens"], 8);

  EXPECT_EQ(gw.proc.stop(), 0) << gw.proc.stderr_text();
  const auto log = gw.audit();
  const auto attempts = records(log, "attempt");
  ASSERT_EQ(attempts.size(), 2u) << read_text(gw.audit_path);
  EXPECT_EQ(attempts[0]["backend"], "broken");
  EXPECT_EQ(attempts[0]["outcome"], "error");
  EXPECT_NE(attempts[0]["error"].get<std::string>().find("404"), std::string::npos);
  EXPECT_EQ(attempts[1]["backend"], "laptop");
  EXPECT_EQ(attempts[1]["outcome"], "ok");
  EXPECT_EQ(attempts[1]["continuation"], false);
  const auto results = records(log, "result");
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0]["failovers"], 1);
  EXPECT_EQ(results[0]["backend"], "laptop");
  auto report = policy::verify_audit_log(std::filesystem::path(gw.audit_path));
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->clean()) << report->to_json().dump();

  // When every backend refuses, the client gets the refusal, not a stream.
  GatewayRun gw2;
  ASSERT_TRUE(gw2.start("[[backend]]\nname = \"broken\"\nkind = \"node\"\nurl = \"" + b_->url() +
                        "\"\ntier = \"local\"\nmodels = [\"ghost\"]\n"))
      << gw2.proc.stderr_text();
  const CurlResult refused = post(gw2.url() + "/v1/chat/completions", chat_body("ghost", "Hello", 8, true), "-N");
  EXPECT_EQ(refused.status, 404) << refused.body;
  EXPECT_NE(refused.body.find("upstream_rejected"), std::string::npos) << refused.body;
}

// dhi serve's side of a continuation: only the last message, an assistant
// one, may be a prefix; the answer continues it (the SIGKILL test below checks
// the text against an uninterrupted run).
TEST_F(GatewayNodes, NodeTakesAnAssistantPrefix) {
  json b = {{"model", "r1"},
            {"messages", {{{"role", "assistant"}, {"content", "x"}, {"prefix", true}}, {{"role", "user"}, {"content", "y"}}}},
            {"max_tokens", 4}};
  CurlResult r = post(a_->url() + "/v1/chat/completions", b.dump());
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("messages[0].prefix"), std::string::npos) << r.body;
  b["messages"] = {{{"role", "user"}, {"content", "y"}},
                   {{"role", "assistant"}, {"content", ""}, {"reasoning_content", 7}, {"prefix", true}}};
  r = post(a_->url() + "/v1/chat/completions", b.dump());
  EXPECT_EQ(r.status, 400) << r.body;
  b["messages"][1]["reasoning_content"] = "Let me think";
  r = post(a_->url() + "/v1/chat/completions", b.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["usage"]["completion_tokens"], 4);
  // The prefix is not repeated: the answer is only what follows it.
  EXPECT_EQ(j["choices"][0]["message"].value("reasoning_content", "").find("Let me think"), std::string::npos);
}

// A local backend: the engine runs inside the gateway process, behind the
// same server as `dhi serve` on an internal port; its answer equals a node's.
TEST_F(GatewayNodes, LocalBackendRunsInTheGateway) {
  GatewayRun gw;
  ASSERT_TRUE(gw.start("[[backend]]\nname = \"inproc\"\nkind = \"local\"\nmodel = \"" + *model_ +
                       "\"\nctx = 1024\nparallel = 1\ntier = \"local\"\nmodels = [\"r1\"]\n"))
      << gw.proc.stderr_text();
  const CurlResult direct = post(a_->url() + "/v1/chat/completions", chat_body("r1", "Local?", 8, false));
  const CurlResult r = post(gw.url() + "/v1/chat/completions", chat_body("r1", "Local?", 8, false));
  ASSERT_EQ(r.status, 200) << r.body;
  const json d = json::parse(direct.body), g = json::parse(r.body);
  EXPECT_EQ(g["choices"][0]["message"], d["choices"][0]["message"]);
  EXPECT_EQ(gw.proc.stop(), 0) << gw.proc.stderr_text();
  const auto attempts = records(gw.audit(), "attempt");
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0]["backend"], "inproc");
  EXPECT_EQ(attempts[0]["tier"], "local");
}

TEST_F(GatewayNodes, PrivacyLevelsAreEnforced) {
  GatewayRun gw;
  ASSERT_TRUE(gw.start(node_backend("spare", b_->url(), "trusted") + node_backend("laptop", a_->url(), "local") +
                       "[alias]\nreasoning = [\"spare:r1\", \"laptop:r1\"]\nremote = [\"spare:r1\"]\n"
                       "[privacy]\ndefault = \"any\"\ndetectors = [\"email\"]\non_detect = \"local\"\n"))
      << gw.proc.stderr_text();
  // No header: the trusted node, first in the alias.
  CurlResult r = post(gw.url() + "/v1/chat/completions", chat_body("reasoning", "Hi", 4, false));
  ASSERT_EQ(r.status, 200) << r.body;
  // X-DHI-Privacy: local skips the trusted node.
  r = post(gw.url() + "/v1/chat/completions", chat_body("reasoning", "Hi", 4, false), "-H 'X-DHI-Privacy: local'");
  ASSERT_EQ(r.status, 200) << r.body;
  // An e-mail address raises the level to local.
  r = post(gw.url() + "/v1/chat/completions", chat_body("reasoning", "Mail ann@example.com", 4, false));
  ASSERT_EQ(r.status, 200) << r.body;
  // No backend at the level: a 503 naming why, never a downgrade.
  r = post(gw.url() + "/v1/chat/completions", chat_body("remote", "Hi", 4, false), "-H 'X-DHI-Privacy: local'");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("no_allowed_backend"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("spare: tier trusted is above the request's level local"), std::string::npos) << r.body;
  r = post(gw.url() + "/v1/chat/completions", chat_body("reasoning", "Hi", 4, false), "-H 'X-DHI-Privacy: secret'");
  EXPECT_EQ(r.status, 400) << r.body;
  r = post(gw.url() + "/v1/chat/completions", chat_body("nothing", "Hi", 4, false));
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(r.body.find("model_not_found"), std::string::npos) << r.body;

  gw.proc.stop();
  const auto log = gw.audit();
  const auto requests = records(log, "request");
  const auto attempts = records(log, "attempt");
  ASSERT_EQ(requests.size(), 5u) << read_text(gw.audit_path);
  ASSERT_EQ(attempts.size(), 3u) << read_text(gw.audit_path);
  EXPECT_EQ(attempts[0]["backend"], "spare");
  EXPECT_EQ(requests[0]["level_source"], "default");
  EXPECT_EQ(attempts[1]["backend"], "laptop");
  EXPECT_EQ(requests[1]["privacy_level"], "local");
  EXPECT_EQ(requests[1]["level_source"], "header");
  EXPECT_EQ(requests[1]["candidates"][0]["skipped"].is_string(), true);
  EXPECT_EQ(attempts[2]["backend"], "laptop");
  EXPECT_EQ(requests[2]["detectors"], json::array({"email"}));
  EXPECT_EQ(requests[2]["privacy_level"], "local");
  // The prompt text is not in the log unless include_text is on.
  EXPECT_EQ(read_text(gw.audit_path).find("ann@example.com"), std::string::npos);
  auto report = policy::verify_audit_log(std::filesystem::path(gw.audit_path));
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->clean()) << report->to_json().dump();
}

// Streams `body` through curl; calls `on_line(line)` for every line as it
// arrives; returns the whole body.
template <typename F>
std::string stream_curl(const std::string& url, const std::string& body, F on_line) {
  const std::string in = temp_path("body.json");
  std::ofstream(in) << body;
  const std::string cmd = "curl -sN --max-time 120 -H 'Content-Type: application/json' --data-binary @" + in + " " + url;
  FILE* p = popen(cmd.c_str(), "r");
  std::string all;
  if (!p) return all;
  char buf[1 << 16];
  while (fgets(buf, sizeof buf, p)) {
    all += buf;
    on_line(std::string(buf));
  }
  pclose(p);
  std::remove(in.c_str());
  return all;
}

// The text a greedy run produces re-tokenizes to the same tokens: the
// condition under which a text-level continuation on another node (which
// re-tokenizes the text so far) must produce exactly the uninterrupted run.
bool retokenizes_exactly(const std::string& model_path, const std::string& prompt_text, int64_t prompt_tokens,
                         int64_t completion_tokens, std::string& why) {
  auto file = gguf::GgufFile::open(model_path);
  if (!file) return why = file.error().message, false;
  auto tk = tok::Tokenizer::from_gguf(*file);
  if (!tk) return why = tk.error().message, false;
  const size_t n = tk->encode(prompt_text, tk->add_bos(), true).size();
  why = "re-tokenized: " + std::to_string(n) + " tokens, generated: " + std::to_string(prompt_tokens) + " + " +
        std::to_string(completion_tokens);
  return int64_t(n) == prompt_tokens + completion_tokens;
}

// A node killed with SIGKILL mid-stream: the gateway continues the same
// completion on the other node; the client's stream is one uninterrupted
// answer equal to an uninterrupted greedy run.
TEST(GatewayKill, SigkillMidStreamContinuesOnAnotherNode) {
  const std::string model = write_r1_model();
  ASSERT_FALSE(model.empty());
  ServeProcess a, b;
  ASSERT_TRUE(a.start({"-m", model, "--parallel", "1", "--ctx", "2048", "--alias", "r1"})) << a.stderr_text();
  ASSERT_TRUE(b.start({"-m", model, "--parallel", "1", "--ctx", "2048", "--alias", "r1"})) << b.stderr_text();
  GatewayRun gw;
  ASSERT_TRUE(gw.start(node_backend("laptop", a.url(), "local") + node_backend("spare", b.url(), "trusted") +
                       "[alias]\nreasoning = [\"laptop:r1\", \"spare:r1\"]\n"))
      << gw.proc.stderr_text();

  const int kTokens = 300;
  // With logprobs: the continued answer's entries must be the uninterrupted one's.
  auto story = [&](const std::string& model, bool stream) {
    json body = json::parse(chat_body(model, "Tell a story", kTokens, stream));
    body["logprobs"] = true;
    return body.dump();
  };
  const CurlResult direct = post(b.url() + "/v1/chat/completions", story("r1", false));
  ASSERT_EQ(direct.status, 200) << direct.body;
  const json d = json::parse(direct.body);
  const std::string expected = d["choices"][0]["message"].value("reasoning_content", "") +
                               d["choices"][0]["message"]["content"].get<std::string>();
  std::string why;
  const std::string prompt = "<｜User｜>Tell a story<｜Assistant｜><think>\n";
  ASSERT_TRUE(retokenizes_exactly(model, prompt + expected, d["usage"]["prompt_tokens"],
                                  d["usage"]["completion_tokens"], why))
      << "the greedy answer does not re-tokenize to its own tokens, so no text-level continuation can equal it ("
      << why << ")";

  int seen = 0;
  bool killed = false;
  const std::string body = stream_curl(gw.url() + "/v1/chat/completions", story("reasoning", true),
                                       [&](const std::string& l) {
                                         if (l.rfind("data: {", 0) == 0 && ++seen == 4 && !killed) {
                                           a.stop(SIGKILL);
                                           killed = true;
                                         }
                                       });
  ASSERT_TRUE(killed);
  const Streamed st = parse_stream(body);
  EXPECT_TRUE(st.done);
  EXPECT_TRUE(st.error.is_null()) << st.error;
  EXPECT_EQ(st.reasoning + st.content, expected);
  EXPECT_EQ(st.usage["completion_tokens"], d["usage"]["completion_tokens"]);
  // The same tokens; the log-probabilities to float tolerance, as the
  // continuation computed the first part's in one batch, not token by token.
  const json& want = d["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(st.logprobs.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(st.logprobs[i]["token"], want[i]["token"]) << i;
    EXPECT_NEAR(st.logprobs[i]["logprob"].get<double>(), want[i]["logprob"].get<double>(), 1e-3) << i;
  }

  gw.proc.stop();
  const auto attempts = records(gw.audit(), "attempt");
  ASSERT_EQ(attempts.size(), 2u) << read_text(gw.audit_path);
  EXPECT_EQ(attempts[0]["backend"], "laptop");
  EXPECT_NE(attempts[0]["outcome"], "ok");
  EXPECT_EQ(attempts[1]["backend"], "spare");
  EXPECT_EQ(attempts[1]["continuation"], true);
  EXPECT_EQ(attempts[1]["outcome"], "ok");
  EXPECT_GT(attempts[0]["completion_tokens"].get<int>(), 0);
  EXPECT_EQ(attempts[0]["completion_tokens"].get<int>() + attempts[1]["completion_tokens"].get<int>(),
            d["usage"]["completion_tokens"].get<int>());
  std::remove(model.c_str());
}

}  // namespace
}  // namespace dhi::test
