// Benchmark context and random weights (see bench_context.h).
#include "bench_context.h"

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>

#include "dhi_git_revision.h"
#include "kernels/cpu/dot/isa.h"
#include "quant/quant.h"

namespace dhi::bench {
namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

}  // namespace

bool add_context() {
  auto isa = kernels::cpu::active_isa();
  if (!isa) {
    std::fprintf(stderr, "error: %s\n", isa.error().message.c_str());
    return false;
  }
  benchmark::AddCustomContext("cpu_model", cpu_model());
  benchmark::AddCustomContext("isa", std::string(kernels::cpu::isa_name(*isa)));
  benchmark::AddCustomContext("git_revision", DHI_GIT_REVISION);
  return true;
}

std::vector<uint8_t> random_matrix(TensorType t, int64_t n_rows, int64_t n_cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f / std::sqrt(float(n_cols)));
  std::vector<float> row(static_cast<size_t>(n_cols));
  const uint64_t rb = *row_bytes(t, uint64_t(n_cols));
  std::vector<uint8_t> out(size_t(rb * uint64_t(n_rows)));
  for (int64_t r = 0; r < n_rows; ++r) {
    for (float& x : row) x = d(rng);
    if (t == TensorType::F32) {
      std::memcpy(out.data() + r * rb, row.data(), rb);
    } else {
      quantize_row(t, row.data(), out.data() + r * rb, n_cols);
    }
  }
  return out;
}

}  // namespace dhi::bench
