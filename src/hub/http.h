// HTTP over libcurl for the model hub and the gateway: HEAD without following
// redirects (the Hugging Face metadata headers sit on the first response), GET of
// small bodies (API JSON), streamed GET (downloads) and streamed POST (the
// gateway's upstream completions, with connect, first-byte and idle timeouts and
// cancellation). Transport failures (DNS, refused, reset, timeout) are Errors;
// any HTTP status is a response for the caller to judge. Certificates are always
// verified (libcurl's default, never turned off here).
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
  // 0: the defaults (30 s to connect; a transfer idle for 60 s is dead).
  int64_t connect_timeout_ms = 0;
  int64_t idle_timeout_ms = 0;
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
  // Polled while the transfer runs (at least once a second, also while no byte
  // arrives); returning false stops it: the caller's own first-token and idle
  // deadlines, or a client that went away.
  std::function<bool()> keep_going;
};

Expected<HttpResponse> http_head(const HttpRequest& req);
// The body must stay under `max_bytes` (an API answer, not a model).
Expected<HttpResponse> http_get_text(const HttpRequest& req, size_t max_bytes);
Expected<HttpResponse> http_get_stream(const HttpRequest& req, StreamHandlers& handlers);
// POST of `body` (its Content-Type among req.headers), the answer streamed.
Expected<HttpResponse> http_post_stream(const HttpRequest& req, const std::string& body, StreamHandlers& handlers);

// Percent-encodes everything but unreserved characters and '/'.
std::string url_encode_path(const std::string& path);

}  // namespace dhi::hub
