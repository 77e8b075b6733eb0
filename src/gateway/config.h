// The gateway's configuration file (TOML): where it listens, the audit log,
// the backends with their trust tiers, models, timeouts and costs, model
// aliases, client keys, routing weights, the circuit breaker and the privacy
// policy. Parsing validates everything up front; every error names the key
// and its line. Secrets (API keys) are never in the file: it names the
// environment variables that hold them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/expected.h"
#include "policy/policy.h"
#include "policy/tier.h"

namespace dhi::gateway {

// Local: an engine inside the gateway process. `dhi gateway` starts it and
// serves it as a node on an internal loopback port before routing starts.
enum class BackendKind { Node, Hosted, Local };

struct Timeouts {
  int64_t connect_ms = 5000;       // TCP (and TLS) connection
  int64_t first_token_ms = 60000;  // request sent to first generated text
  int64_t idle_ms = 30000;         // between two pieces of generated text
};

struct BackendConfig {
  std::string name;
  BackendKind kind = BackendKind::Node;
  std::string url;  // node: the server root; hosted: the API base ending in /v1
  policy::Tier tier = policy::Tier::local;
  std::vector<std::string> models;
  std::string api_key_env;  // hosted: the variable holding the key
  std::string api_key;      // read from api_key_env at parse time
  // A hosted backend whose key variable is unset is disabled (logged at start),
  // so a laptop config works offline; disabled backends are never routed to.
  bool enabled = true;
  std::string disabled_reason;
  Timeouts timeouts;
  double cost_per_1k_prompt = 0, cost_per_1k_completion = 0;  // currency units
  int64_t max_context = 0;  // tokens; 0: unknown (a node reports its own)
  double weight = 1.0;      // a preference multiplier on the routing score
  // Local: the model file (or name) and its engine; `models` holds exactly
  // the one name the engine answers to.
  std::string model_path;
  int64_t local_ctx = 0;       // per slot; 0: the model's, capped at 4096
  int64_t local_parallel = 2;  // slots
  int64_t local_threads = 0;   // 0: all cores
};

// One step of an alias: a backend (index into GatewayConfig::backends) and the
// model name that backend knows.
struct Target {
  size_t backend = 0;
  std::string model;
};

struct KeyConfig {
  std::string id;       // what the audit log records
  std::string key_env;  // the variable holding the secret
  std::string key;
  policy::Tier privacy = policy::Tier::external;  // the default level of its requests
  bool privacy_set = false;                       // else [privacy] default applies
  double daily_budget = 0;                        // 0: unlimited
};

struct RoutingWeights {
  double health = 1.0;   // penalty for recent failures
  double load = 1.0;     // per queued request on a node
  double latency = 1.0;  // per second of observed time to first token
  double cost = 1.0;     // per currency unit of the estimated request cost
  // Seconds to first token a backend should meet (0: none). A backend whose
  // observed time to first token exceeds it is ranked after every backend that
  // meets it (or has no observation yet): still a fallback, never a refusal.
  double latency_target = 0;
};

struct GatewayConfig {
  std::string host = "127.0.0.1";
  int port = 8090;
  std::string audit_log;  // empty: no audit log
  bool audit_include_text = false;
  std::vector<BackendConfig> backends;
  std::map<std::string, std::vector<Target>> aliases;
  std::vector<KeyConfig> keys;  // empty: no authentication
  RoutingWeights weights;
  int64_t health_interval_ms = 2000;
  int circuit_failures = 3;        // consecutive failures that open the circuit
  int64_t circuit_cooldown_ms = 10000;
  size_t max_body_bytes = size_t(8) << 20;
  policy::PolicyConfig privacy;
};

// Reads and validates `path`; `getenv` supplies the environment (tests pass
// their own). Relative paths in the file (the audit log) are relative to the
// working directory, as on the command line.
using GetEnv = std::string (*)(const char* name);
std::string process_env(const char* name);
Expected<GatewayConfig> load_config(const std::string& path, GetEnv getenv = process_env);
Expected<GatewayConfig> parse_config(std::string_view text, const std::string& source_name,
                                     GetEnv getenv = process_env);

}  // namespace dhi::gateway
