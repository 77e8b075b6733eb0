// The router's ordering on a parsed config with observed backend state: the
// alias order by default, the latency target ahead of the weights, and the
// tier check before anything else.
#include <gtest/gtest.h>

#include <string>

#include "gateway/backends.h"
#include "gateway/router.h"

namespace dhi::gateway {
namespace {

GatewayConfig config_with(const std::string& routing) {
  const std::string text = R"(
[[backend]]
name = "slow"
kind = "node"
url = "http://127.0.0.1:1"
tier = "local"
models = ["r1"]

[[backend]]
name = "fast"
kind = "node"
url = "http://127.0.0.1:2"
tier = "trusted"
models = ["r1"]

[alias]
reasoning = ["slow:r1", "fast:r1"]

[routing]
)" + routing;
  auto c = parse_config(text, "gw.toml", [](const char*) { return std::string(); });
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? std::move(*c) : GatewayConfig{};
}

std::vector<std::string> order(const GatewayConfig& cfg, const Backends& b, policy::Tier level) {
  RouteRequest r;
  r.model = "reasoning";
  r.level = level;
  const RoutePlan p = plan_route(cfg, b, r);
  std::vector<std::string> names;
  for (size_t i : p.order) names.push_back(cfg.backends[p.candidates[i].backend].name);
  return names;
}

TEST(GatewayRouter, LatencyTargetOrdersBeforeTheWeights) {
  // Latency weight 0: only the target can move the slow backend back.
  const GatewayConfig with_target = config_with("latency = 0\nlatency_target = 1.5\n");
  const GatewayConfig without = config_with("latency = 0\n");
  ASSERT_EQ(with_target.weights.latency_target, 1.5);
  for (const GatewayConfig* cfg : {&with_target, &without}) {
    Backends b(*cfg);
    // No observation yet: the alias order.
    EXPECT_EQ(order(*cfg, b, policy::Tier::external), (std::vector<std::string>{"slow", "fast"}));
  }
  Backends b(with_target), plain(without);
  for (Backends* x : {&b, &plain}) {
    x->record_attempt(0, true, false, 4000, 5000, 10, 10);  // 4 s to first token
    x->record_attempt(1, true, false, 200, 900, 10, 10);
  }
  EXPECT_EQ(order(with_target, b, policy::Tier::external), (std::vector<std::string>{"fast", "slow"}));
  EXPECT_EQ(order(without, plain, policy::Tier::external), (std::vector<std::string>{"slow", "fast"}));
  // Missing the target is a rank, not a refusal: a local-only request still
  // gets the slow local backend, and never the trusted one.
  EXPECT_EQ(order(with_target, b, policy::Tier::local), (std::vector<std::string>{"slow"}));
}

TEST(GatewayRouter, LatencyTargetMustBeSane) {
  auto c = parse_config("[[backend]]\nname = \"a\"\nkind = \"node\"\nurl = \"http://127.0.0.1:1\"\n"
                        "tier = \"local\"\nmodels = [\"r1\"]\n[routing]\nlatency_target = -1\n",
                        "gw.toml", [](const char*) { return std::string(); });
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("routing.latency_target"), std::string::npos) << c.error().message;
}

}  // namespace
}  // namespace dhi::gateway
