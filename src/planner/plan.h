// Placement and speed: where a model runs on a device profile at a context,
// how much memory each device needs, how fast it decodes and prefills, and,
// when it does not fit, the smallest change that makes it fit.
//
// Layers are counted as llama.cpp counts them for -ngl: the decoder layers
// plus the output head (output_norm + output.weight), so a 28-layer model has
// 29; GPU layers are the last ones (the head first), and the token embedding
// table stays on the host (one row per token is gathered there). Each layer's
// KV cache lives with the layer. The verdicts:
//   gpu      every layer on one GPU;
//   split    every layer on GPUs, spread over several;
//   offload  N of M layers on GPUs, the rest on the CPU;
//   cpu      no GPU layer (a CPU device, or no layer fits a GPU);
//   no       does not fit; `suggestion` names the smallest change that does.
//
// Speed: a decode step streams each device's weights at that device's
// bandwidth times its achieved fraction, plus a fixed cost per layer, plus
// attention over the cache at half the context (the average over a generation
// that fills it): on a GPU its KV bytes at the GPU's bandwidth, on the CPU the
// calibrated time per cached element. The devices run one after the other. Prefill: token_flops over each device's
// compute rate times its achieved fraction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "planner/calibration.h"
#include "planner/device.h"
#include "planner/memory.h"
#include "planner/model_desc.h"

namespace dhi::planner {

enum class Fit { Gpu, Offload, Cpu, Split, No };
const char* fit_name(Fit f);

struct PlanRequest {
  uint32_t n_ctx = 0;  // 0: the training context capped at kDefaultCtxCap, shrunk to what fits
  int32_t n_seq = 1;
  int32_t n_ubatch = 512;  // tokens per forward pass (model::Context::kMaxUbatch)
  // nullopt: the engine's default, F32 for dhi's CPU engine (model::ContextParams)
  // and F16 for a GPU engine.
  std::optional<TensorType> kv_type;
  // Look for the smallest change that fits when it does not.
  bool suggest = true;
  // Whether other devices count as a change (not for the engine, which runs
  // on this machine only).
  bool suggest_devices = true;
};

inline constexpr uint32_t kDefaultCtxCap = 4096;  // model::Context::kDefaultMaxCtx

struct DevicePart {
  std::string name;  // "gpu0", "gpu1", "cpu"
  int32_t layers = 0;  // of total_layers placed here
  MemoryBreakdown memory;
  uint64_t capacity = 0;
};

struct Plan {
  std::string model, quant, device;
  Fit fit = Fit::No;
  int32_t gpu_layers = 0, total_layers = 0;
  uint32_t n_ctx = 0, n_ctx_train = 0;
  int32_t n_seq = 1, n_ubatch = 512;
  TensorType kv_type = TensorType::F32;
  MemoryBreakdown memory;  // all devices together
  std::vector<DevicePart> parts;
  double decode_tps = 0, prefill_tps = 0;
  // The CPU's share of a decode step: the GB/s its weights stream at
  // (cpu_weight_gbs) and which roof that is (0 without CPU layers).
  double cpu_weight_gbs = 0;
  bool cpu_kernel_bound = false;  // threads x per-thread rate, not bandwidth x fraction
  std::string speed_source;
  std::string explanation;  // what was placed where, or what does not fit by how much
  std::string suggestion;   // for `no`: the smallest change that fits ("" when none does)
};

// `speed` is the CPU speed model (derive_cpu_speed or default_cpu_speed for
// the model's dominant type). Errors: a context beyond the model's training
// context, or parameters out of range.
Expected<Plan> make_plan(const ModelDesc& m, const DeviceProfile& dev, const PlanRequest& req, const CpuSpeed& speed);

}  // namespace dhi::planner
