#include "hub/http.h"

#include <curl/curl.h>

#include <cctype>
#include <memory>
#include <mutex>

namespace dhi::hub {
namespace {

constexpr const char* kUserAgent = "dhi/0.1.0";

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  HttpResponse response;
  StreamHandlers* handlers = nullptr;
  size_t max_body = 0;  // for text bodies
  bool started = false;
  bool too_large = false;
  CURL* curl = nullptr;
};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  // Each response of a redirect chain starts with a status line; keep only the
  // headers of the last one.
  if (line.rfind("HTTP/", 0) == 0) {
    t->response.headers.clear();
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  std::string name = line.substr(0, colon);
  for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
  t->response.headers[name] = trim(line.substr(colon + 1));
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (t->handlers) {
    if (!t->started) {
      t->started = true;
      curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->response.status);
      if (t->handlers->on_start && !t->handlers->on_start(t->response.status, t->response.headers)) {
        t->response.aborted = true;
        return 0;
      }
    }
    if (!t->handlers->on_data(data, bytes)) {
      t->response.aborted = true;
      return 0;
    }
    return bytes;
  }
  if (t->response.body.size() + bytes > t->max_body) {
    t->too_large = true;
    return 0;
  }
  t->response.body.append(data, bytes);
  return bytes;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->handlers && t->handlers->keep_going && !t->handlers->keep_going()) {
    t->response.aborted = true;
    return 1;
  }
  return 0;
}

Expected<HttpResponse> perform(const HttpRequest& req, bool head, Transfer& t, const std::string* post = nullptr) {
  global_init();
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return make_error("HTTP: could not create a libcurl handle");
  t.curl = curl.get();
  struct curl_slist* list = nullptr;
  for (const std::string& h : req.headers) list = curl_slist_append(list, h.c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(list, curl_slist_free_all);
  char errbuf[CURL_ERROR_SIZE] = {};

  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_USERAGENT, kUserAgent);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, req.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  // Only http(s), also after a redirect.
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, long(req.connect_timeout_ms > 0 ? req.connect_timeout_ms : 30000));
  // A transfer that delivers nothing for a minute is dead (a stalled CDN node);
  // the caller retries from where it stopped.
  const int64_t idle_s = req.idle_timeout_ms > 0 ? (req.idle_timeout_ms + 999) / 1000 : 60;
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, long(idle_s));
  if (t.handlers && t.handlers->keep_going) {
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  }
  if (post) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, post->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(post->size()));
  }
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (head) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (!req.range.empty()) curl_easy_setopt(c, CURLOPT_RANGE, req.range.c_str());

  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.response.status);
  char* effective = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK && effective)
    t.response.effective_url = effective;
  if ((rc == CURLE_WRITE_ERROR || rc == CURLE_ABORTED_BY_CALLBACK) && t.response.aborted)
    return std::move(t.response);
  if (t.too_large) return make_error(req.url, ": the answer is larger than ", t.max_body, " bytes");
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    return make_error(req.url, ": ", detail);
  }
  return std::move(t.response);
}

}  // namespace

Expected<HttpResponse> http_head(const HttpRequest& req) {
  Transfer t;
  return perform(req, /*head=*/true, t);
}

Expected<HttpResponse> http_get_text(const HttpRequest& req, size_t max_bytes) {
  Transfer t;
  t.max_body = max_bytes;
  return perform(req, /*head=*/false, t);
}

Expected<HttpResponse> http_get_stream(const HttpRequest& req, StreamHandlers& handlers) {
  Transfer t;
  t.handlers = &handlers;
  return perform(req, /*head=*/false, t);
}

Expected<HttpResponse> http_post_stream(const HttpRequest& req, const std::string& body, StreamHandlers& handlers) {
  Transfer t;
  t.handlers = &handlers;
  return perform(req, /*head=*/false, t, &body);
}

std::string url_encode_path(const std::string& path) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += char(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace dhi::hub
