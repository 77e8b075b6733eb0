// The gateway config parser: the issue's example file verbatim, the extended
// format, and errors that name the key and its line.
#include <gtest/gtest.h>

#include <string>

#include "gateway/config.h"

namespace dhi::gateway {
namespace {

// The file from issue 7, byte for byte.
constexpr const char* kIssueConfig = R"(listen = "127.0.0.1:8090"
audit_log = "audit.jsonl"

[[backend]]
name = "laptop"
kind = "node"
url = "http://127.0.0.1:8081"
tier = "local"
models = ["r1"]

[[backend]]
name = "spare"
kind = "node"
url = "http://127.0.0.1:8083"
tier = "trusted"
models = ["r1"]

[[backend]]
name = "cloud"
kind = "hosted"
url = "http://127.0.0.1:8082/v1"
api_key_env = "CLOUD_API_KEY"
tier = "external"
models = ["deepseek-reasoner"]

[alias]
reasoning = ["laptop:r1", "spare:r1", "cloud:deepseek-reasoner"]

[privacy]
default = "any"
detectors = ["email", "phone", "card", "iban", "secret"]
on_detect = "trusted"   # raise the request's level to at most trusted
)";

std::string test_env(const char* name) {
  const std::string n = name;
  if (n == "CLOUD_API_KEY") return "sk-test-cloud";
  if (n == "ALICE_KEY") return "alice-secret";
  if (n == "BOB_KEY") return "bob-secret";
  return "";
}
std::string empty_env(const char*) { return ""; }

Expected<GatewayConfig> parse(const std::string& text, GetEnv env = test_env) {
  return parse_config(text, "gw.toml", env);
}

// The error message of a config that must fail.
std::string error_of(const std::string& text, GetEnv env = test_env) {
  auto c = parse(text, env);
  EXPECT_FALSE(c.ok()) << text;
  return c.ok() ? "" : c.error().message;
}

TEST(GatewayConfig, IssueExampleVerbatim) {
  auto c = parse(kIssueConfig);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->host, "127.0.0.1");
  EXPECT_EQ(c->port, 8090);
  EXPECT_EQ(c->audit_log, "audit.jsonl");
  ASSERT_EQ(c->backends.size(), 3u);
  EXPECT_EQ(c->backends[0].name, "laptop");
  EXPECT_EQ(c->backends[0].kind, BackendKind::Node);
  EXPECT_EQ(c->backends[0].tier, policy::Tier::local);
  EXPECT_EQ(c->backends[1].tier, policy::Tier::trusted);
  EXPECT_EQ(c->backends[2].kind, BackendKind::Hosted);
  EXPECT_EQ(c->backends[2].tier, policy::Tier::external);
  EXPECT_EQ(c->backends[2].url, "http://127.0.0.1:8082/v1");
  EXPECT_EQ(c->backends[2].api_key, "sk-test-cloud");
  EXPECT_TRUE(c->backends[2].enabled);
  ASSERT_EQ(c->aliases.count("reasoning"), 1u);
  const auto& targets = c->aliases.at("reasoning");
  ASSERT_EQ(targets.size(), 3u);
  EXPECT_EQ(targets[0].backend, 0u);
  EXPECT_EQ(targets[2].backend, 2u);
  EXPECT_EQ(targets[2].model, "deepseek-reasoner");
  EXPECT_EQ(c->privacy.default_level, policy::Tier::external);
  EXPECT_EQ(c->privacy.detectors.size(), 5u);
  EXPECT_EQ(c->privacy.on_detect, policy::DetectAction::raise);
  EXPECT_EQ(c->privacy.raise_to, policy::Tier::trusted);
  EXPECT_TRUE(c->keys.empty());
}

TEST(GatewayConfig, HostedKeyMissingDisablesTheBackend) {
  auto c = parse(kIssueConfig, empty_env);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c->backends[2].enabled);
  EXPECT_NE(c->backends[2].disabled_reason.find("CLOUD_API_KEY"), std::string::npos);
  EXPECT_TRUE(c->backends[0].enabled);
}

TEST(GatewayConfig, ExtendedFormat) {
  auto c = parse(R"(listen = "0.0.0.0:0"
audit_log = "a.jsonl"
audit_include_text = true
health_interval = 0.5

[[backend]]
name = "gpu"
kind = "node"
url = "http://127.0.0.1:9000/"
tier = "trusted"
models = ["r1", "qwen"]
timeout = { connect = 1.5, first_token = 20, idle = 4 }
max_context = 8192
weight = 2

[[backend]]
name = "ds"
kind = "hosted"
url = "https://api.deepseek.com/v1"
api_key_env = "CLOUD_API_KEY"
tier = "external"
models = ["deepseek-reasoner"]
cost_per_1k_prompt = 0.00055
cost_per_1k_completion = 0.00219

[[key]]
id = "alice"
key_env = "ALICE_KEY"
privacy = "local"
daily_budget = 2.5

[[key]]
id = "bob"
key_env = "BOB_KEY"

[routing]
health = 2
load = 0.5
latency = 1
cost = 100

[circuit]
failures = 5
cooldown = 30

[privacy]
default = "trusted"
detectors = ["email", "secret"]
on_detect = "redact"
per_detector = { secret = "block" }
custom = [{ name = "project", pattern = "PRJ-[0-9]{4}" }]
)");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->host, "0.0.0.0");
  EXPECT_EQ(c->port, 0);
  EXPECT_TRUE(c->audit_include_text);
  EXPECT_EQ(c->health_interval_ms, 500);
  EXPECT_EQ(c->backends[0].url, "http://127.0.0.1:9000");
  EXPECT_EQ(c->backends[0].timeouts.connect_ms, 1500);
  EXPECT_EQ(c->backends[0].timeouts.first_token_ms, 20000);
  EXPECT_EQ(c->backends[0].timeouts.idle_ms, 4000);
  EXPECT_EQ(c->backends[0].max_context, 8192);
  EXPECT_DOUBLE_EQ(c->backends[0].weight, 2.0);
  EXPECT_DOUBLE_EQ(c->backends[1].cost_per_1k_completion, 0.00219);
  ASSERT_EQ(c->keys.size(), 2u);
  EXPECT_EQ(c->keys[0].key, "alice-secret");
  EXPECT_TRUE(c->keys[0].privacy_set);
  EXPECT_EQ(c->keys[0].privacy, policy::Tier::local);
  EXPECT_DOUBLE_EQ(c->keys[0].daily_budget, 2.5);
  EXPECT_FALSE(c->keys[1].privacy_set);
  EXPECT_DOUBLE_EQ(c->weights.cost, 100);
  EXPECT_EQ(c->circuit_failures, 5);
  EXPECT_EQ(c->circuit_cooldown_ms, 30000);
  EXPECT_EQ(c->privacy.default_level, policy::Tier::trusted);
  EXPECT_EQ(c->privacy.on_detect, policy::DetectAction::redact);
  ASSERT_EQ(c->privacy.per_detector.count("secret"), 1u);
  EXPECT_EQ(c->privacy.per_detector.at("secret").action, policy::DetectAction::block);
  ASSERT_EQ(c->privacy.custom.size(), 1u);
  EXPECT_EQ(c->privacy.custom[0].name, "project");
}

TEST(GatewayConfig, LocalBackend) {
  auto c = parse("[[backend]]\nname = \"me\"\nkind = \"local\"\nmodel = \"/m/r1.gguf\"\nctx = 2048\n"
                 "parallel = 3\ntier = \"local\"\nmodels = [\"r1\"]\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->backends[0].kind, BackendKind::Local);
  EXPECT_EQ(c->backends[0].model_path, "/m/r1.gguf");
  EXPECT_EQ(c->backends[0].local_ctx, 2048);
  EXPECT_EQ(c->backends[0].local_parallel, 3);
  std::string e = error_of("[[backend]]\nname = \"me\"\nkind = \"local\"\nurl = \"http://x\"\nmodel = \"m\"\n"
                           "tier = \"local\"\nmodels = [\"r1\"]\n");
  EXPECT_NE(e.find("backend \"me\".url (line 4)"), std::string::npos) << e;
  e = error_of("[[backend]]\nname = \"me\"\nkind = \"local\"\nmodel = \"m\"\ntier = \"local\"\n"
               "models = [\"a\", \"b\"]\n");
  EXPECT_NE(e.find("exactly one model"), std::string::npos) << e;
}

TEST(GatewayConfig, ErrorsNameKeyAndLine) {
  const std::string head = "[[backend]]\nname = \"a\"\nkind = \"node\"\nurl = \"http://127.0.0.1:1\"\n";
  std::string e = error_of(head + "tier = \"cloudy\"\nmodels = [\"m\"]\n");
  EXPECT_NE(e.find("backend \"a\".tier (line 5)"), std::string::npos) << e;

  e = error_of(head + "tier = \"local\"\nmodels = [\"m\"]\ncolour = 3\n");
  EXPECT_NE(e.find("backend \"a\".colour (line 7): unknown key"), std::string::npos) << e;

  e = error_of(head + "tier = \"local\"\nmodels = [\"m\"]\n[alias]\nx = [\"b:m\"]\n");
  EXPECT_NE(e.find("alias.x (line 8)"), std::string::npos) << e;
  EXPECT_NE(e.find("no backend named \"b\""), std::string::npos) << e;

  e = error_of(head + "tier = \"local\"\nmodels = [\"m\"]\n[alias]\nx = [\"a:other\"]\n");
  EXPECT_NE(e.find("does not list model \"other\""), std::string::npos) << e;

  e = error_of("listen = \"nowhere\"\n" + head + "tier = \"local\"\nmodels = [\"m\"]\n");
  EXPECT_NE(e.find("listen (line 1)"), std::string::npos) << e;

  e = error_of(head + "tier = \"local\"\nmodels = [\"m\"]\ntimeout = { connect = -1 }\n");
  EXPECT_NE(e.find("timeout.connect (line 7)"), std::string::npos) << e;

  e = error_of(head + "tier = \"local\"\nmodels = [\"m\"]\n[[key]]\nid = \"k\"\nkey_env = \"NOPE\"\n");
  EXPECT_NE(e.find("key[0].key_env (line 9)"), std::string::npos) << e;
  EXPECT_NE(e.find("NOPE"), std::string::npos) << e;

  e = error_of(head + "tier = \"local\"\nmodels = [\"m\"]\n[privacy]\ndetectors = [\"email\", \"dna\"]\n");
  EXPECT_NE(e.find("privacy.detectors (line 8)"), std::string::npos) << e;

  e = error_of(head + "tier = \"local\"\nmodels = [\"m\"]\n[privacy]\non_detect = \"shout\"\n");
  EXPECT_NE(e.find("privacy.on_detect (line 8)"), std::string::npos) << e;

  e = error_of(head + "tier = \"local\"\nmodels = 3\n");
  EXPECT_NE(e.find("models (line 6)"), std::string::npos) << e;

  e = error_of("[[backend]]\nname = \"a\"\nkind = \"node\"\nurl = \"ftp://x\"\n");
  EXPECT_NE(e.find("url (line 4)"), std::string::npos) << e;

  e = error_of(head + "tier = \"local\"\nmodels = [\"m\"]\n" + head + "tier = \"local\"\nmodels = [\"m\"]\n");
  EXPECT_NE(e.find("duplicate backend name"), std::string::npos) << e;

  // TOML syntax errors carry the parser's line.
  e = error_of("listen = \"127.0.0.1:1\"\n[[backend]\n");
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;

  e = error_of("listen = \"127.0.0.1:1\"\n");
  EXPECT_NE(e.find("[[backend]]"), std::string::npos) << e;
}

TEST(GatewayConfig, UnreadableFile) {
  auto c = load_config("/nonexistent/gw.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("/nonexistent/gw.toml"), std::string::npos);
}

}  // namespace
}  // namespace dhi::gateway
