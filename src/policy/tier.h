// Trust tiers of backends and privacy levels of requests. A backend has a tier
// (where the machine is: local < trusted < external); a request has a privacy
// level, the highest tier it may reach, named local, trusted or any (= external).
// One ordered enum serves both so that "may this request go there" is a compare.
#pragma once

#include <string_view>

#include "core/expected.h"

namespace dhi::policy {

enum class Tier { local = 0, trusted = 1, external = 2 };

// Backend tiers as the config writes them: "local", "trusted", "external".
Expected<Tier> parse_tier(std::string_view name);
// Request privacy levels: "local", "trusted", "any" (the external tier).
Expected<Tier> parse_privacy_level(std::string_view name);
// "local" | "trusted" | "external".
const char* tier_name(Tier tier);
// "local" | "trusted" | "any".
const char* level_name(Tier level);

// A request at `level` may be served by a backend of tier `backend`.
inline bool tier_allowed(Tier backend, Tier level) { return static_cast<int>(backend) <= static_cast<int>(level); }

// The stricter (lower) of two levels.
inline Tier min_tier(Tier a, Tier b) { return static_cast<int>(a) <= static_cast<int>(b) ? a : b; }

}  // namespace dhi::policy
