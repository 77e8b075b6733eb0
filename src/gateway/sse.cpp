// SSE parsing per the WHATWG event-stream rules for the data field: lines end
// in LF, CR LF or CR; an empty line ends an event; "data:" drops one space.
#include "gateway/sse.h"

namespace dhi::gateway {

void SseParser::take_line(std::string_view line, std::vector<std::string>& out) {
  if (line.empty()) {
    if (has_data_) out.push_back(std::move(data_));
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line.front() == ':') return;
  const size_t colon = line.find(':');
  const std::string_view field = line.substr(0, colon);
  if (field != "data") return;
  std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (has_data_) data_ += '\n';
  data_.append(value);
  has_data_ = true;
}

void SseParser::push(std::string_view bytes, std::vector<std::string>& out) {
  for (char c : bytes) {
    // The LF of a CR LF whose CR already ended the line.
    if (skip_lf_) {
      skip_lf_ = false;
      if (c == '\n') continue;
    }
    if (c == '\n' || c == '\r') {
      take_line(buf_, out);
      buf_.clear();
      skip_lf_ = c == '\r';
      continue;
    }
    buf_ += c;
  }
}

}  // namespace dhi::gateway
