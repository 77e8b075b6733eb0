// Names of tiers and privacy levels, both ways.
#include "policy/tier.h"

namespace dhi::policy {

Expected<Tier> parse_tier(std::string_view name) {
  if (name == "local") return Tier::local;
  if (name == "trusted") return Tier::trusted;
  if (name == "external") return Tier::external;
  return make_error("unknown tier '", name, "' (tiers: local, trusted, external)");
}

Expected<Tier> parse_privacy_level(std::string_view name) {
  if (name == "local") return Tier::local;
  if (name == "trusted") return Tier::trusted;
  if (name == "any") return Tier::external;
  return make_error("unknown privacy level '", name, "' (levels: local, trusted, any)");
}

const char* tier_name(Tier tier) {
  switch (tier) {
    case Tier::local: return "local";
    case Tier::trusted: return "trusted";
    case Tier::external: return "external";
  }
  return "external";
}

const char* level_name(Tier level) {
  switch (level) {
    case Tier::local: return "local";
    case Tier::trusted: return "trusted";
    case Tier::external: return "any";
  }
  return "any";
}

}  // namespace dhi::policy
