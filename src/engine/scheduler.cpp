// Scheduler: admission, slot choice by cached prefix, batch building and the
// per-slot bookkeeping after each batched decode.
#include "engine/scheduler.h"

#include <algorithm>

namespace dhi::engine {

bool RequestHandle::wait(std::vector<Event>& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
  while (!events_.empty()) {
    out.push_back(std::move(events_.front()));
    events_.pop_front();
  }
  return true;
}

void RequestHandle::push(Event e) {
  {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

Scheduler::Scheduler(model::Context& context, const tok::Tokenizer& tokenizer,
                     const SchedulerParams& params)
    : ctx_(context),
      tokenizer_(tokenizer),
      params_{std::max(params.max_queue, 0), std::max(params.prefill_chunk, 1)},
      n_ctx_(int64_t(context.n_ctx())),
      slots_(size_t(context.n_seq())) {
  for (int32_t s = 0; s < context.n_seq(); ++s) context.kv_truncate(s, 0);
  stats_.slots = int32_t(slots_.size());
  stats_.kv_capacity = n_ctx_ * int64_t(slots_.size());
}

SubmitResult Scheduler::submit(Request request) {
  SubmitResult r;
  if (request.prompt.empty()) {
    r.status = SubmitStatus::Invalid;
    r.message = "the prompt is empty (no tokens to start from)";
    return r;
  }
  if (int64_t(request.prompt.size()) >= n_ctx_) {
    r.status = SubmitStatus::Invalid;
    r.message = "the prompt has " + std::to_string(request.prompt.size()) +
                " tokens but the context holds " + std::to_string(n_ctx_) +
                " (it needs room for at least one generated token)";
    return r;
  }
  for (int32_t t : request.prompt) {
    if (t < 0 || t >= tokenizer_.n_vocab()) {
      r.status = SubmitStatus::Invalid;
      r.message = "token id " + std::to_string(t) + " is out of range [0, " +
                  std::to_string(tokenizer_.n_vocab()) + ")";
      return r;
    }
  }
  if (auto st = sampling::validate(request.limits.sampling); !st) {
    r.status = SubmitStatus::Invalid;
    r.message = st.error().message;
    return r;
  }
  {
    std::lock_guard lock(mu_);
    if (shutdown_) {
      r.status = SubmitStatus::ShuttingDown;
      r.message = "the server is shutting down";
      return r;
    }
    // Requests about to take a free slot do not count against the queue.
    if (int32_t(queue_.size()) >= params_.max_queue + (n_slots() - held_)) {
      r.status = SubmitStatus::QueueFull;
      r.message = "all " + std::to_string(slots_.size()) + " slots are busy and " +
                  std::to_string(queue_.size()) + " requests are waiting; retry later";
      return r;
    }
    r.handle = std::make_shared<RequestHandle>();
    queue_.emplace_back(std::move(request), r.handle);
    stats_.queued = int32_t(queue_.size());
  }
  cv_.notify_all();
  return r;
}

void Scheduler::shutdown() {
  {
    std::lock_guard lock(mu_);
    shutdown_ = true;
  }
  cv_.notify_all();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Scheduler::publish_stats() {
  int32_t active = 0;
  int64_t used = 0;
  for (const Slot& s : slots_) {
    active += s.handle ? 1 : 0;
    used += int64_t(s.cached.size());
  }
  std::lock_guard lock(mu_);
  stats_.active = active;
  stats_.kv_used = used;
  stats_.queued = int32_t(queue_.size());
}

// The free slot whose cache shares the longest prefix with `prompt`; among
// equals, the least recently used (its cache is the least likely to be wanted).
// A slot that would keep less than half of its cache counts as sharing
// nothing: a shared BOS or system prompt should not evict a conversation that
// an empty or older slot could make room for.
int32_t Scheduler::pick_slot(const std::vector<int32_t>& prompt) const {
  int32_t best = -1;
  size_t best_common = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.handle) continue;
    size_t common = 0;
    while (common < s.cached.size() && common < prompt.size() && s.cached[common] == prompt[common])
      ++common;
    if (2 * common < s.cached.size()) common = 0;
    if (best < 0 || common > best_common ||
        (common == best_common && s.last_used < slots_[size_t(best)].last_used)) {
      best = int32_t(i);
      best_common = common;
    }
  }
  return best;
}

void Scheduler::admit() {
  std::lock_guard lock(mu_);
  // Requests cancelled while waiting leave the queue at once, wherever they are.
  std::erase_if(queue_, [](auto& entry) {
    auto& [request, handle] = entry;
    if (!handle->cancelled()) return false;
    Event e;
    e.final = true;
    e.finish = FinishReason::Cancelled;
    e.time = Clock::now();
    e.prompt_tokens = int32_t(request.prompt.size());
    handle->push(std::move(e));
    return true;
  });
  while (!queue_.empty()) {
    auto& [request, handle] = queue_.front();
    const int32_t index = pick_slot(request.prompt);
    if (index < 0) break;
    Slot& s = slots_[size_t(index)];
    // At least the last prompt token is evaluated again: its logits start the generation.
    size_t common = 0;
    while (common < s.cached.size() && common + 1 < request.prompt.size() &&
           s.cached[common] == request.prompt[common])
      ++common;
    ctx_.kv_truncate(index, int32_t(common));
    s.cached.resize(common);
    s.prompt_done = common;
    s.prompt_cached = int32_t(common);
    s.pending = -1;
    s.request = std::move(request);
    s.handle = std::move(handle);
    s.gen = std::make_unique<Generation>(tokenizer_, s.request.limits, s.request.prompt);
    ++held_;
    s.admitted = ++clock_;
    s.last_used = clock_;
    stats_.prompt_reused += common;
    queue_.pop_front();
  }
}

void Scheduler::finish(Slot& s, FinishReason reason, std::string text, std::string error) {
  Event e;
  e.final = true;
  e.finish = reason;
  e.text = std::move(text);
  e.error = std::move(error);
  e.time = Clock::now();
  e.prompt_tokens = int32_t(s.request.prompt.size());
  e.prompt_cached = s.prompt_cached;
  e.gen_tokens = s.gen ? int32_t(s.gen->tokens().size()) : 0;
  s.handle->push(std::move(e));
  s.handle.reset();
  {
    std::lock_guard lock(mu_);
    --held_;
  }
  s.gen.reset();
  s.pending = -1;
  s.last_used = ++clock_;
}

void Scheduler::drop_cancelled() {
  for (Slot& s : slots_) {
    if (s.handle && s.handle->cancelled()) finish(s, FinishReason::Cancelled, s.gen->finish(FinishReason::Cancelled).text);
  }
}

bool Scheduler::build_batch() {
  batch_.clear();
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    s.batch_index = -1;
    s.in_batch = 0;
    if (!s.handle || s.pending < 0) continue;
    s.batch_index = int64_t(batch_.size());
    batch_.add(s.pending, int32_t(s.cached.size()), int32_t(i), true);
    s.in_batch = 1;
  }
  // Prompt chunks, earliest admitted first, within the per-step budget.
  std::vector<size_t> prefilling;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.handle && s.prompt_done < s.request.prompt.size()) prefilling.push_back(i);
  }
  std::sort(prefilling.begin(), prefilling.end(),
            [&](size_t a, size_t b) { return slots_[a].admitted < slots_[b].admitted; });
  size_t budget = size_t(params_.prefill_chunk);
  for (size_t i : prefilling) {
    if (budget == 0) break;
    Slot& s = slots_[i];
    const auto& prompt = s.request.prompt;
    const size_t n = std::min(budget, prompt.size() - s.prompt_done);
    for (size_t k = 0; k < n; ++k) {
      const size_t p = s.prompt_done + k;
      const bool last = p + 1 == prompt.size();
      if (last) s.batch_index = int64_t(batch_.size());
      batch_.add(prompt[p], int32_t(s.cached.size() + k), int32_t(i), last);
    }
    s.in_batch = n;
    budget -= n;
  }
  return batch_.size() > 0;
}

void Scheduler::after_decode() {
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (!s.handle || s.in_batch == 0) continue;
    if (s.pending >= 0) {
      s.cached.push_back(s.pending);
      s.pending = -1;
    } else {
      const auto& prompt = s.request.prompt;
      s.cached.insert(s.cached.end(), prompt.begin() + ptrdiff_t(s.prompt_done),
                      prompt.begin() + ptrdiff_t(s.prompt_done + s.in_batch));
      s.prompt_done += s.in_batch;
      std::lock_guard lock(mu_);
      stats_.prompt_evaluated += s.in_batch;
    }
    if (s.batch_index < 0) continue;  // a prompt chunk that is not the last
    if (s.gen->exhausted()) {
      finish(s, FinishReason::Length, s.gen->finish(FinishReason::Length).text);
      continue;
    }
    auto step = s.gen->step(ctx_.logits(size_t(s.batch_index)), int64_t(s.cached.size()), n_ctx_);
    if (!step) {
      finish(s, FinishReason::Stop, {}, step.error().message);
      continue;
    }
    Event e;
    e.token = step->token;
    e.text = std::move(step->text);
    e.logprobs = std::move(step->logprobs);
    e.time = Clock::now();
    s.handle->push(std::move(e));
    if (step->done) {
      finish(s, step->finish);
    } else {
      s.pending = step->token;
    }
  }
}

// A decode that fails leaves the cache as it was; the requests in the batch
// end with the error (the others go on).
void Scheduler::fail_batch(const std::string& message) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (!s.handle || s.in_batch == 0) continue;
    ctx_.kv_truncate(int32_t(i), int32_t(s.cached.size()));
    finish(s, FinishReason::Stop, {}, "generation failed: " + message);
  }
}

void Scheduler::end_everything() {
  for (Slot& s : slots_) {
    if (s.handle) finish(s, FinishReason::Cancelled, s.gen->finish(FinishReason::Cancelled).text);
  }
  std::lock_guard lock(mu_);
  for (auto& [request, handle] : queue_) {
    Event e;
    e.final = true;
    e.finish = FinishReason::Cancelled;
    e.time = Clock::now();
    e.prompt_tokens = int32_t(request.prompt.size());
    handle->push(std::move(e));
  }
  queue_.clear();
}

void Scheduler::run() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      const bool busy = std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return bool(s.handle); });
      if (!busy) cv_.wait(lock, [&] { return shutdown_ || !queue_.empty(); });
      if (shutdown_) break;
    }
    admit();
    drop_cancelled();
    if (build_batch()) {
      auto st = ctx_.decode(batch_);
      if (st) {
        after_decode();
      } else {
        fail_batch(st.error().message);
      }
      std::lock_guard lock(mu_);
      ++stats_.steps;
    }
    publish_stats();
  }
  end_everything();
  publish_stats();
}

}  // namespace dhi::engine
