// The privacy decision for one request, made before any byte leaves: which
// level the request may reach (from the X-DHI-Privacy header, else the API
// key's default, else the config's), which detectors fired on its text, and
// what the config says to do then: raise (cap the level at a tier), block, or
// redact (an external backend gets the text with findings replaced; local and
// trusted backends get the original). Also the text of OpenAI request bodies
// that the detectors read and that redaction rewrites.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.h"
#include "policy/detectors.h"
#include "policy/tier.h"

namespace dhi::policy {

enum class DetectAction { raise, block, redact };

// One `on_detect` value: "local" or "trusted" (raise: cap the level at that
// tier), "block", "redact".
struct OnDetect {
  DetectAction action = DetectAction::raise;
  Tier raise_to = Tier::trusted;  // for raise
};
Expected<OnDetect> parse_on_detect(std::string_view value);
// The config spelling of an OnDetect ("trusted", "block", ...).
std::string on_detect_name(const OnDetect& on_detect);

struct PolicyConfig {
  Tier default_level = Tier::external;
  std::vector<std::string> detectors;   // built-in names
  std::vector<CustomDetector> custom;
  DetectAction on_detect = DetectAction::raise;
  Tier raise_to = Tier::trusted;
  // Per-detector actions that replace on_detect for that detector (a secret
  // blocks while an e-mail address only raises, say). Keys name a configured
  // detector, built-in or custom.
  std::map<std::string, OnDetect> per_detector;
};

// The detectors a config names, with its per-detector overrides checked
// against them.
Expected<Detectors> make_detectors(const PolicyConfig& config);

struct PrivacyDecision {
  Tier requested = Tier::external;   // before detectors
  std::string level_source;          // "header" | "key" | "default"
  Tier level = Tier::external;       // after raise actions
  std::vector<std::string> fired;    // unique detector names, in detector order
  bool blocked = false;
  std::string reason;                // for a person; empty when nothing fired
  bool redact_external = false;      // external backends get redacted text
  // The audit log's `action`: "block" if a fired detector blocks, else "raise"
  // if one raises, else "redact" if one redacts, else "allow".
  std::string action = "allow";
};

PrivacyDecision decide(const PolicyConfig& config, const Detectors& detectors, std::optional<Tier> header_level,
                       std::optional<Tier> key_default, std::string_view text);

// The X-DHI-Privacy header value ("local", "trusted", "any"; case and
// surrounding blanks ignored). The error is the gateway's 400 message.
Expected<Tier> parse_privacy_header(std::string_view value);

// Everything in an OpenAI chat or completions body that a model reads as text:
// messages[].content (a string, or the text of {"type":"text"} parts),
// messages[].reasoning_content, messages[].tool_calls[].function.arguments and
// `prompt` (a string or an array of strings), joined by newlines. Other
// shapes (images, token-id prompts) carry no text and are skipped.
std::string request_text(const nlohmann::json& body);
// Redacts the same fields in place.
void redact_request(nlohmann::json& body, const Detectors& detectors);

}  // namespace dhi::policy
