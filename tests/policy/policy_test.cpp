// decide() across level sources and actions, the config and header parsers,
// and the text walkers over every OpenAI body shape.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "policy/policy.h"

namespace dhi::policy {
namespace {

using nlohmann::json;

PolicyConfig config(DetectAction action, Tier raise_to = Tier::trusted) {
  PolicyConfig c;
  c.detectors = builtin_detector_names();
  c.on_detect = action;
  c.raise_to = raise_to;
  return c;
}

Detectors detectors(const PolicyConfig& c) {
  auto d = make_detectors(c);
  EXPECT_TRUE(d.ok()) << d.error().message;
  return std::move(d).value();
}

TEST(Tier, NamesBothWays) {
  EXPECT_EQ(*parse_tier("local"), Tier::local);
  EXPECT_EQ(*parse_tier("trusted"), Tier::trusted);
  EXPECT_EQ(*parse_tier("external"), Tier::external);
  EXPECT_FALSE(parse_tier("any").ok());
  EXPECT_EQ(*parse_privacy_level("any"), Tier::external);
  EXPECT_FALSE(parse_privacy_level("external").ok());
  EXPECT_STREQ(tier_name(Tier::external), "external");
  EXPECT_STREQ(level_name(Tier::external), "any");
  EXPECT_STREQ(level_name(Tier::trusted), "trusted");
  EXPECT_TRUE(tier_allowed(Tier::local, Tier::local));
  EXPECT_TRUE(tier_allowed(Tier::trusted, Tier::external));
  EXPECT_FALSE(tier_allowed(Tier::external, Tier::trusted));
  EXPECT_FALSE(tier_allowed(Tier::trusted, Tier::local));
}

TEST(Policy, LevelSourceHeaderThenKeyThenDefault) {
  PolicyConfig c = config(DetectAction::raise);
  c.default_level = Tier::trusted;
  const Detectors d = detectors(c);
  PrivacyDecision h = decide(c, d, Tier::local, Tier::external, "hello");
  EXPECT_EQ(h.level_source, "header");
  EXPECT_EQ(h.level, Tier::local);
  PrivacyDecision k = decide(c, d, std::nullopt, Tier::external, "hello");
  EXPECT_EQ(k.level_source, "key");
  EXPECT_EQ(k.level, Tier::external);
  PrivacyDecision def = decide(c, d, std::nullopt, std::nullopt, "hello");
  EXPECT_EQ(def.level_source, "default");
  EXPECT_EQ(def.level, Tier::trusted);
  EXPECT_EQ(def.action, "allow");
  EXPECT_TRUE(def.fired.empty());
  EXPECT_FALSE(def.blocked);
  EXPECT_FALSE(def.redact_external);
  EXPECT_TRUE(def.reason.empty());
}

TEST(Policy, RaiseCapsTheLevel) {
  const PolicyConfig c = config(DetectAction::raise, Tier::trusted);
  const Detectors d = detectors(c);
  PrivacyDecision r = decide(c, d, Tier::external, std::nullopt, "mail bob@example.com or call +44 20 7946 0958");
  EXPECT_EQ(r.requested, Tier::external);
  EXPECT_EQ(r.level, Tier::trusted);
  EXPECT_EQ(r.fired, (std::vector<std::string>{"email", "phone"}));
  EXPECT_EQ(r.action, "raise");
  EXPECT_FALSE(r.blocked);
  EXPECT_NE(r.reason.find("from any to trusted"), std::string::npos) << r.reason;
  // A request already below the cap stays where it is.
  PrivacyDecision low = decide(c, d, Tier::local, std::nullopt, "bob@example.com");
  EXPECT_EQ(low.level, Tier::local);
  EXPECT_EQ(low.action, "raise");
  // Raise to local.
  const PolicyConfig lc = config(DetectAction::raise, Tier::local);
  EXPECT_EQ(decide(lc, detectors(lc), std::nullopt, std::nullopt, "bob@example.com").level, Tier::local);
}

TEST(Policy, BlockAndRedact) {
  const PolicyConfig bc = config(DetectAction::block);
  PrivacyDecision b = decide(bc, detectors(bc), Tier::external, std::nullopt, "card 4111 1111 1111 1111");
  EXPECT_TRUE(b.blocked);
  EXPECT_EQ(b.action, "block");
  EXPECT_EQ(b.fired, std::vector<std::string>{"card"});
  EXPECT_NE(b.reason.find("card"), std::string::npos);
  EXPECT_FALSE(b.redact_external);

  const PolicyConfig rc = config(DetectAction::redact);
  const Detectors rd = detectors(rc);
  PrivacyDecision r = decide(rc, rd, Tier::external, std::nullopt, "IBAN DE89 3704 0044 0532 0130 00");
  EXPECT_FALSE(r.blocked);
  EXPECT_EQ(r.action, "redact");
  EXPECT_EQ(r.level, Tier::external);
  EXPECT_TRUE(r.redact_external);
  // At trusted no external backend is allowed: nothing to redact for.
  PrivacyDecision t = decide(rc, rd, Tier::trusted, std::nullopt, "IBAN DE89 3704 0044 0532 0130 00");
  EXPECT_EQ(t.action, "redact");
  EXPECT_FALSE(t.redact_external);
}

TEST(Policy, PerDetectorOverrides) {
  PolicyConfig c = config(DetectAction::raise, Tier::trusted);
  c.per_detector["secret"] = *parse_on_detect("block");
  c.per_detector["card"] = *parse_on_detect("redact");
  c.per_detector["iban"] = *parse_on_detect("local");
  const Detectors d = detectors(c);
  EXPECT_EQ(decide(c, d, std::nullopt, std::nullopt, "bob@example.com").level, Tier::trusted);
  EXPECT_TRUE(decide(c, d, std::nullopt, std::nullopt, "key AKIAIOSFODNN7EXAMPLE").blocked);
  PrivacyDecision card = decide(c, d, std::nullopt, std::nullopt, "4111 1111 1111 1111");
  EXPECT_EQ(card.action, "redact");
  EXPECT_TRUE(card.redact_external);
  EXPECT_EQ(decide(c, d, std::nullopt, std::nullopt, "DE89370400440532013000").level, Tier::local);
  // Raise wins over redact in the action; block over both.
  PrivacyDecision both = decide(c, d, std::nullopt, std::nullopt, "4111 1111 1111 1111 bob@example.com");
  EXPECT_EQ(both.action, "raise");
  EXPECT_EQ(both.level, Tier::trusted);
  EXPECT_FALSE(both.redact_external);
  EXPECT_EQ(decide(c, d, std::nullopt, std::nullopt, "4111 1111 1111 1111 AKIAIOSFODNN7EXAMPLE").action, "block");

  PolicyConfig bad = c;
  bad.per_detector["passport"] = *parse_on_detect("block");
  ASSERT_FALSE(make_detectors(bad).ok());
  EXPECT_NE(make_detectors(bad).error().message.find("passport"), std::string::npos);
  PolicyConfig custom = c;
  custom.custom.push_back({"project", "Zeus"});
  custom.per_detector["project"] = *parse_on_detect("block");
  EXPECT_TRUE(decide(custom, detectors(custom), std::nullopt, std::nullopt, "about Zeus").blocked);
}

TEST(Policy, ParseOnDetectAndHeader) {
  EXPECT_EQ(parse_on_detect("trusted")->action, DetectAction::raise);
  EXPECT_EQ(parse_on_detect("trusted")->raise_to, Tier::trusted);
  EXPECT_EQ(parse_on_detect("local")->raise_to, Tier::local);
  EXPECT_EQ(parse_on_detect("block")->action, DetectAction::block);
  EXPECT_EQ(parse_on_detect("redact")->action, DetectAction::redact);
  for (const char* v : {"any", "external", "", "Block"}) {
    auto r = parse_on_detect(v);
    ASSERT_FALSE(r.ok()) << v;
    EXPECT_NE(r.error().message.find("local, trusted, block, redact"), std::string::npos);
  }
  EXPECT_EQ(on_detect_name(*parse_on_detect("local")), "local");
  EXPECT_EQ(on_detect_name(*parse_on_detect("redact")), "redact");

  EXPECT_EQ(*parse_privacy_header("local"), Tier::local);
  EXPECT_EQ(*parse_privacy_header(" Trusted\t"), Tier::trusted);
  EXPECT_EQ(*parse_privacy_header("ANY"), Tier::external);
  for (const char* v : {"", "external", "public", "local,any", "loc al"}) {
    auto r = parse_privacy_header(v);
    ASSERT_FALSE(r.ok()) << v;
    EXPECT_NE(r.error().message.find("X-DHI-Privacy"), std::string::npos);
  }
  // Control bytes are not echoed into the error.
  auto r = parse_privacy_header(std::string("x\r\ny", 4));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
}

TEST(Policy, RequestTextOfEveryBodyShape) {
  const json chat = json::parse(R"({
    "model": "m",
    "messages": [
      {"role": "system", "content": "sys"},
      {"role": "user", "content": [{"type": "text", "text": "part one"},
                                    {"type": "image_url", "image_url": {"url": "http://x/a.png"}},
                                    {"type": "text", "text": "part two"}]},
      {"role": "assistant", "content": null, "reasoning_content": "thinking",
       "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"q\":1}"}}]},
      {"role": "tool", "content": "tool out"},
      "not an object",
      {"role": "user", "content": 42}
    ]})");
  EXPECT_EQ(request_text(chat), "sys\npart one\npart two\nthinking\n{\"q\":1}\ntool out");
  EXPECT_EQ(request_text(json::parse(R"({"prompt": "just text"})")), "just text");
  EXPECT_EQ(request_text(json::parse(R"({"prompt": ["a", "b", 3]})")), "a\nb");
  EXPECT_EQ(request_text(json::parse(R"({"prompt": [1, 2, 3]})")), "");
  EXPECT_EQ(request_text(json::parse(R"([1, 2])")), "");
  EXPECT_EQ(request_text(json::parse(R"({"messages": "x"})")), "");
}

TEST(Policy, RedactRequestRewritesTheSameFields) {
  PolicyConfig c = config(DetectAction::redact);
  const Detectors d = detectors(c);
  json chat = json::parse(R"({
    "model": "m", "user": "bob@example.com",
    "messages": [
      {"role": "user", "content": "write to bob@example.com"},
      {"role": "user", "content": [{"type": "text", "text": "card 4111 1111 1111 1111"},
                                    {"type": "image_url", "image_url": {"url": "http://x/bob@example.com"}}]},
      {"role": "assistant", "reasoning_content": "IBAN DE89370400440532013000",
       "tool_calls": [{"function": {"name": "pay", "arguments": "{\"to\":\"+44 20 7946 0958\"}"}}]}
    ]})");
  redact_request(chat, d);
  EXPECT_EQ(chat["messages"][0]["content"], "write to [REDACTED:email]");
  EXPECT_EQ(chat["messages"][1]["content"][0]["text"], "card [REDACTED:card]");
  EXPECT_EQ(chat["messages"][1]["content"][1]["image_url"]["url"], "http://x/bob@example.com");
  EXPECT_EQ(chat["messages"][2]["reasoning_content"], "IBAN [REDACTED:iban]");
  EXPECT_EQ(chat["messages"][2]["tool_calls"][0]["function"]["arguments"], "{\"to\":\"[REDACTED:phone]\"}");
  EXPECT_EQ(chat["user"], "bob@example.com");  // not text the model reads
  // After redaction no detector fires on what would go out.
  EXPECT_TRUE(decide(c, d, std::nullopt, std::nullopt, request_text(chat)).fired.empty());

  json completion = json::parse(R"({"prompt": ["key sk_live_0123456789abcdefghijklmn", "plain"]})");
  redact_request(completion, d);
  EXPECT_EQ(completion["prompt"], json::array({"key [REDACTED:secret]", "plain"}));
  json single = json::parse(R"({"prompt": "mail a@example.org"})");
  redact_request(single, d);
  EXPECT_EQ(single["prompt"], "mail [REDACTED:email]");
}

}  // namespace
}  // namespace dhi::policy
