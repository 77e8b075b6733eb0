// decide() and the OpenAI body walkers behind request_text/redact_request.
#include "policy/policy.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <type_traits>

namespace dhi::policy {

Expected<OnDetect> parse_on_detect(std::string_view value) {
  if (value == "local") return OnDetect{DetectAction::raise, Tier::local};
  if (value == "trusted") return OnDetect{DetectAction::raise, Tier::trusted};
  if (value == "block") return OnDetect{DetectAction::block, Tier::trusted};
  if (value == "redact") return OnDetect{DetectAction::redact, Tier::trusted};
  return make_error("unknown on_detect value '", value, "' (values: local, trusted, block, redact)");
}

std::string on_detect_name(const OnDetect& on_detect) {
  switch (on_detect.action) {
    case DetectAction::raise: return tier_name(on_detect.raise_to);
    case DetectAction::block: return "block";
    case DetectAction::redact: return "redact";
  }
  return "block";
}

Expected<Detectors> make_detectors(const PolicyConfig& config) {
  DHI_ASSIGN_OR_RETURN(Detectors d, Detectors::create(config.detectors, config.custom));
  const std::vector<std::string> names = d.names();
  for (const auto& [name, on_detect] : config.per_detector) {
    if (std::find(names.begin(), names.end(), name) == names.end())
      return make_error("privacy override for detector '", name, "', which is not configured");
    if (on_detect.action == DetectAction::raise && on_detect.raise_to == Tier::external)
      return make_error("privacy override for detector '", name, "': raising to external changes nothing");
  }
  if (config.on_detect == DetectAction::raise && config.raise_to == Tier::external)
    return make_error("on_detect: raising to external changes nothing (values: local, trusted, block, redact)");
  return d;
}

namespace {

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) {
    if (!s.empty()) s += ", ";
    s += n;
  }
  return s;
}

}  // namespace

PrivacyDecision decide(const PolicyConfig& config, const Detectors& detectors, std::optional<Tier> header_level,
                       std::optional<Tier> key_default, std::string_view text) {
  PrivacyDecision d;
  if (header_level) {
    d.requested = *header_level;
    d.level_source = "header";
  } else if (key_default) {
    d.requested = *key_default;
    d.level_source = "key";
  } else {
    d.requested = config.default_level;
    d.level_source = "default";
  }
  d.level = d.requested;

  std::set<std::string> hit;
  for (const Finding& f : detectors.scan(text)) hit.insert(f.detector);
  for (const std::string& name : detectors.names())
    if (hit.count(name)) d.fired.push_back(name);
  if (d.fired.empty()) return d;

  std::vector<std::string> blocking, raising, redacting;
  for (const std::string& name : d.fired) {
    const auto it = config.per_detector.find(name);
    const OnDetect act = it != config.per_detector.end() ? it->second : OnDetect{config.on_detect, config.raise_to};
    switch (act.action) {
      case DetectAction::block: blocking.push_back(name); break;
      case DetectAction::raise:
        raising.push_back(name);
        d.level = min_tier(d.level, act.raise_to);
        break;
      case DetectAction::redact:
        redacting.push_back(name);
        d.redact_external = true;
        break;
    }
  }
  d.action = !blocking.empty() ? "block" : !raising.empty() ? "raise" : "redact";
  if (!blocking.empty()) {
    d.blocked = true;
    d.reason = "blocked by the privacy policy: detector " + join(blocking) + " fired";
  } else if (!raising.empty() && d.level != d.requested) {
    d.reason = std::string("privacy level lowered from ") + level_name(d.requested) + " to " + level_name(d.level) +
               ": detector " + join(raising) + " fired";
  } else if (!raising.empty()) {
    d.reason = std::string("detector ") + join(raising) + " fired; the level " + level_name(d.level) +
               " is already at or below its cap";
  } else {
    d.reason = "detector " + join(redacting) + " fired: redacted before any external backend";
  }
  // A redaction only matters where external backends remain allowed.
  if (d.blocked || !tier_allowed(Tier::external, d.level)) d.redact_external = false;
  return d;
}

Expected<Tier> parse_privacy_header(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  std::string lower;
  for (char c : value) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "local") return Tier::local;
  if (lower == "trusted") return Tier::trusted;
  if (lower == "any") return Tier::external;
  std::string shown(value.substr(0, 64));
  for (char& c : shown)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return make_error("X-DHI-Privacy: unknown privacy level '", shown, "' (levels: local, trusted, any)");
}

namespace {

// Calls `visit(std::string&)` on every text field of a request body, in the
// order request_text joins them; `body` may be const (then visit gets a const
// string).
template <typename Json, typename Visit>
void for_each_text(Json& body, Visit&& visit) {
  using Str = std::conditional_t<std::is_const_v<Json>, const std::string, std::string>;
  if (!body.is_object()) return;
  if (auto m = body.find("messages"); m != body.end() && m->is_array()) {
    for (auto& msg : *m) {
      if (!msg.is_object()) continue;
      if (auto c = msg.find("content"); c != msg.end()) {
        if (c->is_string()) {
          visit(c->template get_ref<Str&>());
        } else if (c->is_array()) {
          for (auto& part : *c) {
            if (!part.is_object()) continue;
            auto t = part.find("text");
            auto type = part.find("type");
            if (t != part.end() && t->is_string() && type != part.end() && *type == "text")
              visit(t->template get_ref<Str&>());
          }
        }
      }
      if (auto r = msg.find("reasoning_content"); r != msg.end() && r->is_string())
        visit(r->template get_ref<Str&>());
      if (auto calls = msg.find("tool_calls"); calls != msg.end() && calls->is_array()) {
        for (auto& call : *calls) {
          if (!call.is_object()) continue;
          auto fn = call.find("function");
          if (fn == call.end() || !fn->is_object()) continue;
          if (auto a = fn->find("arguments"); a != fn->end() && a->is_string())
            visit(a->template get_ref<Str&>());
        }
      }
    }
  }
  if (auto p = body.find("prompt"); p != body.end()) {
    if (p->is_string()) {
      visit(p->template get_ref<Str&>());
    } else if (p->is_array()) {
      for (auto& s : *p)
        if (s.is_string()) visit(s.template get_ref<Str&>());
    }
  }
}

}  // namespace

std::string request_text(const nlohmann::json& body) {
  std::string out;
  bool first = true;
  for_each_text(body, [&](const std::string& s) {
    if (!first) out += '\n';
    out += s;
    first = false;
  });
  return out;
}

void redact_request(nlohmann::json& body, const Detectors& detectors) {
  for_each_text(body, [&](std::string& s) { s = detectors.redact(s); });
}

}  // namespace dhi::policy
