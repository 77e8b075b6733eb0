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
