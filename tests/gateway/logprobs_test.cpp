// append_logprobs: the logprobs of a completion's pieces, possibly from two
// upstreams (a continuation), joined into one object as a client reads it.
#include <gtest/gtest.h>

#include <cstdint>

#include <nlohmann/json.hpp>

#include "gateway/upstream.h"

namespace dhi::gateway {
namespace {

using json = nlohmann::json;

json legacy(std::vector<std::string> tokens, std::vector<int64_t> offsets) {
  json lp = {{"tokens", tokens}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
             {"text_offset", offsets}};
  for (size_t i = 0; i < tokens.size(); ++i) {
    lp["token_logprobs"].push_back(-0.5 * double(i + 1));
    lp["top_logprobs"].push_back({{tokens[i], -0.5 * double(i + 1)}});
  }
  return lp;
}

TEST(AppendLogprobs, ChatEntriesConcatenate) {
  json all;
  const json a = {{"content", {{{"token", "He"}, {"logprob", -0.1}}}}, {"refusal", nullptr}};
  const json b = {{"content", {{{"token", "llo"}, {"logprob", -0.2}}, {{"token", "!"}, {"logprob", -0.3}}}}};
  EXPECT_EQ(append_logprobs(all, a), json({{"content", a["content"]}}));  // the null member is not an array
  EXPECT_EQ(append_logprobs(all, b), b);
  ASSERT_EQ(all["content"].size(), 3u);
  EXPECT_EQ(all["content"][1]["token"], "llo");
}

TEST(AppendLogprobs, LegacyTextOffsetContinuesAcrossUpstreams) {
  json all;
  // The first upstream's answer "Once upon": offsets from its own start.
  EXPECT_EQ(append_logprobs(all, legacy({"Once", " upon"}, {0, 4})), legacy({"Once", " upon"}, {0, 4}));
  // A continuation elsewhere counts from 0 again (or from its longer prompt):
  // placed after the 9 bytes already there.
  const json placed = append_logprobs(all, legacy({" a", " time"}, {0, 2}));
  EXPECT_EQ(placed["text_offset"], json({9, 11}));
  EXPECT_EQ(all["tokens"], json({"Once", " upon", " a", " time"}));
  EXPECT_EQ(all["text_offset"], json({0, 4, 9, 11}));
  EXPECT_EQ(all["token_logprobs"].size(), 4u);
  const json shifted = append_logprobs(all, legacy({"."}, {120}));
  EXPECT_EQ(shifted["text_offset"], json({16}));
}

TEST(AppendLogprobs, WhatIsNotAnObjectOfArraysAddsNothing) {
  json all;
  for (const json& bad : {json(), json(3), json("x"), json::array({1}), json({{"content", "x"}}), json::object()})
    EXPECT_TRUE(append_logprobs(all, bad).is_null()) << bad;
  EXPECT_TRUE(all.is_null());
  // Offsets that cannot be followed (missing tokens, mismatched lengths) stay as sent.
  append_logprobs(all, {{"text_offset", {0, 1}}});
  EXPECT_EQ(append_logprobs(all, legacy({"z"}, {5}))["text_offset"], json({5}));
  // So do absurd ones, in either object (no arithmetic on them).
  json big;
  append_logprobs(big, legacy({"a"}, {INT64_MAX}));
  EXPECT_EQ(append_logprobs(big, legacy({"b"}, {3}))["text_offset"], json({3}));
  json fine;
  append_logprobs(fine, legacy({"a"}, {0}));
  json odd = legacy({"b", "c"}, {0, 1});
  odd["text_offset"] = json::array({INT64_MIN, UINT64_MAX});
  EXPECT_EQ(append_logprobs(fine, odd)["text_offset"], odd["text_offset"]);
}

}  // namespace
}  // namespace dhi::gateway
