// The calibration file: what `dhi bench --calibrate` measured on this machine,
// so the planner's speed model follows dhi's kernels as they change. It keeps
// the machine's read bandwidth and, per benchmarked model file, the achieved
// decode and prefill speed with the quantities the speed model divides them by.
// From these the planner derives (derive_cpu_speed) the fraction of bandwidth a
// decode step achieves per weight type, the fixed cost per layer and token
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
};

struct Calibration {
  std::string cpu;
  double bandwidth_gbs = 0;   // measured read bandwidth of this machine
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

// The CPU speed model's constants for one weight type.
struct CpuSpeed {
  double decode_fraction = 0;   // of read bandwidth, for the weight and KV bytes
  double layer_overhead_s = 0;  // fixed time per layer per decode step
  double attn_s_per_elem = 0;   // attention time per cached K/V element visited
  double prefill_fraction = 0;  // of nominal FLOP/s
  std::string source;           // "calibrated (...)" or "default"
};

// Defaults when nothing was measured: the figures `scripts/plan_check.sh`
// measured with dhi's kernels of 2026-11 on an AMD EPYC Zen 4 (README,
// "Capacity planning").
CpuSpeed default_cpu_speed(TensorType weight_type);

// The constants for `weight_type` from a calibration: the attention cost from
// the pair of runs of one model file whose attention work differs most (the
// default when there is none), the per-layer cost from the run with the fewest
// bytes per layer (a tiny model's decode time is almost all fixed cost), the
// decode fraction from the latest run of that weight type after subtracting
// both (default_cpu_speed's when none), the prefill fraction likewise.
CpuSpeed derive_cpu_speed(const Calibration& cal, TensorType weight_type);

// The achieved fraction of bandwidth of one run, given the fixed costs.
double run_decode_fraction(const CalibrationRun& run, double bandwidth_gbs, const CpuSpeed& fixed);
double run_prefill_fraction(const CalibrationRun& run, double nominal_gflops);

}  // namespace dhi::planner
