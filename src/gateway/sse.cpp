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
  buf_.append(bytes);
  size_t start = 0;
  for (size_t i = 0; i < buf_.size(); ++i) {
    const char c = buf_[i];
    if (c != '\n' && c != '\r') continue;
    // A CR at the very end may be the first half of CR LF: wait for more.
    if (c == '\r' && i + 1 == buf_.size()) break;
    take_line(std::string_view(buf_).substr(start, i - start), out);
    if (c == '\r' && buf_[i + 1] == '\n') ++i;
    start = i + 1;
  }
  buf_.erase(0, start);
}

}  // namespace dhi::gateway
