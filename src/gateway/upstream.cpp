// Upstream attempts over hub/http's streamed POST; deadlines are checked in
// libcurl's progress callback, which runs also while no byte arrives.
#include "gateway/upstream.h"

#include <chrono>
#include <utility>

#include <nlohmann/json.hpp>

#include "gateway/sse.h"
#include "hub/http.h"

namespace dhi::gateway {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxErrorBody = 64 << 10;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

std::string string_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The message of an OpenAI error object, or the raw body cut short.
std::string error_message(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error")) {
    const json& e = j["error"];
    if (e.is_object()) return string_field(e, "message");
    if (e.is_string()) return e.get<std::string>();
  }
  return body.substr(0, 300);
}

// A text offset from an upstream, or -1 when it is not a plausible one (the
// bound keeps the arithmetic on untrusted numbers far from overflow).
int64_t text_offset(const json& o) {
  constexpr int64_t kMaxOffset = int64_t(1) << 40;
  if (o.is_number_unsigned()) return o.get<uint64_t>() <= uint64_t(kMaxOffset) ? o.get<int64_t>() : -1;
  if (o.is_number_integer()) return o.get<int64_t>() >= 0 && o.get<int64_t>() <= kMaxOffset ? o.get<int64_t>() : -1;
  return -1;
}

// Where the text after the last entry of a legacy logprobs object starts.
int64_t end_offset(const json& lp) {
  const json* offsets = lp.is_object() && lp.contains("text_offset") ? &lp["text_offset"] : nullptr;
  const json* tokens = lp.is_object() && lp.contains("tokens") ? &lp["tokens"] : nullptr;
  if (!offsets || !tokens || !offsets->is_array() || !tokens->is_array() || offsets->empty() ||
      offsets->size() != tokens->size() || text_offset(offsets->back()) < 0 || !tokens->back().is_string())
    return -1;
  return text_offset(offsets->back()) + int64_t(tokens->back().get_ref<const std::string&>().size());
}

}  // namespace

json append_logprobs(json& into, const json& add) {
  if (!add.is_object()) return nullptr;
  json placed = json::object();
  for (const auto& [key, value] : add.items())
    if (value.is_array()) placed[key] = value;
  if (placed.empty()) return nullptr;
  const int64_t base = end_offset(into);
  if (json* offsets = placed.contains("text_offset") ? &placed["text_offset"] : nullptr;
      offsets && base >= 0 && !offsets->empty() && text_offset((*offsets)[0]) >= 0) {
    const int64_t first = text_offset((*offsets)[0]);
    for (json& o : *offsets)
      if (text_offset(o) >= 0) o = base + (text_offset(o) - first);
  }
  if (!into.is_object()) into = json::object();
  for (const auto& [key, value] : placed.items()) {
    json& list = into[key];
    if (!list.is_array()) list = json::array();
    list.insert(list.end(), value.begin(), value.end());
  }
  return placed;
}

Attempt run_attempt(const UpstreamCall& call, const std::function<bool(const Piece&)>& on_piece,
                    const std::function<bool()>& cancelled) {
  Attempt a;
  const Clock::time_point start = Clock::now();
  Clock::time_point last_piece = start;
  bool done = false, client_gone = false, timed_out = false;
  std::string error_body;
  SseParser parser;
  std::vector<std::string> events;
  json pending_logprobs;  // of tokens whose text has not arrived yet

  auto handle_event = [&](const std::string& data) -> bool {
    if (data == "[DONE]") {
      done = true;
      return true;
    }
    json j = json::parse(data, nullptr, false);
    if (!j.is_object()) return true;  // not ours to judge; OpenAI clients skip these too
    if (j.contains("error")) {
      a.outcome = Outcome::ErrorEvent;
      a.error = "error event: " + error_message(data);
      return false;
    }
    if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
      if (auto p = u->find("prompt_tokens"); p != u->end() && p->is_number_integer()) a.prompt_tokens = p->get<int64_t>();
      if (auto c = u->find("completion_tokens"); c != u->end() && c->is_number_integer())
        a.completion_tokens = c->get<int64_t>();
    }
    auto choices = j.find("choices");
    if (choices == j.end() || !choices->is_array() || choices->empty() || !(*choices)[0].is_object()) return true;
    const json& c = (*choices)[0];
    Piece piece;
    if (call.chat) {
      if (auto d = c.find("delta"); d != c.end() && d->is_object()) {
        piece.reasoning = string_field(*d, "reasoning_content");
        piece.content = string_field(*d, "content");
      }
    } else {
      piece.content = string_field(c, "text");
    }
    if (auto f = c.find("finish_reason"); f != c.end() && f->is_string()) a.finish_reason = f->get<std::string>();
    // One logprobs entry per generated token, also for tokens whose text is
    // held back (a partial character or tag): the exact count of an attempt
    // that ends before its usage arrives.
    if (auto lp = c.find("logprobs"); lp != c.end() && lp->is_object()) {
      const char* list = call.chat ? "content" : "tokens";
      if (auto l = lp->find(list); l != lp->end() && l->is_array()) a.logprob_tokens += int64_t(l->size());
      if (call.keep_logprobs) append_logprobs(pending_logprobs, *lp);
    }
    if (piece.reasoning.empty() && piece.content.empty()) return true;
    piece.logprobs = std::exchange(pending_logprobs, json());
    if (a.pieces++ == 0) a.first_token_ms = ms_since(start);
    last_piece = Clock::now();
    if (!on_piece(piece)) {
      client_gone = true;
      return false;
    }
    return true;
  };

  hub::StreamHandlers handlers;
  handlers.on_start = [&](long status, const hub::Headers&) {
    a.status = status;
    return true;
  };
  handlers.on_data = [&](const char* data, size_t size) {
    if (a.status != 200) {
      if (error_body.size() < kMaxErrorBody) error_body.append(data, std::min(size, kMaxErrorBody - error_body.size()));
      return true;
    }
    events.clear();
    parser.push(std::string_view(data, size), events);
    for (const std::string& e : events) {
      if (!handle_event(e)) return false;
    }
    return true;
  };
  handlers.keep_going = [&] {
    if (cancelled()) {
      client_gone = true;
      return false;
    }
    if (a.pieces == 0 && ms_since(start) > double(call.timeouts.first_token_ms)) {
      a.outcome = Outcome::FirstTokenTimeout;
      timed_out = true;
      return false;
    }
    if (a.pieces > 0 && ms_since(last_piece) > double(call.timeouts.idle_ms)) {
      a.outcome = Outcome::IdleTimeout;
      timed_out = true;
      return false;
    }
    return true;
  };

  hub::HttpRequest req;
  req.url = call.url;
  req.headers = call.headers;
  req.follow_redirects = false;  // a redirected POST would lose its body
  req.connect_timeout_ms = call.timeouts.connect_ms;
  // libcurl's own stall check backs up ours (both idle limits are the same).
  req.idle_timeout_ms = std::max(call.timeouts.first_token_ms, call.timeouts.idle_ms) + 1000;
  auto res = hub::http_post_stream(req, call.body, handlers);
  a.latency_ms = ms_since(start);

  if (client_gone) {
    a.outcome = Outcome::Cancelled;
    a.error = "the client went away";
    return a;
  }
  if (timed_out) {
    a.error = a.outcome == Outcome::FirstTokenTimeout
                  ? "no text within " + std::to_string(call.timeouts.first_token_ms) + " ms"
                  : "no text for " + std::to_string(call.timeouts.idle_ms) + " ms";
    return a;
  }
  if (a.outcome == Outcome::ErrorEvent) return a;
  if (!res) {
    // A connection lost after text arrived is a dropped stream.
    a.outcome = a.pieces > 0 ? Outcome::Dropped : Outcome::Transport;
    a.error = res.error().message;
    return a;
  }
  a.status = res->status;
  if (a.status != 200) {
    a.outcome = Outcome::HttpError;
    a.error = "HTTP " + std::to_string(a.status) + ": " + error_message(error_body);
    a.backend_fault = !(a.status >= 400 && a.status < 500 && a.status != 408 && a.status != 429);
    return a;
  }
  if (!done && a.finish_reason.empty()) {
    a.outcome = Outcome::Dropped;
    a.error = "the stream ended before its last event";
    return a;
  }
  a.outcome = Outcome::Completed;
  // Entries with no text after them (an end-of-text token) end the answer;
  // an attempt that fails drops them instead, as its continuation produces
  // those tokens again.
  if (!pending_logprobs.is_null() && !on_piece(Piece{"", "", std::move(pending_logprobs)})) {
    a.outcome = Outcome::Cancelled;
    a.error = "the client went away";
  }
  return a;
}

}  // namespace dhi::gateway
