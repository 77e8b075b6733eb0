// AuditLog: the append-only JSON-lines writer.
#include "policy/audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace dhi::policy {

std::string rfc3339_utc_ms(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  long frac = static_cast<long>(ms % 1000);
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

namespace {

nlohmann::json or_null(const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); }
template <typename T>
nlohmann::json or_null(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json RequestRecord::to_json() const {
  nlohmann::json cands = nlohmann::json::array();
  for (const CandidateRecord& c : candidates)
    cands.push_back({{"backend", c.backend}, {"tier", tier_name(c.tier)}, {"model", c.model}, {"skipped", or_null(c.skipped)}});
  nlohmann::json j = {{"type", "request"},
                      {"id", id},
                      {"time", rfc3339_utc_ms(time)},
                      {"key_id", or_null(key_id)},
                      {"model", model},
                      {"privacy_level", level_name(decision.level)},
                      {"level_source", decision.level_source},
                      {"detectors", decision.fired},
                      {"action", decision.action},
                      {"candidates", std::move(cands)}};
  if (!prompt.empty()) j["prompt"] = prompt;
  return j;
}

nlohmann::json AttemptRecord::to_json() const {
  return {{"type", "attempt"},
          {"request_id", request_id},
          {"time", rfc3339_utc_ms(time)},
          {"attempt", attempt},
          {"backend", backend},
          {"tier", tier_name(tier)},
          {"model", model},
          {"continuation", continuation},
          {"outcome", outcome},
          {"error", or_null(error)},
          {"prompt_tokens", or_null(prompt_tokens)},
          {"completion_tokens", or_null(completion_tokens)},
          {"first_token_ms", or_null(first_token_ms)},
          {"latency_ms", latency_ms}};
}

nlohmann::json ResultRecord::to_json() const {
  nlohmann::json j = {{"type", "result"},
                      {"request_id", request_id},
                      {"time", rfc3339_utc_ms(time)},
                      {"outcome", outcome},
                      {"backend", or_null(backend)},
                      {"failovers", failovers},
                      {"prompt_tokens", or_null(prompt_tokens)},
                      {"completion_tokens", or_null(completion_tokens)},
                      {"latency_ms", latency_ms},
                      {"status", status}};
  if (!completion.empty()) j["completion"] = completion;
  return j;
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

Expected<std::unique_ptr<AuditLog>> AuditLog::open(const std::filesystem::path& path, bool include_text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return make_error("audit log ", path.string(), ": cannot open for appending: ", std::strerror(errno));
  return std::unique_ptr<AuditLog>(new AuditLog(fd, path, include_text));
}

Status AuditLog::write(const nlohmann::json& record) {
  if (!record.is_object() || !record.contains("type"))
    return make_error("audit log: a record must be a JSON object with a type");
  std::string line;
  if (!include_text_ && (record.contains("prompt") || record.contains("completion"))) {
    nlohmann::json copy = record;
    copy.erase("prompt");
    copy.erase("completion");
    line = copy.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  line += '\n';
  std::lock_guard<std::mutex> lock(mu_);
  // O_APPEND plus one write per line keeps lines whole; loop only for the
  // rare short write (a full disk reports as an error on the next call).
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("audit log ", path_.string(), ": write failed: ", std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace dhi::policy
