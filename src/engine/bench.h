// `dhi bench`: how fast a model file runs on this machine. Each repetition
// loads the model, evaluates a prompt of n_prompt tokens (prefill, the compute-
// bound phase) and then decodes n_gen tokens greedily one at a time (the
// memory-bound phase); medians and min/max over the repetitions are reported,
// with peak RSS, the ISA path, and the fraction of the machine's read bandwidth
// that decoding achieves.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/expected.h"
#include "core/tensor_type.h"
#include "engine/bandwidth.h"
#include "model/model.h"

namespace dhi::engine {

struct BenchParams {
  std::string model_path;
  int32_t n_prompt = 512;  // prompt tokens (pseudo-random ids, fixed seed)
  int32_t n_gen = 128;     // greedy decode steps
  int32_t n_threads = 0;   // 0: all cores
  int32_t n_reps = 3;
  TensorType kv_type = TensorType::F16;  // llama.cpp's default, so the figures compare
  // The read bandwidth the decode fraction is against: given (> 0), or probed
  // (in a child process, measure_read_bandwidth_in_child) before the first
  // repetition and after every one, so that each repetition is compared with
  // the bandwidth of its own minutes. A shared host's bandwidth can move by 2x
  // within minutes. Neither: no fraction.
  double bandwidth_gbs = 0;
  std::optional<BandwidthParams> probe;
};

// A repetition whose two probes differ by more than this (relative to their
// mean) ran while the bandwidth moved; its fraction is not counted when any
// repetition is steady.
inline constexpr double kSteadyBandwidthTolerance = 0.15;

// Median and spread of one quantity over the repetitions.
struct BenchStat {
  double median = 0, min = 0, max = 0;
};
BenchStat bench_stat(std::vector<double> values);

struct BenchRun {
  double load_ms = 0;
  double prompt_ms = 0, prompt_tps = 0;
  double ttft_ms = 0;  // prompt evaluation plus choosing the first token
  double gen_ms = 0, gen_tps = 0;
  // The bandwidth probed just before and just after this repetition (both the
  // given bandwidth when one was given; 0 when neither).
  double bandwidth_before_gbs = 0, bandwidth_after_gbs = 0;
  double bandwidth_gbs() const { return 0.5 * (bandwidth_before_gbs + bandwidth_after_gbs); }
  bool bandwidth_steady() const;
};

// What a decode step reads: every weight tensor except the token embedding
// table, of which only one row per token is gathered (with a tied output the
// table is read in full as the output matrix, and counted once).
uint64_t decode_weight_bytes(const model::ModelWeights& w);

struct BenchResult {
  // Model.
  std::string arch, name;
  uint64_t file_bytes = 0, weight_bytes = 0, n_params = 0;
  uint64_t weight_bytes_per_token = 0;
  std::map<std::string, uint64_t> bytes_by_type;  // tensor type name -> bytes of weights
  int32_t n_layer = 0, n_embd = 0, n_vocab = 0;
  // Run.
  int32_t n_prompt = 0, n_gen = 0, n_threads = 0, n_reps = 0;
  std::string isa;
  std::vector<BenchRun> runs;
  BenchStat load_ms, prompt_tps, gen_tps, ttft_ms;
  uint64_t peak_rss_bytes = 0;  // of the whole process after the runs (getrusage)
  // Bandwidth: every probe in order (none when given); per repetition its
  // fraction (weight bytes per token x gen tok/s / its bandwidth). The stats
  // are over the steady repetitions, or all when none is steady.
  std::vector<BandwidthResult> probes;
  std::vector<double> run_fraction;
  int32_t n_steady = 0;
  BenchStat bandwidth_gbs, bandwidth_fraction;
  int32_t median_fraction_run = 0;  // the repetition whose fraction is the (lower) median
};

// Called after each repetition (for progress lines).
using BenchProgress = std::function<void(int32_t rep, const BenchRun& run)>;

Expected<BenchResult> run_bench(const BenchParams& params, const BenchProgress& progress = {});

// Peak resident set size of this process so far, in bytes.
uint64_t peak_rss_bytes();

// Weight bytes per token times tokens per second over bytes per second.
inline double bandwidth_fraction(uint64_t bytes_per_token, double tokens_per_s, double bandwidth_gbs) {
  return bandwidth_gbs > 0 ? double(bytes_per_token) * tokens_per_s / (bandwidth_gbs * 1e9) : 0.0;
}

}  // namespace dhi::engine
