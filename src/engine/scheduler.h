// The multi-sequence scheduler behind the server: one engine loop owns a model
// Context with one KV-cache sequence per slot and runs every active request
// together (continuous batching). Each step is one Context::decode of a single
// Batch holding the next token of every generating slot plus a bounded chunk
// of prompt tokens of newly admitted requests, so a long prompt delays the
// others' next token by at most one chunk. Any thread may submit(); requests
// wait in a bounded queue for a free slot; results flow back through each
// request's own RequestHandle. A finished slot keeps its cached tokens, and a
// new request goes to the free slot sharing the longest prefix with its prompt
// (the next turn of a conversation reuses the previous turn's KV cache).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/generation.h"
#include "model/context.h"
#include "tokenizer/tokenizer.h"

namespace dhi::engine {

using Clock = std::chrono::steady_clock;

struct Request {
  std::vector<int32_t> prompt;  // non-empty, shorter than the context
  GenerationLimits limits;
};

// One generated token (token >= 0) or the end of the request (final).
struct Event {
  int32_t token = -1;
  std::string text;  // text that became final (may be empty)
  std::optional<TokenLogprobs> logprobs;
  Clock::time_point time;
  bool final = false;
  FinishReason finish = FinishReason::Stop;
  std::string error;  // final only: non-empty when generation failed
  // Final only: prompt tokens, how many came from the cache, generated tokens.
  int32_t prompt_tokens = 0, prompt_cached = 0, gen_tokens = 0;
};

// The channel between the engine loop and whoever waits for one request.
class RequestHandle {
 public:
  // Waits up to `timeout` for events and appends them to `out`; false when none came.
  bool wait(std::vector<Event>& out, std::chrono::milliseconds timeout);
  // Asks the engine to stop this request; it answers with a final Cancelled event.
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }
  Clock::time_point submitted() const { return submitted_; }

 private:
  friend class Scheduler;
  void push(Event e);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  std::atomic<bool> cancelled_{false};
  Clock::time_point submitted_ = Clock::now();
};

struct SchedulerParams {
  int32_t max_queue = 16;       // requests waiting for a slot before submit() refuses
  int32_t prefill_chunk = 128;  // prompt tokens per step, over all admitted requests
};

struct SchedulerStats {
  int32_t slots = 0, active = 0, queued = 0;
  int64_t kv_used = 0, kv_capacity = 0;  // positions cached in all slots / slots * n_ctx
  uint64_t prompt_evaluated = 0, prompt_reused = 0;  // prompt tokens computed / taken from cache
  uint64_t steps = 0;
};

enum class SubmitStatus { Accepted, QueueFull, ShuttingDown, Invalid };

struct SubmitResult {
  SubmitStatus status = SubmitStatus::Accepted;
  std::shared_ptr<RequestHandle> handle;  // set when accepted
  std::string message;                    // why not
};

class Scheduler {
 public:
  // One slot per sequence of `context`.
  Scheduler(model::Context& context, const tok::Tokenizer& tokenizer, const SchedulerParams& params);

  SubmitResult submit(Request request);
  // The engine loop: runs until shutdown() and every request has its final event.
  void run();
  // Ends every queued and active request (final Cancelled event), refuses new
  // ones, and makes run() return.
  void shutdown();

  SchedulerStats stats() const;
  int32_t n_slots() const { return int32_t(slots_.size()); }
  int64_t n_ctx() const { return n_ctx_; }

 private:
  struct Slot {
    std::vector<int32_t> cached;  // tokens whose keys and values are in the cache
    std::shared_ptr<RequestHandle> handle;  // null when free
    Request request;
    std::unique_ptr<Generation> gen;
    size_t prompt_done = 0;  // prompt tokens in `cached`
    int32_t prompt_cached = 0;
    int32_t pending = -1;       // sampled token to evaluate in the next step
    int64_t batch_index = -1;   // batch entry holding this slot's logits this step
    uint64_t last_used = 0;
    uint64_t admitted = 0;      // admission order: earlier requests prefill first
    size_t in_batch = 0;        // tokens this slot put in the current batch
  };

  void admit();
  int32_t pick_slot(const std::vector<int32_t>& prompt) const;
  void drop_cancelled();
  void finish(Slot& s, FinishReason reason, std::string text = {}, std::string error = {});
  bool build_batch();
  void after_decode();
  void fail_batch(const std::string& message);
  void end_everything();
  void publish_stats();

  model::Context& ctx_;
  const tok::Tokenizer& tokenizer_;
  const SchedulerParams params_;
  const int64_t n_ctx_;
  std::vector<Slot> slots_;
  model::Batch batch_;
  uint64_t clock_ = 0;

  mutable std::mutex mu_;  // guards queue_, shutdown_, held_, stats_
  std::condition_variable cv_;
  std::deque<std::pair<Request, std::shared_ptr<RequestHandle>>> queue_;
  bool shutdown_ = false;
  int32_t held_ = 0;  // slots with a request (admitted under mu_, so submit() sees free ones)
  SchedulerStats stats_;
};

}  // namespace dhi::engine
