// Matrix-product benchmarks per weight type, on the shapes of
// DeepSeek-R1-Distill-Qwen-1.5B's feed-forward matrices:
//   matmul/<type>/<shape>/tokens:<n>/threads:<t>  the CPU matmul (ops.h), as the
//       forward pass calls it: n = 1 is a decode step, n = 64 a prefill tile;
//   dot_gemm/<type>/<shape>/tokens:<n>            the ISA's dot kernel (dot.h) on
//       one thread over the whole matrix, activations quantized beforehand;
//   dot_gemm_slabs/<type>/<shape>/tokens:<n>      the same, timed per slab of
//       256 rows as the best of 7 runs, summed: a whole-matrix run takes tens
//       of milliseconds and on a shared machine is nearly always interrupted,
//       a ~1 ms slab usually is not, so this figure is the stable one there;
//   .../interleaved/...                           the same on the row-interleaved
//       layout, for the types the model loader interleaves on this ISA;
//   decode_dram/<type>/<shape>/threads:<t>        matmul of one token, each
//       iteration on the next of enough copies of the matrix (>= 512 MB) that
//       the weights come from memory, as in a real decode step, not from L3.
//   decode_l2/<type>/<shape>                      the interleaved decode kernel
//       (one token, one thread) over the first kL2Groups groups of the matrix
//       again and again: the weights stay in L2, so this is the kernel's
//       compute rate, the other term of a decode step beside memory.
// Counters: weight bytes read per second (bytes_per_second; the decode roofline
// is the machine's read bandwidth) and FLOP/s (2 per weight per token).
//   kernels_matmul_bench --benchmark_format=json [--benchmark_filter=Q4_K]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_context.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "kernels/cpu/dot/dot.h"
#include "kernels/cpu/dot/interleave.h"
#include "kernels/cpu/dot/isa.h"
#include "kernels/cpu/ops.h"

namespace dhi::bench {
namespace {

struct Shape {
  const char* name;
  int64_t n_cols, n_rows;
};
constexpr Shape kShapes[] = {{"ffn_up_1536x8960", 1536, 8960}, {"ffn_down_8960x1536", 8960, 1536}};
constexpr TensorType kTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,
                                 TensorType::Q4_0, TensorType::Q2_K, TensorType::Q3_K, TensorType::Q4_K,
                                 TensorType::Q5_K, TensorType::Q6_K};
constexpr uint64_t kDramBytes = uint64_t(512) << 20;
constexpr int64_t kTokens[] = {1, 64};

std::vector<float> random_activations(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = d(rng);
  return x;
}

// Bytes of one activation row in the kernel's format (f32 rows when it has no quantizer).
uint64_t act_row_bytes(const kernels::cpu::DotKernel& k, int64_t n) {
  return k.quantize_act ? kernels::cpu::act_row_bytes(k.act_type, n) : uint64_t(n) * sizeof(float);
}

// n_tok random activation rows of n floats, in the kernel's activation format.
std::vector<uint8_t> kernel_activations(const kernels::cpu::DotKernel& k, int64_t n, int64_t n_tok) {
  const std::vector<float> x = random_activations(n * n_tok, 2);
  const uint64_t row = act_row_bytes(k, n);
  std::vector<uint8_t> act(size_t(row * uint64_t(n_tok)));
  for (int64_t i = 0; i < n_tok; ++i) {
    if (k.quantize_act) {
      k.quantize_act(x.data() + i * n, act.data() + i * row, n);
    } else {
      std::memcpy(act.data() + i * row, x.data() + i * n, row);
    }
  }
  return act;
}

void set_counters(benchmark::State& state, uint64_t weight_bytes, const Shape& s, int64_t n_tok) {
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(weight_bytes));
  state.counters["flops"] = benchmark::Counter(double(2 * s.n_cols * s.n_rows * n_tok) * double(state.iterations()),
                                               benchmark::Counter::kIsRate);
}

// The matrix in the layout a benchmark runs on: the file's rows, or interleaved
// as the model loader does where the ISA's decode kernel reads that layout.
std::vector<uint8_t> laid_out(std::vector<uint8_t> w, TensorType t, Shape s, kernels::cpu::WeightLayout layout) {
  if (layout == kernels::cpu::WeightLayout::Rows) return w;
  std::vector<uint8_t> il(w.size());
  const kernels::cpu::WeightMatrix wm{w.data(), t, s.n_cols, s.n_rows, *row_bytes(t, uint64_t(s.n_cols))};
  kernels::cpu::interleave_weights(wm, 0, s.n_rows, il.data());
  return il;
}

void bm_matmul(benchmark::State& state, TensorType t, Shape s, int64_t n_tok, int n_threads,
               kernels::cpu::WeightLayout layout) {
  const std::vector<uint8_t> laid = laid_out(random_matrix(t, s.n_rows, s.n_cols, 1), t, s, layout);
  // The interleaved matrix on huge pages where the system grants them, as the
  // model loader places it (the advice must come before the first write).
  const std::unique_ptr<uint8_t[]> w(new uint8_t[laid.size()]);
  if (layout == kernels::cpu::WeightLayout::Interleaved) advise_huge_pages(w.get(), laid.size());
  std::memcpy(w.get(), laid.data(), laid.size());
  const std::vector<float> x = random_activations(s.n_cols * n_tok, 2);
  std::vector<float> y(static_cast<size_t>(s.n_rows * n_tok));
  ThreadPool pool(n_threads);
  const kernels::cpu::WeightMatrix wm{w.get(), t, s.n_cols, s.n_rows, *row_bytes(t, uint64_t(s.n_cols)), layout};
  for (auto _ : state) {
    kernels::cpu::matmul(pool, wm, x.data(), n_tok, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, laid.size(), s, n_tok);
}

void bm_decode_dram(benchmark::State& state, TensorType t, Shape s, int n_threads, kernels::cpu::WeightLayout layout) {
  const std::vector<uint8_t> first = laid_out(random_matrix(t, s.n_rows, s.n_cols, 1), t, s, layout);
  const size_t n_copies = size_t(std::max<uint64_t>(1, kDramBytes / first.size()));
  // Copies of one matrix: the bytes, not their values, are what is measured.
  // The interleaved ones on huge pages where the system grants them, as the
  // model loader asks for (the advice must come before the first write).
  std::vector<std::unique_ptr<uint8_t[]>> copies;
  for (size_t c = 0; c < n_copies; ++c) {
    copies.emplace_back(new uint8_t[first.size()]);
    if (layout == kernels::cpu::WeightLayout::Interleaved) advise_huge_pages(copies.back().get(), first.size());
    std::memcpy(copies.back().get(), first.data(), first.size());
  }
  const std::vector<float> x = random_activations(s.n_cols, 2);
  std::vector<float> y(static_cast<size_t>(s.n_rows));
  ThreadPool pool(n_threads);
  const uint64_t rb = *row_bytes(t, uint64_t(s.n_cols));
  size_t i = 0;
  for (auto _ : state) {
    const kernels::cpu::WeightMatrix wm{copies[i++ % n_copies].get(), t, s.n_cols, s.n_rows, rb, layout};
    kernels::cpu::matmul(pool, wm, x.data(), 1, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, first.size(), s, 1);
}

void bm_decode_l2(benchmark::State& state, const kernels::cpu::DotKernel* k, TensorType t, Shape s) {
  // 8 groups of 16 rows: 110 KB (Q4_K) to 161 KB (Q6_K) of 1536 columns, in a
  // 1 MB L2 with room for the activations.
  constexpr int64_t kL2Groups = 8;
  const int64_t rows = kL2Groups * kernels::cpu::kInterleaveRows;
  const Shape sub{s.name, s.n_cols, rows};
  const std::vector<uint8_t> w =
      laid_out(random_matrix(t, rows, s.n_cols, 1), t, sub, kernels::cpu::WeightLayout::Interleaved);
  const std::vector<uint8_t> act = kernel_activations(*k, s.n_cols, 1);
  std::vector<float> y(static_cast<size_t>(rows));
  for (auto _ : state) {
    k->gemm_interleaved(s.n_cols, w.data(), kL2Groups, act.data(), act.size(), 1, y.data(), size_t(rows));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, w.size(), sub, 1);
}

void bm_dot_gemm(benchmark::State& state, const kernels::cpu::DotKernel* k, TensorType t, Shape s, int64_t n_tok) {
  const std::vector<uint8_t> w = random_matrix(t, s.n_rows, s.n_cols, 1);
  const uint64_t act_bytes = act_row_bytes(*k, s.n_cols);
  const std::vector<uint8_t> act = kernel_activations(*k, s.n_cols, n_tok);
  std::vector<float> y(static_cast<size_t>(s.n_rows * n_tok));
  const size_t w_stride = *row_bytes(t, uint64_t(s.n_cols));
  for (auto _ : state) {
    k->gemm(s.n_cols, w.data(), w_stride, s.n_rows, act.data(), act_bytes, n_tok, y.data(), size_t(s.n_rows));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, w.size(), s, n_tok);
}

void bm_dot_gemm_slabs(benchmark::State& state, const kernels::cpu::DotKernel* k, TensorType t, Shape s,
                       int64_t n_tok) {
  constexpr int64_t kSlab = 256;
  constexpr int kRuns = 7;
  const std::vector<uint8_t> w = random_matrix(t, s.n_rows, s.n_cols, 1);
  const uint64_t act_bytes = act_row_bytes(*k, s.n_cols);
  const std::vector<uint8_t> act = kernel_activations(*k, s.n_cols, n_tok);
  std::vector<float> y(static_cast<size_t>(s.n_rows * n_tok));
  const size_t w_stride = *row_bytes(t, uint64_t(s.n_cols));
  for (auto _ : state) {
    double total = 0;
    for (int64_t r0 = 0; r0 < s.n_rows; r0 += kSlab) {
      const int64_t rows = std::min(kSlab, s.n_rows - r0);
      double best = 1e30;
      for (int run = 0; run < kRuns; ++run) {
        const auto t0 = std::chrono::steady_clock::now();
        k->gemm(s.n_cols, w.data() + size_t(r0) * w_stride, w_stride, rows, act.data(), act_bytes, n_tok,
                y.data() + r0, size_t(s.n_rows));
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      total += best;
    }
    benchmark::DoNotOptimize(y.data());
    state.SetIterationTime(total);
  }
  set_counters(state, w.size(), s, n_tok);
}

}  // namespace
}  // namespace dhi::bench

int main(int argc, char** argv) {
  using namespace dhi;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!bench::add_context()) return 1;
  const kernels::cpu::Isa isa = *kernels::cpu::active_isa();
  const int max_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  using kernels::cpu::WeightLayout;
  for (TensorType t : bench::kTypes) {
    // The file's layout, and the interleaved one where the model loader uses it.
    std::vector<std::pair<WeightLayout, std::string>> layouts = {{WeightLayout::Rows, "/"}};
    if (kernels::cpu::interleaved_layout_pays(t)) layouts.emplace_back(WeightLayout::Interleaved, "/interleaved/");
    const std::string tn(tensor_type_name(t));
    for (const bench::Shape& s : bench::kShapes) {
      for (int64_t n_tok : bench::kTokens) {
        for (const auto& [layout, tag] : layouts) {
          // One thread, then all cores (once when there is only one).
          for (int threads : {1, max_threads}) {
            const std::string name = "matmul/" + tn + "/" + s.name + tag + "tokens:" + std::to_string(n_tok) +
                                     "/threads:" + std::to_string(threads);
            benchmark::RegisterBenchmark(name.c_str(), bench::bm_matmul, t, s, n_tok, threads, layout)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
            if (max_threads == 1) break;
          }
          if (n_tok == 1 && layout == WeightLayout::Interleaved) {
            const std::string name = "decode_l2/" + tn + "/" + s.name;
            benchmark::RegisterBenchmark(name.c_str(), bench::bm_decode_l2, kernels::cpu::dot_kernel(t, isa), t, s)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
          }
          if (n_tok == 1) {
            for (int threads : {1, max_threads}) {
              const std::string name = "decode_dram/" + tn + "/" + s.name + tag + "threads:" + std::to_string(threads);
              benchmark::RegisterBenchmark(name.c_str(), bench::bm_decode_dram, t, s, threads, layout)
                  ->Unit(benchmark::kMicrosecond)
                  ->UseRealTime();
              if (max_threads == 1) break;
            }
          }
        }
        if (const kernels::cpu::DotKernel* k = kernels::cpu::dot_kernel(t, isa); k && k->gemm) {
          const std::string name = "dot_gemm/" + tn + "/" + s.name + "/tokens:" + std::to_string(n_tok);
          benchmark::RegisterBenchmark(name.c_str(), bench::bm_dot_gemm, k, t, s, n_tok)
              ->Unit(benchmark::kMicrosecond)
              ->UseRealTime();
          const std::string slabs = "dot_gemm_slabs/" + tn + "/" + s.name + "/tokens:" + std::to_string(n_tok);
          benchmark::RegisterBenchmark(slabs.c_str(), bench::bm_dot_gemm_slabs, k, t, s, n_tok)
              ->Unit(benchmark::kMicrosecond)
              ->UseManualTime();
        }
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
