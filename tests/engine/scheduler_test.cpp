// The multi-sequence scheduler on real models: batched decoding gives every
// request exactly what it gets alone (and what Session gives), the prompt
// cache picks the slot with the longest prefix, the bounded queue refuses
// with QueueFull, cancellation frees the slot, shutdown ends every request,
// and log-probabilities are a distribution.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "engine/scheduler.h"
#include "engine/session.h"
#include "gguf/reader.h"
#include "model/context.h"
#include "model/model.h"
#include "model/synth.h"
#include "tokenizer/tokenizer.h"

namespace dhi::engine {
namespace {

struct Loaded {
  std::unique_ptr<gguf::GgufFile> file;
  std::unique_ptr<model::Model> model;
  std::unique_ptr<tok::Tokenizer> tokenizer;
};

Loaded load(const std::string& path) {
  Loaded l;
  auto f = gguf::GgufFile::open(path);
  EXPECT_TRUE(f.ok()) << f.error().message;
  if (!f) return l;
  l.file = std::make_unique<gguf::GgufFile>(std::move(f).value());
  auto m = model::Model::load(*l.file);
  EXPECT_TRUE(m.ok()) << m.error().message;
  l.model = std::move(m).value();
  auto t = tok::Tokenizer::from_gguf(*l.file);
  EXPECT_TRUE(t.ok()) << t.error().message;
  l.tokenizer = std::make_unique<tok::Tokenizer>(std::move(t).value());
  return l;
}

Loaded stories() { return load(std::string(DHI_SHARED_DIR) + "/models/stories260K.gguf"); }

// A quantized Qwen2-shaped random model: exercises the quantized dot kernels
// (K-quants need rows of 256) and biases.
Loaded synth_model(TensorType type) {
  model::SynthSpec spec;
  spec.arch = "qwen2";
  spec.n_vocab = 300;
  spec.n_embd = type == TensorType::Q8_0 ? 64 : 256;
  spec.n_ff = 2 * spec.n_embd;
  spec.weight_type = type;
  spec.seed = 7;
  auto w = model::synth_model(spec);
  EXPECT_TRUE(w.ok()) << w.error().message;
  const std::string path = ::testing::TempDir() + "/dhi_sched_" + std::string(tensor_type_name(type)) + "_" +
                           std::to_string(getpid()) + ".gguf";
  EXPECT_TRUE(w->write_file(path).ok());
  Loaded l = load(path);
  std::remove(path.c_str());  // the mapping stays valid
  return l;
}

struct Outcome {
  std::vector<int32_t> tokens;
  std::string text;
  Event final;
  std::vector<Event> events;
};

Outcome collect(const std::shared_ptr<RequestHandle>& h) {
  Outcome o;
  std::vector<Event> events;
  for (;;) {
    events.clear();
    h->wait(events, std::chrono::milliseconds(100));
    for (auto& e : events) {
      if (e.token >= 0) o.tokens.push_back(e.token);
      o.text += e.text;
      o.events.push_back(e);
      if (e.final) {
        o.final = e;
        return o;
      }
    }
  }
}

Request greedy(std::vector<int32_t> prompt, int32_t n) {
  Request r;
  r.prompt = std::move(prompt);
  r.limits.max_tokens = n;
  r.limits.sampling.temperature = 0;
  return r;
}

class Running {
 public:
  Running(const Loaded& l, int32_t n_seq, SchedulerParams params = {}, uint32_t n_ctx = 256) {
    auto c = model::Context::create(*l.model, {.n_ctx = n_ctx, .n_seq = n_seq, .n_threads = 2});
    EXPECT_TRUE(c.ok()) << c.error().message;
    ctx = std::move(c).value();
    sched = std::make_unique<Scheduler>(*ctx, *l.tokenizer, params);
    thread = std::thread([this] { sched->run(); });
  }
  ~Running() {
    sched->shutdown();
    thread.join();
  }
  std::unique_ptr<model::Context> ctx;
  std::unique_ptr<Scheduler> sched;
  std::thread thread;
};

std::vector<std::vector<int32_t>> prompts(const Loaded& l) {
  std::vector<std::vector<int32_t>> out;
  for (const char* text : {"Once upon a time", "The cat sat", "Lily wanted to", "One day, a big dog",
                           "Tom and Sue went to the park", "The sun", "A little bird said", "Mom made a cake"}) {
    out.push_back(l.tokenizer->encode(text, true, false));
  }
  return out;
}

void check_concurrent_equals_alone(const Loaded& l) {
  ASSERT_TRUE(l.model);
  const auto ps = prompts(l);
  // Alone: one request at a time through Session (a single sequence).
  std::vector<std::vector<int32_t>> alone;
  for (const auto& p : ps) {
    auto c = model::Context::create(*l.model, {.n_ctx = 256, .n_seq = 1, .n_threads = 2});
    ASSERT_TRUE(c.ok());
    Session s(**c, *l.tokenizer);
    GenerateParams gp;
    gp.max_tokens = 24;
    gp.sampling.temperature = 0;
    auto r = s.generate(p, gp);
    ASSERT_TRUE(r.ok()) << r.error().message;
    alone.push_back(r->tokens);
  }
  // Together: all eight at once, with a small prefill chunk so prompts are
  // split and mixed with other requests' decode tokens.
  Running run(l, 8, {.max_queue = 16, .prefill_chunk = 5});
  std::vector<std::shared_ptr<RequestHandle>> handles;
  for (const auto& p : ps) {
    auto sub = run.sched->submit(greedy(p, 24));
    ASSERT_EQ(sub.status, SubmitStatus::Accepted) << sub.message;
    handles.push_back(sub.handle);
  }
  for (size_t i = 0; i < ps.size(); ++i) {
    Outcome o = collect(handles[i]);
    EXPECT_TRUE(o.final.error.empty()) << o.final.error;
    EXPECT_EQ(o.tokens, alone[i]) << "request " << i;
  }
  EXPECT_GT(run.sched->stats().steps, 0u);
}

TEST(Scheduler, ConcurrentGreedyEqualsAloneStories) { check_concurrent_equals_alone(stories()); }
TEST(Scheduler, ConcurrentGreedyEqualsAloneQ8) { check_concurrent_equals_alone(synth_model(TensorType::Q8_0)); }

// Greedy equality depends on this: a sequence's logits do not depend on which
// other sequences share its batch (the one-token and the multi-token matmul
// paths give bit-identical results), for the weight types served most.
class BatchedDecode : public ::testing::TestWithParam<TensorType> {};

TEST_P(BatchedDecode, LogitsEqualSingleSequence) {
  Loaded l = synth_model(GetParam());
  ASSERT_TRUE(l.model);
  auto one = model::Context::create(*l.model, {.n_ctx = 32, .n_seq = 1, .n_threads = 2});
  auto many = model::Context::create(*l.model, {.n_ctx = 32, .n_seq = 6, .n_threads = 2});
  ASSERT_TRUE(one.ok() && many.ok());
  model::Batch a, b;
  for (int32_t pos = 0; pos < 6; ++pos) {
    a.clear();
    b.clear();
    a.add(10 + pos, pos, 0, true);
    for (int32_t s = 0; s < 6; ++s) b.add(s == 0 ? 10 + pos : 40 + 7 * s + pos, pos, s, true);
    ASSERT_TRUE((*one)->decode(a).ok());
    ASSERT_TRUE((*many)->decode(b).ok());
    auto x = (*one)->logits(0), y = (*many)->logits(0);
    ASSERT_EQ(x.size(), y.size());
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(x[i], y[i]) << "pos " << pos << " logit " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, BatchedDecode,
                         ::testing::Values(TensorType::Q8_0, TensorType::Q4_K, TensorType::Q6_K, TensorType::F16),
                         [](const auto& info) { return std::string(tensor_type_name(info.param)); });

TEST(Scheduler, PromptCacheReusesTheLongestPrefix) {
  Loaded l = stories();
  ASSERT_TRUE(l.model);
  Running run(l, 2);
  auto first = l.tokenizer->encode("Once upon a time there was a girl", true, false);
  Outcome a = collect(run.sched->submit(greedy(first, 8)).handle);
  EXPECT_EQ(a.final.prompt_cached, 0);
  // An unrelated request takes the other (least recently used) free slot.
  Outcome other = collect(run.sched->submit(greedy(l.tokenizer->encode("The dog", true, false), 4)).handle);
  EXPECT_EQ(other.final.prompt_cached, 0);
  // The next turn: the first prompt, its answer and more text.
  std::vector<int32_t> next = first;
  next.insert(next.end(), a.tokens.begin(), a.tokens.end());
  for (int32_t t : l.tokenizer->encode(" and a cat", false, false)) next.push_back(t);
  Outcome b = collect(run.sched->submit(greedy(next, 4)).handle);
  // Everything evaluated for the first request is reused: its prompt and all
  // generated tokens but the last (never evaluated).
  EXPECT_EQ(b.final.prompt_cached, int32_t(first.size() + a.tokens.size() - 1));
  EXPECT_EQ(b.final.prompt_tokens, int32_t(next.size()));
  EXPECT_GE(run.sched->stats().prompt_reused, uint64_t(b.final.prompt_cached));
}

TEST(Scheduler, FullQueueIsRefused) {
  Loaded l = stories();
  ASSERT_TRUE(l.model);
  Running run(l, 1, {.max_queue = 1, .prefill_chunk = 128});
  auto p = l.tokenizer->encode("Once upon a time", true, false);
  auto busy = run.sched->submit(greedy(p, 200));
  ASSERT_EQ(busy.status, SubmitStatus::Accepted);
  // Wait until it holds the slot, so the next one queues.
  while (run.sched->stats().active == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto queued = run.sched->submit(greedy(p, 4));
  ASSERT_EQ(queued.status, SubmitStatus::Accepted);
  auto refused = run.sched->submit(greedy(p, 4));
  EXPECT_EQ(refused.status, SubmitStatus::QueueFull);
  EXPECT_FALSE(refused.handle);
  busy.handle->cancel();
  EXPECT_EQ(collect(busy.handle).final.finish, FinishReason::Cancelled);
  Outcome q = collect(queued.handle);
  EXPECT_EQ(q.final.finish, FinishReason::Length);
  EXPECT_EQ(q.tokens.size(), 4u);
}

TEST(Scheduler, NoQueueStillFillsFreeSlots) {
  Loaded l = stories();
  ASSERT_TRUE(l.model);
  Running run(l, 2, {.max_queue = 0, .prefill_chunk = 128});
  auto p = l.tokenizer->encode("Once upon a time", true, false);
  auto a = run.sched->submit(greedy(p, 100000)), b = run.sched->submit(greedy(p, 100000));
  EXPECT_EQ(a.status, SubmitStatus::Accepted);
  EXPECT_EQ(b.status, SubmitStatus::Accepted);
  EXPECT_EQ(run.sched->submit(greedy(p, 4)).status, SubmitStatus::QueueFull);
  a.handle->cancel();
  b.handle->cancel();
  collect(a.handle);
  collect(b.handle);
}

TEST(Scheduler, CancelledRequestFreesItsSlot) {
  Loaded l = stories();
  ASSERT_TRUE(l.model);
  Running run(l, 1);
  auto p = l.tokenizer->encode("Once upon a time", true, false);
  auto sub = run.sched->submit(greedy(p, 10000));
  std::vector<Event> got;
  while (got.empty()) sub.handle->wait(got, std::chrono::milliseconds(100));
  sub.handle->cancel();
  Outcome o = collect(sub.handle);
  EXPECT_EQ(o.final.finish, FinishReason::Cancelled);
  // The only slot serves the next request.
  Outcome next = collect(run.sched->submit(greedy(p, 3)).handle);
  EXPECT_EQ(next.tokens.size(), 3u);
  // Stats are published after the step that sent the final event.
  for (int i = 0; i < 500 && run.sched->stats().active != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(run.sched->stats().active, 0);
}

TEST(Scheduler, ShutdownEndsActiveAndQueuedRequests) {
  Loaded l = stories();
  ASSERT_TRUE(l.model);
  auto c = model::Context::create(*l.model, {.n_ctx = 256, .n_seq = 1, .n_threads = 2});
  ASSERT_TRUE(c.ok());
  Scheduler sched(**c, *l.tokenizer, {});
  std::thread t([&] { sched.run(); });
  auto p = l.tokenizer->encode("Once upon a time", true, false);
  auto a = sched.submit(greedy(p, 100000)), b = sched.submit(greedy(p, 5));
  sched.shutdown();
  t.join();
  EXPECT_EQ(collect(a.handle).final.finish, FinishReason::Cancelled);
  EXPECT_EQ(collect(b.handle).final.finish, FinishReason::Cancelled);
  EXPECT_EQ(sched.submit(greedy(p, 5)).status, SubmitStatus::ShuttingDown);
}

TEST(Scheduler, InvalidRequestsAreRefused) {
  Loaded l = stories();
  ASSERT_TRUE(l.model);
  Running run(l, 1, {}, 16);
  EXPECT_EQ(run.sched->submit(greedy({}, 4)).status, SubmitStatus::Invalid);
  EXPECT_EQ(run.sched->submit(greedy(std::vector<int32_t>(16, 1), 4)).status, SubmitStatus::Invalid);
  EXPECT_EQ(run.sched->submit(greedy({1, -5}, 4)).status, SubmitStatus::Invalid);
  Request bad = greedy({1, 2}, 4);
  bad.limits.sampling.top_p = 7;
  EXPECT_EQ(run.sched->submit(bad).status, SubmitStatus::Invalid);
  // A context of 16: the request stops when it is full.
  Outcome o = collect(run.sched->submit(greedy(std::vector<int32_t>(10, 1), 100)).handle);
  EXPECT_EQ(o.final.finish, FinishReason::ContextFull);
  EXPECT_EQ(o.tokens.size(), 7u);
}

TEST(Scheduler, LogprobsAreADistribution) {
  Loaded l = stories();
  ASSERT_TRUE(l.model);
  Running run(l, 1);
  Request r = greedy(l.tokenizer->encode("Once upon a time", true, false), 5);
  r.limits.top_logprobs = 3;
  Outcome o = collect(run.sched->submit(r).handle);
  int n = 0;
  for (const Event& e : o.events) {
    if (e.token < 0) continue;
    ASSERT_TRUE(e.logprobs);
    ASSERT_EQ(e.logprobs->top.size(), 3u);
    // Greedy picks the most likely token; alternatives are sorted, all <= 0.
    EXPECT_EQ(e.logprobs->chosen.token, e.token);
    EXPECT_EQ(e.logprobs->top[0].token, e.token);
    EXPECT_FLOAT_EQ(e.logprobs->top[0].logprob, e.logprobs->chosen.logprob);
    EXPECT_GE(e.logprobs->top[0].logprob, e.logprobs->top[1].logprob);
    EXPECT_LE(e.logprobs->top[0].logprob, 0.0f);
    double mass = 0;
    for (const auto& t : e.logprobs->top) mass += std::exp(double(t.logprob));
    EXPECT_LE(mass, 1.0 + 1e-5);
    ++n;
  }
  EXPECT_EQ(n, 5);
}

}  // namespace
}  // namespace dhi::engine
