// Incremental parser of a server-sent-event stream (the upstream side of the
// gateway): bytes arrive in arbitrary pieces; complete events come out with
// their data lines joined. Comments (": keep-alive") and fields other than
// data are ignored, as OpenAI clients do.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dhi::gateway {

class SseParser {
 public:
  // Appends the payloads of the events that `bytes` completes to `out`.
  void push(std::string_view bytes, std::vector<std::string>& out);

 private:
  void take_line(std::string_view line, std::vector<std::string>& out);

  std::string buf_;   // an incomplete line
  std::string data_;  // data lines of the event being read
  bool has_data_ = false;
  bool skip_lf_ = false;  // the last byte was a CR
};

}  // namespace dhi::gateway
