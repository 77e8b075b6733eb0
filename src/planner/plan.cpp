// Placement, speed estimate and suggestions (see plan.h).
#include "planner/plan.h"

#include <algorithm>
#include <cstdio>

namespace dhi::planner {

namespace {

// Fixed cost per layer and decode step on a GPU: ~10 kernel launches of ~1 us.
constexpr double kGpuLayerOverheadS = 10e-6;
// Host-to-GPU copy rate (PCIe 3.0 x16 as on T4/P100 hosts, ~12 GB/s achieved).
// In a prefill a CUDA engine may copy the CPU layers' weights to the GPU once
// per micro-batch and multiply there instead of on the CPU.
constexpr double kPcieGbs = 12;

std::string gb(uint64_t bytes) {
  char buf[32];
  if (bytes < 1'000'000'000) {
    std::snprintf(buf, sizeof buf, "%.1f MB", double(bytes) / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f GB", double(bytes) / 1e9);
  }
  return buf;
}

// Layer i < n_layer is decoder layer i; layer n_layer is the output head.
struct LayerCost {
  uint64_t weight_bytes = 0;  // resident
  uint64_t decode_bytes = 0;  // streamed per decode step
  double flops = 0;           // per prompt token at the average position
  bool decoder = true;
};

std::vector<LayerCost> layer_costs(const ModelDesc& m, uint32_t n_pos) {
  std::vector<LayerCost> v;
  const double attn_flops = 4.0 * double(m.q_dim()) * double(n_pos);
  const double per_layer_macs = double(m.matmul_params() - uint64_t(m.n_embd) * uint64_t(m.n_vocab)) / m.n_layer;
  for (int32_t i = 0; i < m.n_layer; ++i) {
    const uint64_t b = m.layer_bytes[size_t(i)];
    v.push_back({b, b, 2.0 * per_layer_macs + attn_flops, true});
  }
  // The head: output_norm + output (the embedding table when tied).
  const uint64_t head = m.output_bytes + (m.tied_output ? m.token_embd_bytes : 0);
  v.push_back({head, head, 2.0 * double(m.n_embd) * double(m.n_vocab), false});
  return v;
}

struct Setup {
  uint32_t n_ctx;
  TensorType kv_type;
};

// The plan for exactly this context and cache type, without suggestions.
Plan place(const ModelDesc& m, const DeviceProfile& dev, const PlanRequest& req, const Setup& st,
           const CpuSpeed& speed) {
  Plan p;
  p.model = m.name;
  p.quant = m.quant;
  p.device = dev.name;
  p.n_ctx = st.n_ctx;
  p.n_ctx_train = m.n_ctx_train;
  p.n_seq = req.n_seq;
  p.n_ubatch = req.n_ubatch;
  p.kv_type = st.kv_type;
  p.total_layers = m.n_layer + 1;
  const uint32_t n_pos = st.n_ctx / 2;
  const std::vector<LayerCost> costs = layer_costs(m, n_pos);
  const int32_t L = p.total_layers;
  const uint64_t kv_layer = kv_cache_bytes(m, 1, st.n_ctx, req.n_seq, st.kv_type);
  const uint64_t kv_read_layer = kv_read_bytes(m, 1, n_pos, st.kv_type) * uint64_t(req.n_seq);

  ComputeShape cs{st.n_ctx, req.n_seq, req.n_ubatch, dev.cpu_threads, st.kv_type};
  const uint64_t cpu_compute = cpu_compute_bytes(m, cs);
  const uint64_t gpu_compute = gpu_compute_bytes(m, cs);

  // The host part with the first n_cpu layers (embedding table and the rest
  // outside the layers always there).
  const auto cpu_part = [&](int32_t n_cpu) {
    DevicePart part;
    part.name = "cpu";
    part.capacity = dev.ram_bytes;
    part.layers = n_cpu;
    part.memory.weights = m.token_embd_bytes + m.other_bytes;
    for (int32_t i = 0; i < n_cpu; ++i) {
      // A tied head reuses the table already counted.
      part.memory.weights += (i == m.n_layer && m.tied_output) ? m.output_bytes : costs[size_t(i)].weight_bytes;
      if (costs[size_t(i)].decoder) part.memory.kv_cache += kv_layer;
    }
    part.memory.compute = cpu_compute;
    part.memory.overhead = cpu_runtime_overhead(m);
    return part;
  };
  // GPU parts for the last g layers, filled greedily GPU by GPU; empty when
  // they do not fit.
  const auto gpu_parts = [&](int32_t g) {
    std::vector<DevicePart> parts;
    if (g == 0) return parts;
    const uint64_t cap = dev.gpu.memory_bytes;
    DevicePart cur;
    const auto need = [&](const MemoryBreakdown& mb) {
      const uint64_t alloc = mb.weights + mb.kv_cache + gpu_compute;
      return alloc + gpu_runtime_overhead(alloc);
    };
    for (int32_t i = L - g; i < L; ++i) {
      MemoryBreakdown next = cur.memory;
      next.weights += costs[size_t(i)].weight_bytes;
      if (costs[size_t(i)].decoder) next.kv_cache += kv_layer;
      if (need(next) > cap) {
        if (cur.layers == 0 || int32_t(parts.size()) + 1 >= dev.n_gpus) return std::vector<DevicePart>{};
        parts.push_back(cur);
        cur = DevicePart{};
        next = MemoryBreakdown{};
        next.weights = costs[size_t(i)].weight_bytes;
        if (costs[size_t(i)].decoder) next.kv_cache = kv_layer;
        if (need(next) > cap) return std::vector<DevicePart>{};
      }
      cur.memory = next;
      ++cur.layers;
    }
    parts.push_back(cur);
    for (size_t k = 0; k < parts.size(); ++k) {
      DevicePart& d = parts[k];
      d.name = "gpu" + std::to_string(k);
      d.capacity = cap;
      d.memory.compute = gpu_compute;
      d.memory.overhead = gpu_runtime_overhead(d.memory.weights + d.memory.kv_cache + gpu_compute);
    }
    return parts;
  };

  int32_t g = dev.n_gpus > 0 ? L : 0;
  std::vector<DevicePart> gpus;
  DevicePart host;
  bool fits = false;
  for (; g >= 0; --g) {
    gpus = gpu_parts(g);
    if (g > 0 && gpus.empty()) continue;
    host = cpu_part(L - g);
    if (host.memory.total() <= host.capacity) {
      fits = true;
      break;
    }
  }
  if (!fits) {
    // Report the CPU-only footprint (or the all-GPU one) that failed.
    g = 0;
    gpus.clear();
    host = cpu_part(L);
  }
  p.gpu_layers = g;
  p.parts = gpus;
  p.parts.push_back(host);
  for (const DevicePart& d : p.parts) p.memory += d.memory;

  if (!fits) {
    p.fit = Fit::No;
    p.explanation = "needs " + gb(host.memory.total()) + " of host RAM (weights " + gb(host.memory.weights) +
                    ", KV cache " + gb(host.memory.kv_cache) + ", compute " + gb(host.memory.compute) +
                    ", overhead " + gb(host.memory.overhead) + "), " + dev.name + " has " + gb(host.capacity);
    if (dev.n_gpus > 0) {
      p.explanation += "; " + std::to_string(dev.n_gpus) + "x " + gb(dev.gpu.memory_bytes) +
                       " of GPU memory cannot take enough layers to make up the difference";
    }
    return p;
  }
  if (g == 0) {
    p.fit = Fit::Cpu;
  } else if (g < L) {
    p.fit = Fit::Offload;
  } else {
    p.fit = gpus.size() > 1 ? Fit::Split : Fit::Gpu;
  }

  // Speed: devices in sequence, each streaming its layers.
  double t_decode = 0, t_prefill = 0;
  int32_t first_gpu_layer = L - g;
  double cpu_bytes = double(m.other_bytes), cpu_flops = 0;
  int32_t cpu_decoder_layers = 0;
  for (int32_t i = 0; i < first_gpu_layer; ++i) {
    cpu_bytes += double(costs[size_t(i)].decode_bytes);
    cpu_flops += costs[size_t(i)].flops;
    if (costs[size_t(i)].decoder) ++cpu_decoder_layers;
  }
  if (first_gpu_layer > 0) {
    // The CPU's attention is measured as a whole (its KV reads included).
    p.cpu_weight_gbs = cpu_weight_gbs(speed, dev.cpu_bandwidth_gbs, dev.cpu_threads);
    p.cpu_kernel_bound = p.cpu_weight_gbs < dev.cpu_bandwidth_gbs * speed.decode_fraction;
    t_decode += cpu_bytes / (p.cpu_weight_gbs * 1e9) +
                cpu_decoder_layers * speed.layer_overhead_s +
                attention_elements(m, cpu_decoder_layers, n_pos) * double(req.n_seq) * speed.attn_s_per_elem;
    double t_cpu = cpu_flops / (dev.cpu_nominal_gflops * 1e9 * speed.prefill_fraction);
    if (g > 0) {
      double cpu_weight_bytes = 0;
      for (int32_t i = 0; i < first_gpu_layer; ++i) cpu_weight_bytes += double(costs[size_t(i)].weight_bytes);
      const double t_streamed = cpu_weight_bytes / (kPcieGbs * 1e9 * req.n_ubatch) +
                                cpu_flops / (dev.gpu.fp16_tflops * 1e12 * dev.gpu.prefill_fraction);
      t_cpu = std::min(t_cpu, t_streamed);
    }
    t_prefill += t_cpu;
  }
  int32_t layer = first_gpu_layer;
  for (const DevicePart& d : gpus) {
    double bytes = 0, flops = 0;
    for (int32_t k = 0; k < d.layers; ++k, ++layer) {
      bytes += double(costs[size_t(layer)].decode_bytes) + (costs[size_t(layer)].decoder ? kv_read_layer : 0);
      flops += costs[size_t(layer)].flops;
    }
    t_decode += bytes / (dev.gpu.bandwidth_gbs * 1e9 * dev.gpu.decode_fraction) + d.layers * kGpuLayerOverheadS;
    t_prefill += flops / (dev.gpu.fp16_tflops * 1e12 * dev.gpu.prefill_fraction);
  }
  p.decode_tps = t_decode > 0 ? 1.0 / t_decode : 0;
  p.prefill_tps = t_prefill > 0 ? 1.0 / t_prefill : 0;
  p.speed_source = (first_gpu_layer > 0 ? "CPU: " + speed.source : std::string()) +
                   (g > 0 ? std::string(first_gpu_layer > 0 ? "; " : "") + "GPU: assumed fractions (no GPU backend to calibrate)"
                          : std::string());
  if (p.fit == Fit::Cpu) {
    p.explanation = "all " + std::to_string(L) + " layers on the CPU: " + gb(host.memory.total()) + " of " +
                    gb(host.capacity) + " host RAM";
  } else {
    p.explanation = std::to_string(g) + " of " + std::to_string(L) + " layers on " +
                    std::to_string(gpus.size()) + " GPU(s)";
    for (const DevicePart& d : gpus) p.explanation += ", " + d.name + " " + gb(d.memory.total()) + " of " + gb(d.capacity);
    p.explanation += ", host " + gb(host.memory.total()) + " of " + gb(host.capacity);
  }
  return p;
}

bool fits(const Plan& p) { return p.fit != Fit::No; }

// The largest context (a multiple of 256, at least 256) in [256, hi] that fits.
std::optional<Plan> largest_fitting_ctx(const ModelDesc& m, const DeviceProfile& dev, const PlanRequest& req,
                                        TensorType kv, uint32_t hi, const CpuSpeed& speed) {
  uint32_t lo_units = 1, hi_units = hi / 256;
  if (hi_units < 1) return std::nullopt;
  Plan best = place(m, dev, req, {256, kv}, speed);
  if (!fits(best)) return std::nullopt;
  while (lo_units < hi_units) {
    const uint32_t mid = (lo_units + hi_units + 1) / 2;
    Plan p = place(m, dev, req, {mid * 256, kv}, speed);
    if (fits(p)) {
      lo_units = mid;
      best = std::move(p);
    } else {
      hi_units = mid - 1;
    }
  }
  return best;
}

std::string suggest(const ModelDesc& m, const DeviceProfile& dev, const PlanRequest& req, const Setup& st,
                    const CpuSpeed& speed) {
  const auto verdict = [](const Plan& p) {
    std::string s = fit_name(p.fit);
    if (p.fit == Fit::Offload) s += " with " + std::to_string(p.gpu_layers) + " of " + std::to_string(p.total_layers) + " layers on the GPU";
    return s;
  };
  // 1. A smaller KV cache type (the CPU engine has F16; a GPU engine Q8_0).
  const TensorType smaller_kv = dev.n_gpus > 0 ? TensorType::Q8_0 : TensorType::F16;
  const auto kv_bytes = [&](TensorType t) { return kv_cache_bytes(m, 1, 1, 1, t); };
  if (kv_bytes(smaller_kv) < kv_bytes(st.kv_type)) {
    Plan p = place(m, dev, req, {st.n_ctx, smaller_kv}, speed);
    if (fits(p)) {
      return std::string("use a ") + (smaller_kv == TensorType::F16 ? "f16" : "q8_0") + " KV cache (--kv-type " +
             (smaller_kv == TensorType::F16 ? "f16" : "q8_0") + "): fits (" + verdict(p) + ")";
    }
  }
  // 2. A shorter context.
  if (st.n_ctx > 256) {
    if (auto p = largest_fitting_ctx(m, dev, req, st.kv_type, st.n_ctx - 1, speed)) {
      return "use a context of " + std::to_string(p->n_ctx) + " (--ctx " + std::to_string(p->n_ctx) + "): fits (" +
             verdict(*p) + ")";
    }
  }
  // 3. A lower quantization of the same model (catalog shapes).
  if (const model::SynthPreset* preset = model::find_synth_preset(m.name)) {
    for (std::string_view q : catalog_quants()) {
      auto lower = describe_catalog(*preset, q);
      if (!lower || lower->weight_bytes() >= m.weight_bytes()) continue;
      Plan p = place(*lower, dev, req, st, speed);
      if (fits(p)) return "use " + std::string(q) + " weights: fits (" + verdict(p) + ")";
    }
  }
  // 4. Another device.
  if (!req.suggest_devices) return {};
  for (const DeviceProfile& other : builtin_devices()) {
    if (other.name == dev.name) continue;
    Plan p = place(m, other, req, st, speed);
    if (fits(p)) return "use the " + other.name + " device: fits (" + verdict(p) + ")";
  }
  return {};
}

}  // namespace

const char* fit_name(Fit f) {
  switch (f) {
    case Fit::Gpu: return "gpu";
    case Fit::Offload: return "offload";
    case Fit::Cpu: return "cpu";
    case Fit::Split: return "split";
    case Fit::No: return "no";
  }
  return "no";
}

Expected<Plan> make_plan(const ModelDesc& m, const DeviceProfile& dev, const PlanRequest& req, const CpuSpeed& speed) {
  if (m.n_layer < 1 || int32_t(m.layer_bytes.size()) != m.n_layer) return make_error("model has no layers");
  if (req.n_seq < 1 || req.n_seq > 4096) return make_error("--parallel must be in [1, 4096], got ", req.n_seq);
  if (req.n_ubatch < 1 || req.n_ubatch > 65536) return make_error("--batch must be in [1, 65536], got ", req.n_ubatch);
  const TensorType kv = req.kv_type ? *req.kv_type : (dev.n_gpus > 0 ? TensorType::F16 : TensorType::F32);
  if (kv != TensorType::F32 && kv != TensorType::F16 && kv != TensorType::Q8_0)
    return make_error("KV cache type must be f32, f16 or q8_0, got ", tensor_type_name(kv));
  if (m.n_ctx_train > 0 && req.n_ctx > m.n_ctx_train) {
    return make_error("context ", req.n_ctx, " is beyond ", m.name, "'s training context of ", m.n_ctx_train);
  }
  if (req.n_ctx > (1u << 24)) return make_error("context ", req.n_ctx, " is too large (max ", 1u << 24, ")");
  if (req.n_ctx > 0) {
    Plan p = place(m, dev, req, {req.n_ctx, kv}, speed);
    if (!fits(p) && req.suggest) p.suggestion = suggest(m, dev, req, {req.n_ctx, kv}, speed);
    return p;
  }
  // Automatic context: the training context capped, or the largest that fits.
  const uint32_t cap = m.n_ctx_train > 0 ? std::min(m.n_ctx_train, kDefaultCtxCap) : kDefaultCtxCap;
  Plan p = place(m, dev, req, {cap, kv}, speed);
  if (fits(p)) return p;
  if (auto smaller = largest_fitting_ctx(m, dev, req, kv, cap, speed)) return *smaller;
  if (req.suggest) p.suggestion = suggest(m, dev, req, {cap, kv}, speed);
  return p;
}

}  // namespace dhi::planner
