// Thousands of malformed requests against a real `dhi serve` (run under
// ASan+UBSan in the sanitizer build): mutated JSON bodies, wrong types and
// ranges for every field, odd methods, paths and headers from four client
// threads at once, and raw garbage on the socket. Every answer must be a
// well-formed response (an OpenAI error object for every error), and
// afterwards no slot or queue entry may be left behind, a valid request must
// still work, and the server must exit 0 on SIGTERM (a sanitizer report or a
// leak makes the exit code non-zero).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "serve_process.h"

namespace dhi::test {
namespace {

using json = nlohmann::json;

json random_value(std::mt19937& rng, int depth = 0) {
  switch (rng() % 12) {
    case 0: return nullptr;
    case 1: return bool(rng() % 2);
    case 2: return int64_t(rng()) - int64_t(1u << 31);
    case 3: return -1;
    case 4: return std::numeric_limits<int64_t>::max();
    case 5: return double(rng()) / 1e3 - 2e6;
    case 6: return 1e308;
    case 7: return std::string(rng() % 40, char('a' + rng() % 26));
    case 8: return std::string("\xff\xfe<think>\x80", 8);
    case 9: {
      json a = json::array();
      if (depth < 3) for (unsigned i = 0; i < rng() % 4; ++i) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    case 10: {
      json o = json::object();
      if (depth < 3) o["role"] = random_value(rng, depth + 1), o["content"] = random_value(rng, depth + 1);
      return o;
    }
    default: return 0;
  }
}

const char* const kFields[] = {"model", "messages", "prompt", "stream", "stream_options", "max_tokens",
                               "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "seed",
                               "stop", "presence_penalty", "frequency_penalty", "n", "logprobs",
                               "top_logprobs", "reasoning_format", "repeat_penalty"};

json base_body(std::mt19937& rng, bool chat) {
  json b = {{"max_tokens", 1 + rng() % 6}, {"temperature", 0}};
  if (chat) {
    b["messages"] = json::array({{{"role", "user"}, {"content", "hello"}}});
  } else {
    b["prompt"] = "Once upon a time";
  }
  if (rng() % 2) b["stream"] = true;
  return b;
}

std::string mutate(std::mt19937& rng, bool chat) {
  json b = base_body(rng, chat);
  const int n_field_changes = int(rng() % 3);
  for (int i = 0; i < n_field_changes; ++i) {
    const char* f = kFields[rng() % std::size(kFields)];
    if (rng() % 4 == 0) b.erase(f);
    else b[f] = random_value(rng);
  }
  // Generation stays short: the context is small and max_tokens, when valid, too.
  std::string s = b.dump(-1, ' ', false, json::error_handler_t::replace);
  switch (rng() % 8) {
    case 0: {  // byte edits
      const int n = 1 + int(rng() % 4);
      for (int i = 0; i < n && !s.empty(); ++i) s[rng() % s.size()] = char(rng() % 256);
      break;
    }
    case 1: s.resize(rng() % (s.size() + 1)); break;  // truncated
    case 2: s.insert(rng() % (s.size() + 1), std::string(1 + rng() % 3, "{}[]\",:\\"[rng() % 8])); break;
    default: break;  // only the field changes
  }
  return s;
}

bool is_error_object(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  return j.is_object() && j.contains("error") && j["error"].is_object() && j["error"]["message"].is_string() &&
         j["error"]["type"].is_string();
}

// Raw bytes on a fresh connection; whatever comes back is read and dropped.
void raw_exchange(int port, const std::string& bytes) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    (void)send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    char buf[4096];
    while (recv(fd, buf, sizeof buf, 0) > 0) {
    }
  }
  close(fd);
}

TEST(ServerFuzz, MalformedRequestsNeverCrashOrLeakSlots) {
  ServeProcess server;
  ASSERT_TRUE(server.start({"-m", stories_model(), "--chat-template", "chatml", "--parallel", "2", "--queue", "2", "--ctx", "64",
                            "--max-body", "16384", "--api-key", "k"}))
      << server.stderr_text();
  const int port = server.port();
  constexpr int kThreads = 4, kPerThread = 500;
  std::atomic<int> bad{0}, answered{0}, generated{0};
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(1234u + unsigned(t));
      httplib::Client cli("127.0.0.1", port);
      cli.set_read_timeout(60);
      for (int i = 0; i < kPerThread; ++i) {
        const bool chat = rng() % 2;
        const std::string path = rng() % 20 == 0   ? "/v1/../v1/models?x=%zz"
                                 : rng() % 20 == 0 ? "/v1/models/" + std::string(rng() % 300, 'x')
                                 : chat            ? "/v1/chat/completions"
                                                   : "/v1/completions";
        httplib::Headers headers;
        if (rng() % 10 != 0) headers.emplace("Authorization", rng() % 10 ? "Bearer k" : "Bearer kk");
        const std::string body = rng() % 25 == 0 ? std::string(20000, '[') : mutate(rng, chat);
        const char* type = rng() % 8 == 0 ? "text/plain" : "application/json";
        auto res = rng() % 15 == 0 ? cli.Get(path, headers) : cli.Post(path, headers, body, type);
        if (!res) {
          ++bad;
          failures[size_t(t)] = "no response for " + body;
          continue;
        }
        ++answered;
        const int st = res->status;
        if (st == 200 && path.find("completions") != std::string::npos) ++generated;
        const bool ok_status = st == 200 || st == 400 || st == 401 || st == 404 || st == 413 || st == 429;
        bool ok_body = true;
        if (st != 200) {
          ok_body = is_error_object(res->body);
        } else if (path.find("completions") != std::string::npos) {
          // A 200 is a JSON response or a stream ending in [DONE].
          const bool sse = res->get_header_value("Content-Type") == "text/event-stream";
          ok_body = sse ? res->body.find("data: [DONE]") != std::string::npos
                        : json::accept(res->body);
        }
        if (!ok_status || !ok_body) {
          ++bad;
          failures[size_t(t)] = std::to_string(st) + " for " + body + " -> " + res->body.substr(0, 300);
        }
      }
    });
  }
  std::mt19937 rng(99);
  const std::vector<std::string> raw = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n{",
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: 5\r\n\r\n{\"a\":",
      "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n",
      "GET /health HTTP/1.1\r\nX: " + std::string(20000, 'b') + "\r\n\r\n",
      std::string("\0\0\0\0\xff\xff", 6),
  };
  for (int i = 0; i < 150; ++i) {
    std::string bytes = raw[size_t(i) % raw.size()];
    if (i >= int(raw.size()) && !bytes.empty()) bytes[rng() % bytes.size()] = char(rng() % 256);
    raw_exchange(port, bytes);
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0) << [&] {
    std::string all;
    for (const auto& f : failures) all += f.empty() ? "" : f + "\n";
    return all;
  }();
  EXPECT_EQ(answered.load(), kThreads * kPerThread);
  // The mix reaches the engine too, not only the validation.
  EXPECT_GT(generated.load(), kThreads * kPerThread / 6);
  std::printf("%d requests, %d generated\n", answered.load(), generated.load());

  // Nothing left behind: no active sequence, nothing queued, and it still works.
  httplib::Client cli("127.0.0.1", port);
  httplib::Headers auth = {{"Authorization", "Bearer k"}};
  bool idle = false;
  for (int i = 0; i < 500 && !idle; ++i) {
    auto m = cli.Get("/metrics", auth);
    idle = m && m->body.find("dhi_active_sequences 0\n") != std::string::npos &&
           m->body.find("dhi_queue_depth 0\n") != std::string::npos;
    if (!idle) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(idle);
  auto ok = cli.Post("/v1/completions", auth, R"({"prompt":"Once","max_tokens":3})", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(server.stop(), 0) << server.stderr_text();
}

}  // namespace
}  // namespace dhi::test
