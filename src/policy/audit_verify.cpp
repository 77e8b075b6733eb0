// verify_audit_log: reads an audit log line by line and checks each record
// against its type's schema and against the requests before it (see audit.h).
#include <algorithm>
#include <cstring>
#include <fstream>
#include <string_view>
#include <unordered_map>

#include "policy/audit.h"
#include "policy/tier.h"

namespace dhi::policy {

namespace {

using nlohmann::json;

bool is_rfc3339(const std::string& s) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  auto digits = [&](size_t at, size_t n) {
    if (at + n > s.size()) return false;
    for (size_t i = at; i < at + n; ++i)
      if (s[i] < '0' || s[i] > '9') return false;
    return true;
  };
  if (!digits(0, 4) || s.size() < 20 || s[4] != '-' || !digits(5, 2) || s[7] != '-' || !digits(8, 2) ||
      (s[10] != 'T' && s[10] != 't') || !digits(11, 2) || s[13] != ':' || !digits(14, 2) || s[16] != ':' ||
      !digits(17, 2))
    return false;
  size_t i = 19;
  if (s[i] == '.') {
    const size_t start = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return false;
  }
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) return i + 1 == s.size();
  return i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && digits(i + 1, 2) && s[i + 3] == ':' &&
         digits(i + 4, 2);
}

// Collects the schema problems of one record.
class Fields {
 public:
  Fields(const json& j, std::string type) : j_(j), type_(std::move(type)) {}

  const std::string* string(const char* key, bool nullable = false) {
    auto it = j_.find(key);
    if (it != j_.end() && it->is_string() && !it->get_ref<const std::string&>().empty())
      return &it->get_ref<const std::string&>();
    if (nullable && it != j_.end() && it->is_null()) return nullptr;
    problem(key, nullable ? "a non-empty string or null" : "a non-empty string");
    return nullptr;
  }
  void time(const char* key) {
    auto it = j_.find(key);
    if (it == j_.end() || !it->is_string() || !is_rfc3339(it->get_ref<const std::string&>()))
      problem(key, "an RFC 3339 time");
  }
  int64_t integer(const char* key, int64_t min, bool nullable = false) {
    auto it = j_.find(key);
    if (it != j_.end() && it->is_number_integer() && it->get<int64_t>() >= min) return it->get<int64_t>();
    if (nullable && it != j_.end() && it->is_null()) return min;
    problem(key, std::string(nullable ? "null or " : "") + "an integer >= " + std::to_string(min));
    return min;
  }
  void number(const char* key, bool nullable = false) {
    auto it = j_.find(key);
    if (it != j_.end() && it->is_number() && it->get<double>() >= 0) return;
    if (nullable && it != j_.end() && it->is_null()) return;
    problem(key, nullable ? "a number >= 0 or null" : "a number >= 0");
  }
  bool boolean(const char* key) {
    auto it = j_.find(key);
    if (it != j_.end() && it->is_boolean()) return it->get<bool>();
    problem(key, "true or false");
    return false;
  }
  // A string from a fixed set; returns "" when missing or not one of them.
  std::string one_of(const char* key, std::initializer_list<const char*> allowed) {
    auto it = j_.find(key);
    if (it != j_.end() && it->is_string()) {
      for (const char* a : allowed)
        if (it->get_ref<const std::string&>() == a) return a;
    }
    std::string list;
    for (const char* a : allowed) {
      if (!list.empty()) list += '|';
      list += a;
    }
    problem(key, list);
    return "";
  }
  void problem(const std::string& key, const std::string& expected) {
    if (!problems_.empty()) problems_ += "; ";
    problems_ += type_ + "." + key + " must be " + expected;
  }
  const std::string& problems() const { return problems_; }

 private:
  const json& j_;
  std::string type_;
  std::string problems_;
};

struct CandidateInfo {
  std::string backend, model;
  Tier tier = Tier::external;
  bool skipped = false;
};

struct RequestInfo {
  size_t line = 0;
  bool valid = false;  // schema-valid: its attempts are checked against it
  Tier level = Tier::local;
  bool blocked = false;
  std::vector<CandidateInfo> candidates;
  int64_t attempts = 0;
  std::vector<std::string> attempted_backends;
  bool has_result = false;
};

Tier tier_of(const std::string& name) { return parse_tier(name).ok() ? *parse_tier(name) : Tier::external; }

class Verifier {
 public:
  explicit Verifier(const VerifyOptions& options) : options_(options) {}

  void line(size_t n, const std::string& text, bool torn) {
    ++report_.lines;
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      if (torn && j.is_discarded()) {
        warn(n, "torn_line", "the last line is cut short (a crash while it was written?)");
      } else {
        violate(n, "parse", text.empty() ? "empty line" : "not a JSON object");
      }
      return;
    }
    auto type = j.find("type");
    const std::string t = type != j.end() && type->is_string() ? type->get<std::string>() : "";
    if (t == "request") {
      request(n, j);
    } else if (t == "attempt") {
      attempt(n, j);
    } else if (t == "result") {
      result(n, j);
    } else {
      violate(n, "schema", "type must be request, attempt or result");
    }
  }

  AuditReport finish() {
    for (const auto& [id, r] : requests_) {
      if (r.has_result) continue;
      ++report_.incomplete;
      warn(r.line, "incomplete", "request " + id + " has no result");
    }
    std::sort(report_.warnings.begin(), report_.warnings.end(),
              [](const AuditViolation& a, const AuditViolation& b) { return a.line < b.line; });
    if (options_.strict) {
      report_.violations.insert(report_.violations.end(), report_.warnings.begin(), report_.warnings.end());
      report_.warnings.clear();
      std::stable_sort(report_.violations.begin(), report_.violations.end(),
                       [](const AuditViolation& a, const AuditViolation& b) { return a.line < b.line; });
    }
    return std::move(report_);
  }

 private:
  void violate(size_t n, std::string kind, std::string message) {
    report_.violations.push_back({n, std::move(kind), std::move(message)});
  }
  void warn(size_t n, std::string kind, std::string message) {
    report_.warnings.push_back({n, std::move(kind), std::move(message)});
  }

  void request(size_t n, const json& j) {
    ++report_.requests;
    Fields f(j, "request");
    const std::string* id = f.string("id");
    f.time("time");
    f.string("key_id", /*nullable=*/true);
    f.string("model");
    const std::string level = f.one_of("privacy_level", {"local", "trusted", "any"});
    f.one_of("level_source", {"header", "key", "default"});
    const std::string action = f.one_of("action", {"allow", "raise", "block", "redact"});
    auto det = j.find("detectors");
    if (det == j.end() || !det->is_array() ||
        !std::all_of(det->begin(), det->end(), [](const json& d) { return d.is_string(); }))
      f.problem("detectors", "an array of strings");
    RequestInfo info;
    info.line = n;
    auto cands = j.find("candidates");
    if (cands == j.end() || !cands->is_array()) {
      f.problem("candidates", "an array");
    } else {
      for (const json& c : *cands) {
        if (!c.is_object()) {
          f.problem("candidates[]", "an object");
          continue;
        }
        Fields cf(c, "request.candidates[]");
        const std::string* backend = cf.string("backend");
        const std::string tier = cf.one_of("tier", {"local", "trusted", "external"});
        const std::string* model = cf.string("model");
        const std::string* skipped = cf.string("skipped", /*nullable=*/true);
        if (!cf.problems().empty()) {
          f.problem("candidates[]", "{backend, tier, model, skipped} (" + cf.problems() + ")");
          continue;
        }
        info.candidates.push_back({*backend, *model, tier_of(tier), skipped != nullptr});
      }
    }
    if (action == "block") ++report_.blocked;
    if (!level.empty()) ++report_.requests_per_level[level];
    if (!f.problems().empty()) violate(n, "schema", f.problems());
    if (!id) return;
    if (requests_.count(*id)) {
      violate(n, "duplicate_request", "request id " + *id + " was already used on line " +
                                          std::to_string(requests_[*id].line));
      return;
    }
    info.valid = f.problems().empty();
    info.level = parse_privacy_level(level).ok() ? *parse_privacy_level(level) : Tier::local;
    info.blocked = action == "block";
    requests_.emplace(*id, std::move(info));
  }

  void attempt(size_t n, const json& j) {
    ++report_.attempts;
    Fields f(j, "attempt");
    const std::string* id = f.string("request_id");
    const int64_t number = f.integer("attempt", 1);
    const std::string* backend = f.string("backend");
    const std::string tier = f.one_of("tier", {"local", "trusted", "external"});
    const std::string* model = f.string("model");
    const bool continuation = f.boolean("continuation");
    f.string("outcome");
    f.string("error", /*nullable=*/true);
    f.integer("prompt_tokens", 0, /*nullable=*/true);
    f.integer("completion_tokens", 0, /*nullable=*/true);
    f.number("first_token_ms", /*nullable=*/true);
    f.number("latency_ms");
    if (j.contains("time")) f.time("time");
    if (!tier.empty()) ++report_.attempts_per_tier[tier];
    if (number > 1) ++report_.failovers;
    if (continuation) ++report_.continuations;
    if (!f.problems().empty()) {
      violate(n, "schema", f.problems());
      // The tier is what matters most: check it even when other fields are off.
      if (!id || tier.empty()) return;
    }
    auto it = requests_.find(*id);
    if (it == requests_.end()) {
      violate(n, "unknown_request", "attempt for request " + *id + ", which has no earlier request record");
      return;
    }
    RequestInfo& r = it->second;
    const Tier t = tier_of(tier);
    if (!tier_allowed(t, r.level))
      violate(n, "tier_above_level", "request " + *id + " at level " + level_name(r.level) + " was sent to " +
                                         (backend ? *backend : "?") + " of tier " + tier);
    if (r.blocked) violate(n, "attempt_after_block", "request " + *id + " was blocked, yet sent to a backend");
    if (r.has_result) violate(n, "attempt_after_result", "request " + *id + " already has its result");
    const int64_t before = r.attempts;
    r.attempts = std::max(r.attempts, number);
    if (backend) r.attempted_backends.push_back(*backend);
    if (!f.problems().empty() || !r.valid) return;
    if (number != before + 1)
      violate(n, "attempt_order", "request " + *id + ": attempt " + std::to_string(number) + " after " +
                                      std::to_string(before) + " attempt(s)");
    if (number == 1 && continuation) violate(n, "attempt_order", "request " + *id + ": a first attempt cannot continue");
    const CandidateInfo* cand = nullptr;
    for (const CandidateInfo& c : r.candidates)
      if (c.backend == *backend && c.model == *model) cand = &c;
    if (!cand) {
      violate(n, "not_a_candidate", "request " + *id + " was sent to " + *backend + ":" + *model +
                                        ", which is not among its candidates");
    } else {
      if (cand->skipped)
        violate(n, "skipped_candidate", "request " + *id + " was sent to " + *backend + ":" + *model +
                                            ", recorded as skipped");
      if (cand->tier != t)
        violate(n, "tier_mismatch", "backend " + *backend + " has tier " + tier_name(cand->tier) +
                                        " among the candidates but " + tier + " in the attempt");
    }
  }

  void result(size_t n, const json& j) {
    ++report_.results;
    Fields f(j, "result");
    const std::string* id = f.string("request_id");
    f.string("outcome");
    const std::string* backend = f.string("backend", /*nullable=*/true);
    f.integer("failovers", 0);
    f.integer("prompt_tokens", 0, /*nullable=*/true);
    f.integer("completion_tokens", 0, /*nullable=*/true);
    f.number("latency_ms");
    f.integer("status", 100);
    if (j.contains("time")) f.time("time");
    if (!f.problems().empty()) violate(n, "schema", f.problems());
    if (!id) return;
    auto it = requests_.find(*id);
    if (it == requests_.end()) {
      violate(n, "unknown_request", "result for request " + *id + ", which has no earlier request record");
      return;
    }
    RequestInfo& r = it->second;
    if (r.has_result) {
      violate(n, "duplicate_result", "request " + *id + " already has a result");
      return;
    }
    r.has_result = true;
    if (backend && r.valid &&
        std::find(r.attempted_backends.begin(), r.attempted_backends.end(), *backend) == r.attempted_backends.end())
      violate(n, "result_backend", "request " + *id + " ends on backend " + *backend + ", which it never tried");
  }

  VerifyOptions options_;
  AuditReport report_;
  std::unordered_map<std::string, RequestInfo> requests_;
};

json violations_json(const std::vector<AuditViolation>& v) {
  json out = json::array();
  for (const AuditViolation& x : v) out.push_back({{"line", x.line}, {"kind", x.kind}, {"message", x.message}});
  return out;
}

}  // namespace

json AuditReport::to_json() const {
  return {{"clean", clean()},
          {"lines", lines},
          {"requests", requests},
          {"attempts", attempts},
          {"results", results},
          {"failovers", failovers},
          {"continuations", continuations},
          {"blocked", blocked},
          {"incomplete", incomplete},
          {"requests_per_level", requests_per_level},
          {"attempts_per_tier", attempts_per_tier},
          {"violations", violations_json(violations)},
          {"warnings", violations_json(warnings)}};
}

Expected<AuditReport> verify_audit_log(std::istream& in, const VerifyOptions& options) {
  Verifier v(options);
  std::string text;
  size_t n = 0;
  while (std::getline(in, text)) {
    ++n;
    // getline sets eof when the last line had no newline: a torn write.
    v.line(n, text, in.eof());
  }
  if (in.bad()) return make_error("audit log: read error after line ", n);
  return v.finish();
}

Expected<AuditReport> verify_audit_log(const std::filesystem::path& path, const VerifyOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("audit log ", path.string(), ": cannot open: ", std::strerror(errno));
  auto report = verify_audit_log(in, options);
  if (!report) return make_error(path.string(), ": ", report.error().message);
  return report;
}

}  // namespace dhi::policy
