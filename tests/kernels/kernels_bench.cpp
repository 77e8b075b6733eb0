// Benchmark (not a test): CPU matmul throughput per weight type for a
// 4096x4096 matrix at batch sizes 1 (decode) and 32 (prefill). Prints JSON,
// with the ISA the kernels ran with (DHI_FORCE_ISA picks another).
// Usage: kernels_bench [n_threads]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <random>
#include <thread>
#include <vector>

#include "kernels/cpu/ops.h"
#include "quant/quant.h"

using namespace dhi;

int main(int argc, char** argv) {
  const int n_threads = argc > 1 ? std::atoi(argv[1]) : int(std::thread::hardware_concurrency());
  constexpr int64_t kRows = 4096, kCols = 4096;
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> wf(size_t(kRows * kCols));
  for (float& x : wf) x = d(rng);
  std::vector<float> x(size_t(32 * kCols));
  for (float& v : x) v = d(rng);
  std::vector<float> y(size_t(32 * kRows));
  ThreadPool pool(n_threads);
  std::printf("{\"n_threads\": %d, \"isa\": \"%s\", \"rows\": %lld, \"cols\": %lld, \"results\": [\n",
              pool.n_threads(), std::string(kernels::cpu::matmul_isa_name()).c_str(), (long long)kRows,
              (long long)kCols);
  const TensorType types[] = {TensorType::F32, TensorType::F16, TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_K,
                              TensorType::Q6_K};
  bool first = true;
  for (TensorType t : types) {
    std::vector<uint8_t> bytes;
    if (t == TensorType::F32) {
      bytes.resize(wf.size() * 4);
      std::memcpy(bytes.data(), wf.data(), bytes.size());
    } else {
      bytes = std::move(dhi::quantize(t, wf)).value();
    }
    const kernels::cpu::WeightMatrix w{bytes.data(), t, kCols, kRows, *row_bytes(t, kCols)};
    for (int64_t n_tok : {1, 32}) {
      kernels::cpu::matmul(pool, w, x.data(), n_tok, y.data());  // warm up
      const int reps = n_tok == 1 ? 20 : 4;
      const auto t0 = std::chrono::steady_clock::now();
      for (int r = 0; r < reps; ++r) kernels::cpu::matmul(pool, w, x.data(), n_tok, y.data());
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
      std::printf("%s  {\"type\": \"%s\", \"tokens\": %lld, \"ms\": %.3f, \"gflops\": %.2f, \"weight_gbps\": %.2f}",
                  first ? "" : ",\n", std::string(tensor_type_name(t)).c_str(), (long long)n_tok, s * 1e3,
                  2.0 * kRows * kCols * n_tok / s / 1e9, double(bytes.size()) / s / 1e9);
      first = false;
    }
  }
  std::printf("\n]}\n");
  return 0;
}
