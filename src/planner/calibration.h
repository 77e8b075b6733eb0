// The calibration file: what `dhi bench --calibrate` measured on this machine,
// so the planner's speed model follows dhi's kernels as they change. It keeps
// the machine's read bandwidth and, per benchmarked model file, the achieved
// decode and prefill speed with the quantities the speed model divides them by
// and the bandwidth the decode ran at. From these the planner derives
// (derive_cpu_speed) per weight type the two roofs a decode step streams its
// weights under (a fraction of bandwidth, a rate per thread), the fixed cost per layer and token
// (thread wake-ups, small ops: what dominates tiny models), the cost of
// attention per cached element (from two runs of one model at different
// positions), and the fraction of nominal compute a prefill achieves.
//
// Location: --calibration PATH, else $DHI_CALIBRATION, else
// $XDG_CACHE_HOME/dhi/calibration.json, else ~/.cache/dhi/calibration.json.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/expected.h"
#include "core/tensor_type.h"

namespace dhi::planner {

struct CalibrationRun {
  std::string model;        // the benchmarked file
  std::string weight_type;  // its dominant matrix type ("Q4_K")
  int32_t n_layer = 0;
  int32_t n_threads = 0;
  int32_t n_prompt = 0;       // the bench's prompt: runs are kept per (model, n_prompt)
                              // (a model: path, weight type, bytes and layers)
  uint64_t decode_bytes = 0;  // weight bytes one decode step streams
  double attn_elems = 0;      // cached K and V elements one decode step's attention visits
  double prompt_flops = 0;    // FLOPs of one prompt token (matmuls + attention at the bench's positions)
  double gen_tps = 0, prompt_tps = 0;
  // The read bandwidth while it decoded (0 in files written before it was
  // kept: the file's bandwidth_gbs stands in), and whether it held still: a
  // run during which it moved (dhi bench found no steady repetition) says
  // nothing about decode and is used for prefill only.
  double bandwidth_gbs = 0;
  bool bandwidth_steady = true;
};

struct Calibration {
  std::string cpu;
  double bandwidth_gbs = 0;   // read bandwidth of this machine at the latest calibration
  double nominal_gflops = 0;  // nominal_cpu_gflops() of this machine when measured
  std::vector<CalibrationRun> runs;  // one per model and prompt length, latest measurement
};

// The default location (see the top of the file); empty when no home is known.
std::string default_calibration_path();

// nullopt when the file does not exist; an error when it exists but is not a
// calibration file.
Expected<std::optional<Calibration>> load_calibration(const std::string& path);
// Replaces the run of the same model and prompt length (or adds it), updates bandwidth and
// machine, writes the file (creating its directory).
Status save_calibration_run(const std::string& path, const std::string& cpu, double bandwidth_gbs,
                            double nominal_gflops, const CalibrationRun& run);

// The CPU speed model's constants for one weight type. A decode step streams
// the weights at the lower of two roofs: a fraction of the read bandwidth
// (memory-bound) and what the kernels can consume per thread (compute-bound).
// On two cores and fast memory the second binds: this development machine's
// K-quant decode reaches 90% of 36 GB/s but only about 70% of 64 GB/s.
struct CpuSpeed {
  double decode_fraction = 0;        // of read bandwidth, when memory-bound
  double decode_gbs_per_thread = 0;  // weight GB/s one thread's kernels consume, when compute-bound
  double layer_overhead_s = 0;       // fixed time per layer per decode step
  double attn_s_per_elem = 0;   // attention time per cached K/V element visited
  double prefill_fraction = 0;  // of nominal FLOP/s
  std::string source;           // "calibrated (...)" or "default"
};

// GB/s of weights a decode step streams: min(bandwidth x fraction, threads x rate).
double cpu_weight_gbs(const CpuSpeed& speed, double bandwidth_gbs, int32_t n_threads);

// Defaults when nothing was measured: the figures `scripts/plan_check.sh`
// measured with dhi's kernels of 2026-11 on an AMD EPYC Zen 4 (README,
// "Capacity planning").
CpuSpeed default_cpu_speed(TensorType weight_type);

// The constants for `weight_type` from a calibration:
// - the per-layer cost from the run with the fewest bytes per layer (a tiny
//   model's decode time is almost all fixed cost, its bytes at full bandwidth);
// - the attention cost from the pair of runs of one model file whose attention
//   work differs most among steady pairs that ran at the same bandwidth
//   (within 15%), so that their weights took the same time (the default when
//   none);
// - from each steady run of that weight type, the rate its weights streamed at (the
//   time left after both) against the bandwidth it ran at: the memory roof's
//   fraction is the best such ratio (never below the default); a run clearly
//   under that roof (by 5%) was compute-bound and gives the per-thread rate
//   (the best of them), else the rate is at least the best seen (and the
//   default's);
// - the prefill fraction from the latest run of that type.
CpuSpeed derive_cpu_speed(const Calibration& cal, TensorType weight_type);

// The bandwidth one run decoded at: its own, else the file's.
double run_bandwidth_gbs(const Calibration& cal, const CalibrationRun& run);

// The GB/s one run's weights streamed at, given the fixed costs (0 when they
// leave no time).
double run_weight_gbs(const CalibrationRun& run, const CpuSpeed& fixed);
double run_prefill_fraction(const CalibrationRun& run, double nominal_gflops);

}  // namespace dhi::planner
