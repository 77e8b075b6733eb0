// Decode attention over an f16 KV cache, as one generated token runs it:
//   attention_decode/<shape>/ctx:<n>/threads:<t>  kernels::cpu::attention for
//       one query token at position n - 1, once per layer, each layer on its
//       own cache (all layers together are larger than L3, so the cache comes
//       from memory as in a real decode step).
// Shapes are the R1-Distill models' attention: query heads, KV heads, head
// size, layers. Counters: KV cache bytes read per second (bytes_per_second)
// and the per-token attention time (the iteration time).
//   kernels_attention_bench --benchmark_format=json [--benchmark_filter=1.5b]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_context.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "kernels/cpu/ops.h"

namespace dhi::bench {
namespace {

struct AttnShape {
  const char* name;
  int32_t n_head, n_head_kv, head_dim, n_layer;
};
constexpr AttnShape kAttnShapes[] = {{"qwen-1.5b", 12, 2, 128, 28}, {"qwen-7b", 28, 4, 128, 28},
                                     {"llama-8b", 32, 8, 128, 32}};
constexpr int64_t kContexts[] = {512, 2048, 8192};

void bm_attention_decode(benchmark::State& state, AttnShape s, int64_t ctx, int n_threads) {
  const int64_t kv_dim = int64_t(s.n_head_kv) * s.head_dim, q_dim = int64_t(s.n_head) * s.head_dim;
  const size_t layer_elems = size_t(ctx * kv_dim);
  // Random keys and values as f16 (N(0, 1): scores of both signs, a softmax
  // that is neither flat nor one-hot).
  std::mt19937_64 rng(1);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> row(static_cast<size_t>(kv_dim));
  // On transparent huge pages where granted, as model::KvCache asks for them.
  const size_t cache_elems = layer_elems * size_t(s.n_layer);
  const std::unique_ptr<uint16_t[]> k(new uint16_t[cache_elems]), v(new uint16_t[cache_elems]);
  for (uint16_t* cache : {k.get(), v.get()}) {
    advise_huge_pages(cache, cache_elems * sizeof(uint16_t));
    for (size_t r = 0; r < cache_elems / size_t(kv_dim); ++r) {
      for (float& x : row) x = d(rng);
      kernels::cpu::f32_to_f16_row(row.data(), cache + r * size_t(kv_dim), kv_dim);
    }
  }
  std::vector<float> q(static_cast<size_t>(q_dim)), out(static_cast<size_t>(q_dim));
  for (float& x : q) x = d(rng);
  const int32_t seq = 0, pos = int32_t(ctx - 1);
  ThreadPool pool(n_threads);
  for (auto _ : state) {
    for (int32_t l = 0; l < s.n_layer; ++l) {
      kernels::cpu::AttentionArgs a;
      a.q = q.data();
      a.out = out.data();
      a.n_tokens = 1;
      a.n_head = s.n_head;
      a.n_head_kv = s.n_head_kv;
      a.head_dim = s.head_dim;
      a.k_cache = k.get() + size_t(l) * layer_elems;
      a.v_cache = v.get() + size_t(l) * layer_elems;
      a.kv_f16 = true;
      a.seq_stride = ctx * kv_dim;
      a.head_stride = ctx * s.head_dim;  // model::KvCache's layout: a head's positions adjacent
      a.pos_stride = s.head_dim;
      a.seq_ids = &seq;
      a.positions = &pos;
      a.scale = 1.0f / std::sqrt(float(s.head_dim));
      kernels::cpu::attention(pool, a);
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(2 * cache_elems * sizeof(uint16_t)));
}

}  // namespace
}  // namespace dhi::bench

int main(int argc, char** argv) {
  using namespace dhi;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!bench::add_context()) return 1;
  const int max_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (const bench::AttnShape& s : bench::kAttnShapes) {
    for (int64_t ctx : bench::kContexts) {
      const std::string name = "attention_decode/" + std::string(s.name) + "/ctx:" + std::to_string(ctx) +
                               "/threads:" + std::to_string(max_threads);
      benchmark::RegisterBenchmark(name.c_str(), bench::bm_attention_decode, s, ctx, max_threads)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
