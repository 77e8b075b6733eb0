// The shared HTTP front (see http_front.h).
#include "server/http_front.h"

#include <httplib.h>

namespace dhi::server {

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Every byte of `b` (the secret) is visited whatever `a` is.
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < b.size(); ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    diff |= x ^ static_cast<unsigned char>(b[i]);
  }
  return diff == 0;
}

std::string bearer_token(const httplib::Request& req) {
  const std::string header = req.get_header_value("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() < kBearer.size() || header.compare(0, kBearer.size(), kBearer) != 0) return "";
  return header.substr(kBearer.size());
}

void write_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump(error_body(e)), "application/json");
  if (e.status == 429) res.set_header("Retry-After", "1");
  if (e.status == 401) res.set_header("WWW-Authenticate", "Bearer");
}

void install_front(httplib::Server& h, const FrontOptions& opts, Authorize authorize, ReplyError reply) {
  h.new_task_queue = [n = opts.http_threads] { return new httplib::ThreadPool(size_t(std::max(n, 2))); };
  h.set_payload_max_length(opts.max_body_bytes);
  h.set_keep_alive_timeout(2);
  h.set_read_timeout(10);
  h.set_write_timeout(10);

  h.set_pre_routing_handler([opts, authorize, reply](const httplib::Request& req, httplib::Response& res) {
    size_t bytes = 0;
    for (const auto& [k, v] : req.headers) bytes += k.size() + v.size();
    if (req.headers.size() > opts.max_headers || bytes > opts.max_header_bytes) {
      ApiError e;
      e.status = 431;
      e.message = "request headers are too large (at most " + std::to_string(opts.max_headers) + " headers, " +
                  std::to_string(opts.max_header_bytes) + " bytes)";
      reply(res, "other", e);
      return httplib::Server::HandlerResponse::Handled;
    }
    const bool protected_path = req.path.rfind("/v1/", 0) == 0 || req.path == "/metrics";
    if (protected_path && !authorize(req)) {
      ApiError e;
      e.status = 401;
      e.code = "invalid_api_key";
      e.message = "missing or incorrect API key (send Authorization: Bearer KEY)";
      reply(res, "other", e);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Errors cpp-httplib raises itself (413 body too large, 404 unknown path,
  // 400 unparsable request) get an OpenAI error object too.
  h.set_error_handler([opts, reply](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.is_chunked_content_provider_) return;
    ApiError e;
    e.status = res.status;
    if (res.status == 404) {
      e.code = "not_found";
      e.message = "no endpoint " + req.method + " " + req.path;
    } else if (res.status == 413) {
      e.message = "the request body is larger than " + std::to_string(opts.max_body_bytes) + " bytes";
    } else {
      e.message = "the request could not be processed (HTTP " + std::to_string(res.status) + ")";
    }
    reply(res, "other", e);
  });
  h.set_exception_handler([reply](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    ApiError e;
    e.status = 500;
    e.type = "server_error";
    e.message = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& ex) {
      e.message = std::string("internal error: ") + ex.what();
    } catch (...) {
    }
    reply(res, "other", e);
  });
}

}  // namespace dhi::server
