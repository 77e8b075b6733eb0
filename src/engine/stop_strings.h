// Stop strings over streamed text. Generation stops at the first point in the
// stream where any stop string has been completed; the text before it is
// emitted, the stop string itself is not. While the tail of the text could
// still grow into a stop string it is held back, so the caller never shows the
// user a piece of a stop string. The result for a stream does not depend on
// how it was chunked: when two stop strings complete at the same byte, the one
// that starts earlier (the longer) wins.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dhi::engine {

class StopStringMatcher {
 public:
  struct Result {
    std::string emit;      // text that is now final
    bool stopped = false;  // a stop string was completed; later pushes emit nothing
  };

  // Empty stop strings are ignored.
  explicit StopStringMatcher(std::vector<std::string> stops);

  Result push(std::string_view text);
  // End of stream without a stop: returns the held-back text (empty once stopped).
  std::string flush();

  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace dhi::engine
