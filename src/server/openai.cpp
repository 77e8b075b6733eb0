// OpenAI request parsing and response building (see openai.h).
#include "server/openai.h"

#include <chrono>
#include <cmath>
#include <limits>

namespace dhi::server {
namespace {

using json = nlohmann::json;

constexpr int kMaxDepth = 64;          // nesting a valid request never needs
constexpr size_t kMaxStops = 16;
constexpr size_t kMaxStopBytes = 256;
constexpr int32_t kMaxTopLogprobs = 20;

ApiError bad(std::string param, std::string message) {
  ApiError e;
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

// Deeper nesting than any request needs is refused before parsing.
bool too_deep(std::string_view body) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

std::optional<ApiError> get_number(const json& body, const char* key, double lo, double hi, float& out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return bad(key, std::string("'") + key + "' must be a number");
  const double v = it->get<double>();
  if (!(v >= lo && v <= hi))
    return bad(key, std::string("'") + key + "' must be in [" + json(lo).dump() + ", " + json(hi).dump() +
                        "], got " + it->dump());
  out = float(v);
  return std::nullopt;
}

std::optional<ApiError> get_int(const json& body, const char* key, int64_t lo, int64_t hi, int64_t& out,
                                bool& given) {
  given = false;
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) return bad(key, std::string("'") + key + "' must be an integer");
  int64_t v = 0;
  if (it->is_number_unsigned()) {
    const uint64_t u = it->get<uint64_t>();
    v = u > uint64_t(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max() : int64_t(u);
  } else {
    v = it->get<int64_t>();
  }
  if (v < lo || v > hi)
    return bad(key, std::string("'") + key + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                        "], got " + it->dump());
  out = v;
  given = true;
  return std::nullopt;
}

std::optional<ApiError> get_bool(const json& body, const char* key, bool& out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return bad(key, std::string("'") + key + "' must be a boolean");
  out = it->get<bool>();
  return std::nullopt;
}

// Message content: a string, or an array of {"type": "text", "text": ...} parts.
std::optional<ApiError> message_text(const json& content, const std::string& param, std::string& out) {
  if (content.is_string()) {
    out = content.get<std::string>();
    return std::nullopt;
  }
  if (content.is_null()) {
    out.clear();
    return std::nullopt;
  }
  if (!content.is_array()) return bad(param, "'" + param + "' must be a string or an array of text parts");
  out.clear();
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string p = param + "[" + std::to_string(i) + "]";
    if (!part.is_object()) return bad(p, "'" + p + "' must be an object");
    auto type = part.find("type");
    if (type == part.end() || !type->is_string() || *type != "text")
      return bad(p + ".type", "only text content parts are supported");
    auto text = part.find("text");
    if (text == part.end() || !text->is_string()) return bad(p + ".text", "'" + p + ".text' must be a string");
    out += text->get<std::string>();
  }
  return std::nullopt;
}

std::optional<ApiError> parse_messages(const json& body, std::vector<chat::Message>& out,
                                       std::optional<chat::AssistantPrefix>& prefix) {
  auto it = body.find("messages");
  if (it == body.end()) return bad("messages", "'messages' is required");
  if (!it->is_array() || it->empty()) return bad("messages", "'messages' must be a non-empty array");
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string p = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return bad(p, "'" + p + "' must be an object");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return bad(p + ".role", "'" + p + ".role' must be a string");
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";  // OpenAI's newer name for the system role
    if (r != "system" && r != "user" && r != "assistant")
      return bad(p + ".role", "role '" + role->get<std::string>() +
                                  "' is not supported (system, developer, user, assistant)");
    chat::Message msg;
    msg.role = r;
    auto content = m.find("content");
    if (content == m.end()) return bad(p + ".content", "'" + p + ".content' is required");
    if (auto e = message_text(*content, p + ".content", msg.content)) return e;
    bool is_prefix = false;
    if (auto e = get_bool(m, "prefix", is_prefix)) return e;
    if (is_prefix) {
      if (r != "assistant" || i + 1 != it->size())
        return bad(p + ".prefix", "only the last message, an assistant one, may have 'prefix': true");
      chat::AssistantPrefix partial;
      partial.content = std::move(msg.content);
      if (auto rc = m.find("reasoning_content"); rc != m.end() && !rc->is_null()) {
        if (!rc->is_string()) return bad(p + ".reasoning_content", "'" + p + ".reasoning_content' must be a string");
        partial.reasoning = rc->get<std::string>();
      }
      prefix = std::move(partial);
      break;
    }
    out.push_back(std::move(msg));
  }
  if (out.empty()) return bad("messages", "'messages' needs a message before the assistant prefix");
  return std::nullopt;
}

std::optional<ApiError> parse_prompt(const json& body, CompletionRequest& out) {
  auto it = body.find("prompt");
  if (it == body.end()) return bad("prompt", "'prompt' is required");
  if (it->is_string()) {
    out.prompt = it->get<std::string>();
    return std::nullopt;
  }
  if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
    out.prompt = (*it)[0].get<std::string>();
    return std::nullopt;
  }
  if (it->is_array() && !it->empty()) {
    for (const json& t : *it) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > std::numeric_limits<int32_t>::max())
        return bad("prompt", "'prompt' must be a string, an array of one string, or an array of token ids");
      out.prompt_tokens.push_back(int32_t(t.get<int64_t>()));
    }
    out.prompt_is_tokens = true;
    return std::nullopt;
  }
  return bad("prompt", "'prompt' must be a string, an array of one string, or an array of token ids");
}

std::optional<ApiError> parse_stop(const json& body, std::vector<std::string>& out) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return std::nullopt;
  std::vector<std::string> stops;
  if (it->is_string()) {
    stops.push_back(it->get<std::string>());
  } else if (it->is_array()) {
    for (const json& s : *it) {
      if (!s.is_string()) return bad("stop", "'stop' must be a string or an array of strings");
      stops.push_back(s.get<std::string>());
    }
  } else {
    return bad("stop", "'stop' must be a string or an array of strings");
  }
  if (stops.size() > kMaxStops) return bad("stop", "at most " + std::to_string(kMaxStops) + " stop strings");
  for (const auto& s : stops) {
    if (s.size() > kMaxStopBytes)
      return bad("stop", "stop strings are limited to " + std::to_string(kMaxStopBytes) + " bytes");
    out.push_back(s);
  }
  return std::nullopt;
}

}  // namespace

json error_body(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return {{"error", err}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::optional<ApiError> parse_request(Endpoint endpoint, std::string_view text, uint64_t default_seed,
                                      CompletionRequest& out) {
  out = CompletionRequest{};
  out.endpoint = endpoint;
  if (too_deep(text)) return bad("", "the request body nests deeper than " + std::to_string(kMaxDepth) + " levels");
  json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return bad("", "the request body is not valid JSON");
  if (!body.is_object()) return bad("", "the request body must be a JSON object");

  if (auto it = body.find("model"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return bad("model", "'model' must be a string");
    out.model = it->get<std::string>();
  }
  if (endpoint == Endpoint::ChatCompletions) {
    if (auto e = parse_messages(body, out.messages, out.prefix)) return e;
  } else {
    if (auto e = parse_prompt(body, out)) return e;
  }
  if (auto e = get_bool(body, "stream", out.stream)) return e;
  if (auto it = body.find("stream_options"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return bad("stream_options", "'stream_options' must be an object");
    if (auto e = get_bool(*it, "include_usage", out.include_usage)) return e;
  }

  // OpenAI's defaults: temperature 1 and top_p 1 with no other truncation.
  sampling::SamplingParams& sp = out.limits.sampling;
  sp.temperature = 1.0f;
  sp.top_p = 1.0f;
  sp.top_k = 0;
  sp.min_p = 0.0f;
  sp.repeat_penalty = 1.0f;
  sp.repeat_last_n = -1;  // OpenAI's penalties count the whole completion
  if (auto e = get_number(body, "temperature", 0, 2, sp.temperature)) return e;
  if (auto e = get_number(body, "top_p", 0, 1, sp.top_p)) return e;
  if (auto e = get_number(body, "min_p", 0, 1, sp.min_p)) return e;
  if (auto e = get_number(body, "presence_penalty", -2, 2, sp.presence_penalty)) return e;
  if (auto e = get_number(body, "frequency_penalty", -2, 2, sp.frequency_penalty)) return e;
  if (auto e = get_number(body, "repeat_penalty", 0, 10, sp.repeat_penalty)) return e;
  int64_t v = 0;
  bool given = false;
  if (auto e = get_int(body, "top_k", 0, 1 << 20, v, given)) return e;
  if (given) sp.top_k = int32_t(v);
  if (auto e = get_int(body, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), v,
                       given))
    return e;
  sp.seed = given ? uint64_t(v) : default_seed;
  if (auto e = get_int(body, "n", 1, 1, v, given)) return e;

  // max_completion_tokens is the newer name; either caps the generated tokens.
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (auto e = get_int(body, key, 1, 1 << 30, v, given)) return e;
    if (given) out.limits.max_tokens = int32_t(v);
  }
  if (auto e = parse_stop(body, out.limits.stop)) return e;

  if (endpoint == Endpoint::ChatCompletions) {
    bool logprobs = false;
    if (auto e = get_bool(body, "logprobs", logprobs)) return e;
    if (auto e = get_int(body, "top_logprobs", 0, kMaxTopLogprobs, v, given)) return e;
    if (given && !logprobs) return bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    if (logprobs) out.limits.top_logprobs = given ? int32_t(v) : 0;
    if (auto it = body.find("reasoning_format"); it != body.end() && !it->is_null()) {
      if (!it->is_string() || (*it != "deepseek" && *it != "none"))
        return bad("reasoning_format", "'reasoning_format' must be \"deepseek\" (split) or \"none\" (raw text)");
      out.split_reasoning = *it == "deepseek";
    }
  } else {
    // The legacy endpoint's logprobs is the number of alternatives (0..5).
    if (auto e = get_int(body, "logprobs", 0, 5, v, given)) return e;
    if (given) out.limits.top_logprobs = int32_t(v);
  }
  return std::nullopt;
}

std::string_view finish_reason_text(engine::FinishReason r) {
  switch (r) {
    case engine::FinishReason::Length:
    case engine::FinishReason::ContextFull: return "length";
    case engine::FinishReason::Stop:
    case engine::FinishReason::Cancelled: return "stop";
  }
  return "stop";
}

ResponseBuilder::ResponseBuilder(const CompletionRequest& request, std::string id, std::string model_id,
                                 bool opens_in_reasoning, const tok::Tokenizer& tokenizer)
    : req_(request),
      id_(std::move(id)),
      model_id_(std::move(model_id)),
      created_(std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count()),
      tokenizer_(tokenizer),
      chat_(request.endpoint == Endpoint::ChatCompletions) {
  if (chat_ && request.split_reasoning) {
    // A continuation of content stays content, even if it starts with "<think>".
    const bool in_content = request.prefix && !opens_in_reasoning && !request.prefix->content.empty();
    parser_.emplace(opens_in_reasoning, in_content ? "" : "<think>");
  } else if (chat_ && opens_in_reasoning && !request.prefix) {
    // The raw text shows the block the prompt opened, as `dhi run` does.
    raw_prefix_ = "<think>\n";
  }
}

json ResponseBuilder::chunk_base() const {
  json j = {{"id", id_},
            {"object", chat_ ? "chat.completion.chunk" : "text_completion"},
            {"created", created_},
            {"model", model_id_},
            {"system_fingerprint", "dhi"}};
  if (req_.include_usage) j["usage"] = nullptr;
  return j;
}

json ResponseBuilder::usage() const {
  const int32_t reasoning = reasoning_.empty() ? 0 : tokens_before_content_;
  return {{"prompt_tokens", prompt_tokens_},
          {"completion_tokens", gen_tokens_},
          {"total_tokens", prompt_tokens_ + gen_tokens_},
          {"prompt_tokens_details", {{"cached_tokens", prompt_cached_}}},
          {"completion_tokens_details", {{"reasoning_tokens", reasoning}}}};
}

std::optional<json> ResponseBuilder::first_chunk() const {
  if (!chat_) return std::nullopt;
  json j = chunk_base();
  j["choices"] = json::array(
      {{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr},
        {"finish_reason", nullptr}}});
  return j;
}

void ResponseBuilder::take_text(std::string_view text, bool final, std::string& reasoning, std::string& content) {
  if (parser_) {
    chat::ReasoningParser::Delta d = parser_->push(text);
    if (final) {
      chat::ReasoningParser::Delta tail = parser_->flush();
      d.reasoning += tail.reasoning;
      d.content += tail.content;
    }
    reasoning = std::move(d.reasoning);
    content = std::move(d.content);
  } else {
    content = raw_prefix_ + std::string(text);
    raw_prefix_.clear();
  }
  reasoning_ += reasoning;
  content_ += content;
}

void ResponseBuilder::append_logprob(const engine::TokenLogprobs& lp) { logprobs_.push_back(lp); }

json ResponseBuilder::logprobs_json(size_t from) const {
  if (req_.limits.top_logprobs < 0 || from >= logprobs_.size()) return nullptr;
  auto bytes = [](const std::string& s) {
    json b = json::array();
    for (unsigned char c : s) b.push_back(int(c));
    return b;
  };
  if (chat_) {
    json content = json::array();
    for (size_t i = from; i < logprobs_.size(); ++i) {
      const auto& lp = logprobs_[i];
      const std::string piece = tokenizer_.token_to_piece(lp.chosen.token);
      json top = json::array();
      for (const auto& t : lp.top) {
        const std::string p = tokenizer_.token_to_piece(t.token);
        top.push_back({{"token", p}, {"logprob", t.logprob}, {"bytes", bytes(p)}});
      }
      content.push_back({{"token", piece}, {"logprob", lp.chosen.logprob}, {"bytes", bytes(piece)},
                         {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  // Legacy completions shape: parallel arrays.
  json tokens = json::array(), token_logprobs = json::array(), top = json::array(), offsets = json::array();
  size_t offset = 0;
  for (size_t i = 0; i < from; ++i) offset += tokenizer_.token_to_piece(logprobs_[i].chosen.token).size();
  for (size_t i = from; i < logprobs_.size(); ++i) {
    const auto& lp = logprobs_[i];
    const std::string piece = tokenizer_.token_to_piece(lp.chosen.token);
    tokens.push_back(piece);
    token_logprobs.push_back(lp.chosen.logprob);
    json alts = json::object();
    for (const auto& t : lp.top) alts[tokenizer_.token_to_piece(t.token)] = t.logprob;
    top.push_back(alts);
    offsets.push_back(offset);
    offset += piece.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
}

void ResponseBuilder::on_event(const engine::Event& e, std::vector<json>* chunks) {
  if (e.token >= 0 && e.logprobs) append_logprob(*e.logprobs);
  std::string reasoning, content;
  take_text(e.text, e.final, reasoning, content);
  if (e.token >= 0) {
    ++tokens_seen_;
    if (!content_started_ && content.empty()) ++tokens_before_content_;
  }
  if (!content.empty()) content_started_ = true;

  auto choice = [&](json delta_or_text, json finish) {
    json c = {{"index", 0}, {"logprobs", logprobs_json(logprobs_sent_)}, {"finish_reason", finish}};
    if (chat_) c["delta"] = std::move(delta_or_text);
    else c["text"] = std::move(delta_or_text);
    return c;
  };
  if (chunks && (!reasoning.empty() || !content.empty())) {
    json delta = json::object();
    if (!reasoning.empty()) delta["reasoning_content"] = reasoning;
    if (!content.empty()) delta["content"] = content;
    json j = chunk_base();
    j["choices"] = json::array({choice(chat_ ? delta : json(content), nullptr)});
    logprobs_sent_ = logprobs_.size();
    chunks->push_back(std::move(j));
  }
  if (!e.final) return;

  prompt_tokens_ = e.prompt_tokens;
  prompt_cached_ = e.prompt_cached;
  gen_tokens_ = e.gen_tokens;
  finish_ = e.finish;
  if (!e.error.empty()) {
    ApiError err;
    err.status = 500;
    err.type = "server_error";
    err.message = e.error;
    failure_ = err;
    if (chunks) chunks->push_back(error_body(err));
    return;
  }
  if (!chunks) return;
  json j = chunk_base();
  j["choices"] = json::array({choice(chat_ ? json::object() : json(""), finish_reason_text(finish_))});
  logprobs_sent_ = logprobs_.size();
  chunks->push_back(std::move(j));
  if (req_.include_usage) {
    json u = chunk_base();
    u["choices"] = json::array();
    u["usage"] = usage();
    chunks->push_back(std::move(u));
  }
}

json ResponseBuilder::response() const {
  json choice = {{"index", 0}, {"logprobs", logprobs_json(0)}, {"finish_reason", finish_reason_text(finish_)}};
  if (chat_) {
    json message = {{"role", "assistant"}, {"content", content_}};
    if (parser_ && !reasoning_.empty()) message["reasoning_content"] = reasoning_;
    choice["message"] = message;
  } else {
    choice["text"] = content_;
  }
  return {{"id", id_},
          {"object", chat_ ? "chat.completion" : "text_completion"},
          {"created", created_},
          {"model", model_id_},
          {"system_fingerprint", "dhi"},
          {"choices", json::array({choice})},
          {"usage", usage()}};
}

}  // namespace dhi::server
