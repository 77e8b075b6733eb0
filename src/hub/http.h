// HTTP over libcurl for the model hub: HEAD without following redirects (the
// Hugging Face metadata headers sit on the first response), GET of small bodies
// (API JSON) and streamed GET (downloads). Transport failures (DNS, refused,
// reset, timeout) are Errors; any HTTP status is a response for the caller to judge.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/expected.h"

namespace dhi::hub {

using Headers = std::map<std::string, std::string>;  // lower-case names; last value wins

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  bool follow_redirects = true;
  std::string range;  // "123-" for a Range request; empty for none
};

struct HttpResponse {
  long status = 0;
  Headers headers;  // of the final response
  std::string body;
  std::string effective_url;
  bool aborted = false;  // a stream handler returned false
};

// Called with the final status and headers before the first body byte, then
// with each piece of the body; either returning false stops the transfer.
struct StreamHandlers {
  std::function<bool(long status, const Headers& headers)> on_start;
  std::function<bool(const char* data, size_t size)> on_data;
};

Expected<HttpResponse> http_head(const HttpRequest& req);
// The body must stay under `max_bytes` (an API answer, not a model).
Expected<HttpResponse> http_get_text(const HttpRequest& req, size_t max_bytes);
Expected<HttpResponse> http_get_stream(const HttpRequest& req, StreamHandlers& handlers);

// Percent-encodes everything but unreserved characters and '/'.
std::string url_encode_path(const std::string& path);

}  // namespace dhi::hub
