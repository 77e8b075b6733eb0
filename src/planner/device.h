// Device profiles: the memory a real process can allocate and the speed of
// the hardware a model would run on. Built in: the free-tier GPUs the project
// targets (Colab T4, Kaggle P100, Kaggle 2xT4), Colab's free CPU runtime, this
// machine (`local`: RAM and bandwidth measured) and a custom profile from flags.
//
// Usable memory is not the marketing figure. For a GPU it is what the driver
// reports as total (ECC on a T4 takes 1 GiB of its 16: 15,360 MiB; a P100's
// HBM2 carries ECC without a capacity cost: 16,280 MiB) minus the CUDA
// runtime's own use, which memory.h models. For host RAM it is what the OS
// leaves to a process: MemAvailable here; on Colab/Kaggle the total minus the
// notebook runtime (Jupyter kernel, Python, the platform's agents), ~1 GB.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/expected.h"
#include "planner/calibration.h"

namespace dhi::planner {

struct GpuSpec {
  std::string name;            // "Tesla T4"
  uint64_t memory_bytes = 0;   // total as the driver reports it, per GPU
  double bandwidth_gbs = 0;    // memory bandwidth, 1e9 bytes/s
  double fp16_tflops = 0;      // dense FP16 rate (tensor cores where present)
  double decode_fraction = 0;  // of bandwidth a decode step achieves
  double prefill_fraction = 0; // of fp16_tflops a prefill achieves
};

struct DeviceProfile {
  std::string name;         // t4, p100, 2xt4, colab-cpu, local, custom
  std::string description;
  int32_t n_gpus = 0;       // 0: CPU only
  GpuSpec gpu;              // each of the n_gpus
  uint64_t ram_bytes = 0;   // host RAM a process can allocate
  int32_t cpu_threads = 0;
  double cpu_bandwidth_gbs = 0;
  double cpu_nominal_gflops = 0;  // threads x clock x 32 FP32 FLOP/cycle (two 256-bit FMA pipes)
  std::string memory_source, bandwidth_source;
};

// The built-in hardware profiles (not `local`/`custom`).
std::span<const DeviceProfile> builtin_devices();
const DeviceProfile* find_builtin_device(std::string_view name);

// Nominal FP32 rate of `threads` threads at `ghz`.
double nominal_cpu_gflops(int32_t threads, double ghz);

// This machine's clock from /proc/cpuinfo (GHz; 0 when unknown) and model name.
double local_cpu_ghz();
std::string local_cpu_name();
// MemAvailable from /proc/meminfo, or less when a cgroup v2 limit leaves less.
Expected<uint64_t> local_available_ram();

struct LocalOptions {
  int32_t n_threads = 0;     // 0: all cores
  // Bandwidth: the calibration's when there is one, else measured now (a
  // 256 MiB streaming read, ~1 s) unless measure_bandwidth is false, then 0.
  const Calibration* calibration = nullptr;
  bool measure_bandwidth = true;
};
Expected<DeviceProfile> local_device(const LocalOptions& opts);

// A custom profile: n_gpus GPUs of vram_gb each (0: none), ram_gb of host RAM,
// bandwidth_gbs of the GPU (or of the CPU when there is no GPU).
Expected<DeviceProfile> custom_device(double vram_gb, int32_t n_gpus, double ram_gb, double bandwidth_gbs,
                                      int32_t cpu_threads);

}  // namespace dhi::planner
