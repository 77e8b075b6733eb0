// The gateway's audit log: one JSON object per line, appended, and the checker
// behind `dhi audit verify`. The log is evidence of where each prompt went, so
// a request record is written when the privacy decision is made, before any
// byte goes to a backend.
//
// Schema (every record has "type"; times are RFC 3339 UTC with milliseconds):
//   {"type":"request", "id":str, "time":str, "key_id":str|null, "model":str (as asked),
//    "privacy_level":"local"|"trusted"|"any" (after detectors),
//    "level_source":"header"|"key"|"default", "detectors":[str] (fired),
//    "action":"allow"|"raise"|"block"|"redact",
//    "candidates":[{"backend":str, "tier":"local"|"trusted"|"external", "model":str,
//                   "skipped":null|str (why not eligible)}],
//    "prompt":str (only with include_text)}
//   {"type":"attempt", "request_id":str, "time":str, "attempt":int (1-based), "backend":str,
//    "tier":..., "model":str, "continuation":bool (continues a partly streamed answer),
//    "outcome":"ok"|"error"|"timeout"|"dropped"|"stalled"|..., "error":str|null,
//    "prompt_tokens":int|null, "completion_tokens":int|null,
//    "first_token_ms":number|null, "latency_ms":number}
//   {"type":"result", "request_id":str, "time":str, "outcome":str, "backend":str|null (final),
//    "failovers":int, "prompt_tokens":int|null, "completion_tokens":int|null,
//    "latency_ms":number, "status":int (HTTP), "completion":str (only with include_text)}
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <istream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/expected.h"
#include "policy/policy.h"
#include "policy/tier.h"

namespace dhi::policy {

// "2026-11-26T09:51:48.123Z".
std::string rfc3339_utc_ms(std::chrono::system_clock::time_point t);

// Typed builders of the three records, so that writer and verifier agree on
// field names and types. Optional numbers are null when absent.
struct CandidateRecord {
  std::string backend;
  Tier tier = Tier::external;
  std::string model;
  std::string skipped;  // why it is not eligible; empty: eligible
};

struct RequestRecord {
  std::string id;
  std::chrono::system_clock::time_point time;
  std::string key_id;  // empty: null (no key)
  std::string model;   // as the client asked
  PrivacyDecision decision;
  std::vector<CandidateRecord> candidates;
  std::string prompt;  // kept only by a log with include_text
  nlohmann::json to_json() const;
};

struct AttemptRecord {
  std::string request_id;
  std::chrono::system_clock::time_point time;
  int attempt = 1;  // 1-based
  std::string backend;
  Tier tier = Tier::external;
  std::string model;
  bool continuation = false;
  std::string outcome;  // ok | error | timeout | dropped | stalled | ...
  std::string error;    // empty: null
  std::optional<int64_t> prompt_tokens, completion_tokens;
  std::optional<double> first_token_ms;
  double latency_ms = 0;
  nlohmann::json to_json() const;
};

struct ResultRecord {
  std::string request_id;
  std::chrono::system_clock::time_point time;
  std::string outcome;
  std::string backend;  // final backend; empty: null (none served it)
  int failovers = 0;
  std::optional<int64_t> prompt_tokens, completion_tokens;
  double latency_ms = 0;
  int status = 200;
  std::string completion;  // kept only by a log with include_text
  nlohmann::json to_json() const;
};

class AuditLog {
 public:
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Opens `path` for appending (created with mode 0600 when missing).
  // `include_text`: keep the "prompt" and "completion" fields; without it
  // write() drops them, whatever the caller put in.
  static Expected<std::unique_ptr<AuditLog>> open(const std::filesystem::path& path, bool include_text);

  // Appends `record` as one line with one write(2) under a lock: lines from
  // concurrent writers never interleave, and each line is in the kernel when
  // write() returns (a crash of the process loses at most the line being
  // written; no fsync, so a power loss can lose more).
  Status write(const nlohmann::json& record);

  bool include_text() const { return include_text_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  AuditLog(int fd, std::filesystem::path path, bool include_text)
      : fd_(fd), path_(std::move(path)), include_text_(include_text) {}
  int fd_ = -1;
  std::filesystem::path path_;
  bool include_text_ = false;
  std::mutex mu_;
};

struct AuditViolation {
  size_t line = 0;    // 1-based; 0 for findings about the log as a whole
  std::string kind;   // a stable word: parse, schema, unknown_request, tier_above_level, ...
  std::string message;
};

struct AuditReport {
  size_t lines = 0;
  size_t requests = 0;
  size_t attempts = 0;
  size_t results = 0;
  size_t failovers = 0;    // attempts after the first of their request
  size_t continuations = 0;
  size_t blocked = 0;      // requests with action "block"
  size_t incomplete = 0;   // requests without a result
  std::map<std::string, size_t> requests_per_level;  // "local" | "trusted" | "any"
  std::map<std::string, size_t> attempts_per_tier;   // "local" | "trusted" | "external"
  std::vector<AuditViolation> violations;
  std::vector<AuditViolation> warnings;  // become violations under `strict`
  bool clean() const { return violations.empty(); }
  nlohmann::json to_json() const;
};

struct VerifyOptions {
  // Requests without a result and a torn last line (a crash mid-write) are
  // violations instead of warnings.
  bool strict = false;
};

// Checks a log: every line is a JSON object with its type's fields; request ids
// are unique; every attempt and result follows its request; an attempt's tier
// is allowed by its request's level, its backend is one of the request's
// candidates with the same tier and not one recorded as skipped, no attempt
// follows a blocked request or its result, attempts are numbered 1, 2, ...;
// every request has exactly one result. The error is for an unreadable stream
// only; what is wrong with the log is in the report.
Expected<AuditReport> verify_audit_log(std::istream& in, const VerifyOptions& options = {});
Expected<AuditReport> verify_audit_log(const std::filesystem::path& path, const VerifyOptions& options = {});

}  // namespace dhi::policy
