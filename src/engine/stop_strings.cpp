// StopStringMatcher: search the held-back tail plus the new text for the stop
// string that completes first, else hold back the longest tail that is a
// prefix of some stop string. See stop_strings.h.
#include "engine/stop_strings.h"

#include <algorithm>
#include <utility>

namespace dhi::engine {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) {
  for (std::string& s : stops) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

StopStringMatcher::Result StopStringMatcher::push(std::string_view text) {
  Result out;
  if (stopped_) {
    out.stopped = true;
    return out;
  }
  pending_.append(text);

  // The held-back tail never contains a whole stop string, so any match here
  // completes inside the new text; the earliest completion is where a
  // byte-by-byte stream would have stopped.
  size_t best_start = std::string::npos;
  size_t best_end = std::string::npos;
  for (const std::string& s : stops_) {
    const size_t pos = pending_.find(s);
    if (pos == std::string::npos) continue;
    const size_t end = pos + s.size();
    if (best_end == std::string::npos || end < best_end || (end == best_end && pos < best_start)) {
      best_start = pos;
      best_end = end;
    }
  }
  if (best_end != std::string::npos) {
    out.emit = pending_.substr(0, best_start);
    out.stopped = true;
    stopped_ = true;
    pending_.clear();
    return out;
  }

  size_t hold = 0;
  for (const std::string& s : stops_) {
    const size_t max_len = std::min(pending_.size(), s.size() - 1);
    for (size_t len = max_len; len > hold; --len) {
      if (std::string_view(pending_).substr(pending_.size() - len) == std::string_view(s).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  out.emit = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopStringMatcher::flush() {
  std::string out = std::move(pending_);
  pending_.clear();
  return out;
}

}  // namespace dhi::engine
