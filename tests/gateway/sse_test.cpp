// The incremental SSE parser: events come out whole however the bytes are cut.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gateway/sse.h"

namespace dhi::gateway {
namespace {

std::vector<std::string> parse_in_pieces(const std::string& stream, size_t piece) {
  SseParser p;
  std::vector<std::string> out;
  for (size_t i = 0; i < stream.size(); i += piece) p.push(std::string_view(stream).substr(i, piece), out);
  return out;
}

TEST(SseParser, EventsWhateverTheCuts) {
  const std::string stream =
      ": keep-alive\n\ndata: {\"a\":1}\n\nevent: x\ndata: line1\ndata: line2\n\r\ndata:nospace\r\n\r\n"
      "id: 7\n\ndata: [DONE]\n\ndata: unterminated";
  const std::vector<std::string> want = {"{\"a\":1}", "line1\nline2", "nospace", "[DONE]"};
  for (size_t piece : {1, 2, 3, 7, 64, 1000}) EXPECT_EQ(parse_in_pieces(stream, piece), want) << "piece " << piece;
}

TEST(SseParser, CarriageReturnsAlone) {
  EXPECT_EQ(parse_in_pieces("data: a\r\rdata: b\r\r", 1), (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace dhi::gateway
