// Gateway configuration: TOML (toml++) to GatewayConfig, with every error
// naming the key and the line it is on.
#include "gateway/config.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "policy/detectors.h"

namespace dhi::gateway {
namespace {

// Where a key sits, for error messages: "backend[2].tier (line 14)".
std::string at(const std::string& key, const toml::node* node) {
  if (node && node->source().begin.line > 0) return key + " (line " + std::to_string(node->source().begin.line) + ")";
  return key;
}

struct Reader {
  const toml::table& table;
  std::string prefix;  // "backend[0]." or ""
  std::set<std::string> known;

  std::string key(const std::string& k) const { return prefix + k; }
  const toml::node* get(const std::string& k) {
    known.insert(k);
    return table.get(k);
  }

  Status string(const std::string& k, std::string& out, bool required = false) {
    const toml::node* n = get(k);
    if (!n) return required ? make_error(at(key(k), nullptr), ": required") : Status{};
    if (!n->is_string()) return make_error(at(key(k), n), ": must be a string");
    out = **n->as_string();
    if (required && out.empty()) return make_error(at(key(k), n), ": must not be empty");
    return {};
  }
  Status number(const std::string& k, double& out, double lo, double hi) {
    const toml::node* n = get(k);
    if (!n) return {};
    if (!n->is_number()) return make_error(at(key(k), n), ": must be a number");
    const double v = n->is_integer() ? double(**n->as_integer()) : **n->as_floating_point();
    if (!(v >= lo && v <= hi)) return make_error(at(key(k), n), ": must be in [", lo, ", ", hi, "], got ", v);
    out = v;
    return {};
  }
  Status integer(const std::string& k, int64_t& out, int64_t lo, int64_t hi) {
    const toml::node* n = get(k);
    if (!n) return {};
    if (!n->is_integer()) return make_error(at(key(k), n), ": must be an integer");
    const int64_t v = **n->as_integer();
    if (v < lo || v > hi) return make_error(at(key(k), n), ": must be in [", lo, ", ", hi, "], got ", v);
    out = v;
    return {};
  }
  Status boolean(const std::string& k, bool& out) {
    const toml::node* n = get(k);
    if (!n) return {};
    if (!n->is_boolean()) return make_error(at(key(k), n), ": must be true or false");
    out = **n->as_boolean();
    return {};
  }
  Status strings(const std::string& k, std::vector<std::string>& out, bool required = false) {
    const toml::node* n = get(k);
    if (!n) return required ? make_error(at(key(k), nullptr), ": required") : Status{};
    const toml::array* a = n->as_array();
    if (!a) return make_error(at(key(k), n), ": must be an array of strings");
    out.clear();
    for (const toml::node& e : *a) {
      if (!e.is_string()) return make_error(at(key(k), &e), ": must be an array of strings");
      out.push_back(**e.as_string());
    }
    return {};
  }
  // Seconds (integer or float) to milliseconds.
  Status seconds(const std::string& k, int64_t& out_ms, double max_s) {
    double s = double(out_ms) / 1000.0;
    DHI_TRY(number(k, s, 0.001, max_s));
    out_ms = int64_t(std::llround(s * 1000.0));
    return {};
  }
  Status no_unknown_keys() const {
    for (const auto& [k, v] : table) {
      if (!known.count(std::string(k.str())))
        return make_error(at(prefix + std::string(k.str()), &v), ": unknown key");
    }
    return {};
  }
};

Status parse_listen(const std::string& text, const toml::node* n, GatewayConfig& cfg) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return make_error(at("listen", n), ": must be HOST:PORT, got \"", text, "\"");
  cfg.host = text.substr(0, colon);
  if (cfg.host.size() > 2 && cfg.host.front() == '[' && cfg.host.back() == ']')
    cfg.host = cfg.host.substr(1, cfg.host.size() - 2);
  const std::string port = text.substr(colon + 1);
  char* end = nullptr;
  const long v = std::strtol(port.c_str(), &end, 10);
  if (*end != '\0' || v < 0 || v > 65535) return make_error(at("listen", n), ": the port must be 0..65535, got ", port);
  cfg.port = int(v);
  return {};
}

Status parse_url(const std::string& key, const toml::node* n, const std::string& url) {
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    return make_error(at(key, n), ": must start with http:// or https://, got \"", url, "\"");
  return {};
}

Status parse_backend(const toml::table& t, size_t index, GetEnv getenv, BackendConfig& b) {
  Reader r{t, "backend[" + std::to_string(index) + "].", {}};
  DHI_TRY(r.string("name", b.name, true));
  r.prefix = "backend \"" + b.name + "\".";
  std::string kind;
  DHI_TRY(r.string("kind", kind, true));
  if (kind == "node") b.kind = BackendKind::Node;
  else if (kind == "hosted") b.kind = BackendKind::Hosted;
  else if (kind == "local") b.kind = BackendKind::Local;
  else
    return make_error(at(r.key("kind"), t.get("kind")), ": must be \"node\", \"hosted\" or \"local\", got \"", kind,
                      "\"");
  if (b.kind == BackendKind::Local) {
    if (t.get("url")) return make_error(at(r.key("url"), t.get("url")), ": a local backend has no url (it runs in the gateway)");
    DHI_TRY(r.string("model", b.model_path, true));
    DHI_TRY(r.integer("ctx", b.local_ctx, 0, int64_t(1) << 20));
    DHI_TRY(r.integer("parallel", b.local_parallel, 1, 256));
    DHI_TRY(r.integer("threads", b.local_threads, 0, 1024));
  } else {
    DHI_TRY(r.string("url", b.url, true));
    DHI_TRY(parse_url(r.key("url"), t.get("url"), b.url));
    while (!b.url.empty() && b.url.back() == '/') b.url.pop_back();
  }
  std::string tier;
  DHI_TRY(r.string("tier", tier, true));
  auto parsed_tier = policy::parse_tier(tier);
  if (!parsed_tier) return make_error(at(r.key("tier"), t.get("tier")), ": ", parsed_tier.error().message);
  b.tier = *parsed_tier;
  DHI_TRY(r.strings("models", b.models, true));
  if (b.models.empty()) return make_error(at(r.key("models"), t.get("models")), ": must name at least one model");
  if (b.kind == BackendKind::Local && b.models.size() != 1)
    return make_error(at(r.key("models"), t.get("models")), ": a local backend serves exactly one model name");
  DHI_TRY(r.string("api_key_env", b.api_key_env));
  if (!b.api_key_env.empty()) {
    b.api_key = getenv(b.api_key_env.c_str());
    if (b.api_key.empty()) {
      b.enabled = false;
      b.disabled_reason = "the environment variable " + b.api_key_env + " (api_key_env) is not set";
    }
  }
  if (const toml::node* n = r.get("timeout")) {
    const toml::table* tt = n->as_table();
    if (!tt) return make_error(at(r.key("timeout"), n), ": must be a table {connect, first_token, idle} in seconds");
    Reader tr{*tt, r.key("timeout."), {}};
    DHI_TRY(tr.seconds("connect", b.timeouts.connect_ms, 600));
    DHI_TRY(tr.seconds("first_token", b.timeouts.first_token_ms, 3600));
    DHI_TRY(tr.seconds("idle", b.timeouts.idle_ms, 3600));
    DHI_TRY(tr.no_unknown_keys());
  }
  DHI_TRY(r.number("cost_per_1k_prompt", b.cost_per_1k_prompt, 0, 1e6));
  DHI_TRY(r.number("cost_per_1k_completion", b.cost_per_1k_completion, 0, 1e6));
  DHI_TRY(r.integer("max_context", b.max_context, 0, int64_t(1) << 30));
  DHI_TRY(r.number("weight", b.weight, 0.001, 1000));
  return r.no_unknown_keys();
}

Status parse_key(const toml::table& t, size_t index, GetEnv getenv, KeyConfig& k) {
  Reader r{t, "key[" + std::to_string(index) + "].", {}};
  DHI_TRY(r.string("id", k.id, true));
  DHI_TRY(r.string("key_env", k.key_env, true));
  k.key = getenv(k.key_env.c_str());
  // A client key that is not there would leave the gateway open to whoever
  // guesses the id: refuse to start instead.
  if (k.key.empty())
    return make_error(at(r.key("key_env"), t.get("key_env")), ": the environment variable ", k.key_env,
                      " is not set");
  std::string level;
  DHI_TRY(r.string("privacy", level));
  if (!level.empty()) {
    auto l = policy::parse_privacy_level(level);
    if (!l) return make_error(at(r.key("privacy"), t.get("privacy")), ": ", l.error().message);
    k.privacy = *l;
    k.privacy_set = true;
  }
  DHI_TRY(r.number("daily_budget", k.daily_budget, 0, 1e9));
  return r.no_unknown_keys();
}

Status parse_privacy(const toml::table& t, policy::PolicyConfig& p) {
  Reader r{t, "privacy.", {}};
  std::string level;
  DHI_TRY(r.string("default", level));
  if (!level.empty()) {
    auto l = policy::parse_privacy_level(level);
    if (!l) return make_error(at("privacy.default", t.get("default")), ": ", l.error().message);
    p.default_level = *l;
  }
  DHI_TRY(r.strings("detectors", p.detectors));
  std::string on_detect;
  DHI_TRY(r.string("on_detect", on_detect));
  if (!on_detect.empty()) {
    auto a = policy::parse_on_detect(on_detect);
    if (!a) return make_error(at("privacy.on_detect", t.get("on_detect")), ": ", a.error().message);
    p.on_detect = a->action;
    p.raise_to = a->raise_to;
  }
  if (const toml::node* n = r.get("per_detector")) {
    const toml::table* pt = n->as_table();
    if (!pt) return make_error(at("privacy.per_detector", n), ": must be a table {detector = action}");
    for (const auto& [name, v] : *pt) {
      const std::string key = "privacy.per_detector." + std::string(name.str());
      if (!v.is_string()) return make_error(at(key, &v), ": must be \"local\", \"trusted\", \"block\" or \"redact\"");
      auto a = policy::parse_on_detect(**v.as_string());
      if (!a) return make_error(at(key, &v), ": ", a.error().message);
      p.per_detector[std::string(name.str())] = *a;
    }
  }
  if (const toml::node* n = r.get("custom")) {
    const toml::array* a = n->as_array();
    if (!a) return make_error(at("privacy.custom", n), ": must be an array of tables {name, pattern}");
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::table* ct = (*a)[i].as_table();
      if (!ct) return make_error(at("privacy.custom", &(*a)[i]), ": must be an array of tables {name, pattern}");
      Reader cr{*ct, "privacy.custom[" + std::to_string(i) + "].", {}};
      policy::CustomDetector d;
      DHI_TRY(cr.string("name", d.name, true));
      DHI_TRY(cr.string("pattern", d.pattern, true));
      DHI_TRY(cr.no_unknown_keys());
      p.custom.push_back(std::move(d));
    }
  }
  DHI_TRY(r.no_unknown_keys());
  // Unknown detector names and bad regexes fail here, not on the first request.
  auto d = policy::make_detectors(p);
  if (!d) return make_error(at("privacy.detectors", t.get("detectors")), ": ", d.error().message);
  return {};
}

Status parse_alias(const toml::table& t, GatewayConfig& cfg) {
  for (const auto& [name, node] : t) {
    const std::string key = "alias." + std::string(name.str());
    const toml::array* a = node.as_array();
    if (!a || a->empty()) return make_error(at(key, &node), ": must be a non-empty array of \"backend:model\"");
    std::vector<Target> targets;
    for (const toml::node& e : *a) {
      if (!e.is_string()) return make_error(at(key, &e), ": must be an array of \"backend:model\" strings");
      const std::string s = **e.as_string();
      const size_t colon = s.find(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
        return make_error(at(key, &e), ": \"", s, "\" is not \"backend:model\"");
      const std::string backend = s.substr(0, colon), model = s.substr(colon + 1);
      size_t i = 0;
      while (i < cfg.backends.size() && cfg.backends[i].name != backend) ++i;
      if (i == cfg.backends.size()) return make_error(at(key, &e), ": no backend named \"", backend, "\"");
      const auto& models = cfg.backends[i].models;
      if (std::find(models.begin(), models.end(), model) == models.end())
        return make_error(at(key, &e), ": backend \"", backend, "\" does not list model \"", model, "\"");
      targets.push_back({i, model});
    }
    cfg.aliases[std::string(name.str())] = std::move(targets);
  }
  return {};
}

Status parse_root(const toml::table& root, GetEnv getenv, GatewayConfig& cfg) {
  Reader r{root, "", {}};
  std::string listen;
  DHI_TRY(r.string("listen", listen));
  if (!listen.empty()) DHI_TRY(parse_listen(listen, root.get("listen"), cfg));
  DHI_TRY(r.string("audit_log", cfg.audit_log));
  DHI_TRY(r.boolean("audit_include_text", cfg.audit_include_text));
  DHI_TRY(r.seconds("health_interval", cfg.health_interval_ms, 3600));
  int64_t max_body_mib = int64_t(cfg.max_body_bytes >> 20);
  DHI_TRY(r.integer("max_body_mib", max_body_mib, 1, 1024));
  cfg.max_body_bytes = size_t(max_body_mib) << 20;

  const toml::node* backends = r.get("backend");
  if (!backends) return make_error("backend: at least one [[backend]] is required");
  const toml::array* ba = backends->as_array();
  if (!ba) return make_error(at("backend", backends), ": must be an array of tables ([[backend]])");
  for (size_t i = 0; i < ba->size(); ++i) {
    const toml::table* bt = (*ba)[i].as_table();
    if (!bt) return make_error(at("backend[" + std::to_string(i) + "]", &(*ba)[i]), ": must be a table");
    BackendConfig b;
    DHI_TRY(parse_backend(*bt, i, getenv, b));
    for (const auto& other : cfg.backends) {
      if (other.name == b.name) return make_error(at("backend[" + std::to_string(i) + "].name", bt->get("name")),
                                                  ": duplicate backend name \"", b.name, "\"");
    }
    cfg.backends.push_back(std::move(b));
  }
  if (const toml::node* n = r.get("alias")) {
    if (!n->is_table()) return make_error(at("alias", n), ": must be a table");
    DHI_TRY(parse_alias(*n->as_table(), cfg));
  }
  if (const toml::node* n = r.get("key")) {
    const toml::array* ka = n->as_array();
    if (!ka) return make_error(at("key", n), ": must be an array of tables ([[key]])");
    for (size_t i = 0; i < ka->size(); ++i) {
      const toml::table* kt = (*ka)[i].as_table();
      if (!kt) return make_error(at("key[" + std::to_string(i) + "]", &(*ka)[i]), ": must be a table");
      KeyConfig k;
      DHI_TRY(parse_key(*kt, i, getenv, k));
      for (const auto& other : cfg.keys) {
        if (other.id == k.id) return make_error(at("key[" + std::to_string(i) + "].id", kt->get("id")),
                                                ": duplicate key id \"", k.id, "\"");
        if (other.key == k.key)
          return make_error(at("key[" + std::to_string(i) + "].key_env", kt->get("key_env")),
                            ": keys \"", other.id, "\" and \"", k.id, "\" hold the same secret");
      }
      cfg.keys.push_back(std::move(k));
    }
  }
  if (const toml::node* n = r.get("routing")) {
    const toml::table* t = n->as_table();
    if (!t) return make_error(at("routing", n), ": must be a table");
    Reader rr{*t, "routing.", {}};
    DHI_TRY(rr.number("health", cfg.weights.health, 0, 1e6));
    DHI_TRY(rr.number("load", cfg.weights.load, 0, 1e6));
    DHI_TRY(rr.number("latency", cfg.weights.latency, 0, 1e6));
    DHI_TRY(rr.number("cost", cfg.weights.cost, 0, 1e6));
    DHI_TRY(rr.number("latency_target", cfg.weights.latency_target, 0, 3600));
    DHI_TRY(rr.no_unknown_keys());
  }
  if (const toml::node* n = r.get("circuit")) {
    const toml::table* t = n->as_table();
    if (!t) return make_error(at("circuit", n), ": must be a table");
    Reader cr{*t, "circuit.", {}};
    int64_t failures = cfg.circuit_failures;
    DHI_TRY(cr.integer("failures", failures, 1, 1000));
    cfg.circuit_failures = int(failures);
    DHI_TRY(cr.seconds("cooldown", cfg.circuit_cooldown_ms, 86400));
    DHI_TRY(cr.no_unknown_keys());
  }
  if (const toml::node* n = r.get("privacy")) {
    const toml::table* t = n->as_table();
    if (!t) return make_error(at("privacy", n), ": must be a table");
    DHI_TRY(parse_privacy(*t, cfg.privacy));
  }
  return r.no_unknown_keys();
}

}  // namespace

std::string process_env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

Expected<GatewayConfig> parse_config(std::string_view text, const std::string& source_name, GetEnv getenv) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    return make_error(source_name, ": line ", e.source().begin.line, ": ", e.description());
  }
  GatewayConfig cfg;
  if (auto s = parse_root(root, getenv, cfg); !s) return make_error(source_name, ": ", s.error().message);
  return cfg;
}

Expected<GatewayConfig> load_config(const std::string& path, GetEnv getenv) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error("cannot read the gateway config ", path);
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_config(ss.str(), path, getenv);
}

}  // namespace dhi::gateway
