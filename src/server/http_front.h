// The HTTP front shared by `dhi serve` and `dhi gateway`: cpp-httplib's thread
// pool, body and header limits, the bearer API-key check on /v1/* and
// /metrics, and OpenAI error objects for the errors cpp-httplib raises itself
// (404, 413, 400) and for exceptions.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "server/openai.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace dhi::server {

struct FrontOptions {
  size_t max_body_bytes = size_t(8) << 20;
  size_t max_header_bytes = size_t(32) << 10;  // all header names and values together
  size_t max_headers = 100;
  int http_threads = 32;
};

// Writes an error response and counts it (endpoint: a metrics label).
using ReplyError = std::function<void(httplib::Response& res, const char* endpoint, const ApiError& e)>;
// True when the request may use a protected path.
using Authorize = std::function<bool(const httplib::Request& req)>;

void install_front(httplib::Server& http, const FrontOptions& options, Authorize authorize, ReplyError reply);

// Writes the error object with its status (and Retry-After / WWW-Authenticate
// where they belong).
void write_error(httplib::Response& res, const ApiError& e);

// The token of "Authorization: Bearer TOKEN", empty when absent.
std::string bearer_token(const httplib::Request& req);

// Constant-time comparison (the time does not depend on where the strings differ).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace dhi::server
