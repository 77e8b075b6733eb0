// `dhi plan`: what a model needs on a device and whether, where and how fast it
// runs there, before loading anything (planner/plan.h); `--matrix` prints the
// capability table of the catalog models x quants x free-tier devices.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "planner/plan.h"

namespace dhi::cli {
namespace {

struct PlanOptions {
  std::string model;
  std::string quant = "Q4_K_M";
  uint32_t n_ctx = 0;
  int32_t n_seq = 1;
  int32_t n_ubatch = 512;
  int32_t n_threads = 0;
  int32_t n_gpus = 1;
  std::string kv_type;
  std::string device;
  double vram_gb = -1, ram_gb = -1, bandwidth_gbs = -1;
  std::string calibration_path;
  bool json = false, matrix = false, markdown = false;
};

// The devices of the capability matrix.
constexpr const char* kMatrixDevices[] = {"t4", "p100", "2xt4", "colab-cpu"};

std::string gb(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GB", double(b) / 1e9);
  return buf;
}

nlohmann::json memory_json(const planner::MemoryBreakdown& m) {
  return {{"weights", m.weights}, {"kv_cache", m.kv_cache}, {"compute", m.compute},
          {"overhead", m.overhead}, {"total", m.total()}};
}

std::string kv_name(TensorType t) {
  switch (t) {
    case TensorType::F16: return "f16";
    case TensorType::Q8_0: return "q8_0";
    default: return "f32";
  }
}

Expected<std::optional<planner::Calibration>> load_cal(const PlanOptions& o, std::string& path) {
  path = o.calibration_path.empty() ? planner::default_calibration_path() : o.calibration_path;
  if (path.empty()) return std::optional<planner::Calibration>();
  return planner::load_calibration(path);
}

Expected<planner::DeviceProfile> choose_device(const PlanOptions& o, const planner::Calibration* cal) {
  const bool custom = o.vram_gb >= 0 || o.ram_gb >= 0 || o.bandwidth_gbs >= 0;
  if (custom && !o.device.empty() && o.device != "custom")
    return make_error("--vram/--ram/--bandwidth describe a custom device; drop --device ", o.device);
  if (custom || o.device == "custom") {
    if (o.ram_gb < 0 || o.bandwidth_gbs < 0) return make_error("a custom device needs --ram and --bandwidth (and --vram for a GPU)");
    return planner::custom_device(std::max(0.0, o.vram_gb), o.n_gpus, o.ram_gb, o.bandwidth_gbs, o.n_threads);
  }
  if (o.device.empty() || o.device == "local") {
    planner::LocalOptions lo;
    lo.n_threads = o.n_threads;
    lo.calibration = cal;
    return planner::local_device(lo);
  }
  if (const planner::DeviceProfile* d = planner::find_builtin_device(o.device)) return *d;
  return make_error("unknown device '", o.device, "' (devices: t4, p100, 2xt4, colab-cpu, local, custom)");
}

Expected<planner::ModelDesc> describe(const PlanOptions& o) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(o.model, ec)) {
    DHI_ASSIGN_OR_RETURN(auto file, open_gguf(o.model));
    return planner::describe_gguf(*file, o.model);
  }
  return planner::describe_catalog(o.model, o.quant);
}

planner::CpuSpeed cpu_speed(const std::optional<planner::Calibration>& cal, TensorType t) {
  return cal ? planner::derive_cpu_speed(*cal, t) : planner::default_cpu_speed(t);
}

Expected<planner::PlanRequest> request(const PlanOptions& o) {
  planner::PlanRequest r;
  r.n_ctx = o.n_ctx;
  r.n_seq = o.n_seq;
  r.n_ubatch = o.n_ubatch;
  if (!o.kv_type.empty()) {
    DHI_ASSIGN_OR_RETURN(r.kv_type, parse_kv_type(o.kv_type, /*allow_q8_0=*/true));
  }
  return r;
}

void print_plan(const planner::Plan& p, const planner::DeviceProfile& d, const planner::ModelDesc& m) {
  std::printf("model:    %s (%s, %s, %d layers + output head, %.2f B parameters)\n", p.model.c_str(),
              m.arch.c_str(), p.quant.c_str(), m.n_layer, double(m.n_params) / 1e9);
  std::printf("device:   %s: %s\n", d.name.c_str(), d.description.c_str());
  std::printf("request:  context %u, %d sequence(s), micro-batch %d, KV cache %s\n", p.n_ctx, p.n_seq, p.n_ubatch,
              kv_name(p.kv_type).c_str());
  std::printf("memory:   %s = weights %s + KV cache %s + compute %s + overhead %s\n", gb(p.memory.total()).c_str(),
              gb(p.memory.weights).c_str(), gb(p.memory.kv_cache).c_str(), gb(p.memory.compute).c_str(),
              gb(p.memory.overhead).c_str());
  for (const planner::DevicePart& part : p.parts) {
    std::printf("  %-6s  %3d layers  %s of %s (weights %s, KV %s, compute %s, overhead %s)\n", part.name.c_str(),
                part.layers, gb(part.memory.total()).c_str(), gb(part.capacity).c_str(),
                gb(part.memory.weights).c_str(), gb(part.memory.kv_cache).c_str(), gb(part.memory.compute).c_str(),
                gb(part.memory.overhead).c_str());
  }
  std::printf("verdict:  %s: %s\n", planner::fit_name(p.fit), p.explanation.c_str());
  if (p.fit == planner::Fit::No) {
    std::printf("suggest:  %s\n", p.suggestion.empty() ? "nothing in reach fits (a larger device)" : p.suggestion.c_str());
    return;
  }
  std::printf("speed:    decode %.1f tok/s, prefill %.0f tok/s (%s)\n", p.decode_tps, p.prefill_tps,
              p.speed_source.c_str());
  if (p.cpu_weight_gbs > 0)
    std::printf("          CPU weights stream at %.1f GB/s per decode step, bound by %s\n", p.cpu_weight_gbs,
                p.cpu_kernel_bound ? "the kernels (threads x per-thread rate)" : "memory (bandwidth x fraction)");
}

// `speed`: the CPU speed model's constants the plan used (README, "Capacity planning").
nlohmann::json plan_json(const planner::Plan& p, const planner::DeviceProfile& d, const planner::CpuSpeed& speed) {
  nlohmann::json j;
  j["model"] = p.model;
  j["quant"] = p.quant;
  j["device"] = d.name;
  j["device_description"] = d.description;
  j["fits"] = planner::fit_name(p.fit);
  j["gpu_layers"] = p.gpu_layers;
  j["total_layers"] = p.total_layers;
  j["n_ctx"] = p.n_ctx;
  j["n_ctx_train"] = p.n_ctx_train;
  j["n_seq"] = p.n_seq;
  j["n_ubatch"] = p.n_ubatch;
  j["kv_type"] = kv_name(p.kv_type);
  j["memory_bytes"] = memory_json(p.memory);
  nlohmann::json parts = nlohmann::json::array();
  for (const planner::DevicePart& part : p.parts) {
    parts.push_back({{"name", part.name}, {"layers", part.layers}, {"memory_bytes", memory_json(part.memory)},
                     {"capacity_bytes", part.capacity}});
  }
  j["devices"] = parts;
  j["predicted_decode_tps"] = p.decode_tps;
  j["predicted_prefill_tps"] = p.prefill_tps;
  j["speed_source"] = p.speed_source;
  if (p.cpu_weight_gbs > 0) {
    j["cpu_weight_gbs"] = p.cpu_weight_gbs;
    j["cpu_decode_bound"] = p.cpu_kernel_bound ? "kernels" : "memory";
  }
  j["cpu_speed"] = {{"decode_fraction", speed.decode_fraction},
                    {"decode_gbs_per_thread", speed.decode_gbs_per_thread},
                    {"layer_overhead_s", speed.layer_overhead_s},
                    {"attn_s_per_elem", speed.attn_s_per_elem},
                    {"prefill_fraction", speed.prefill_fraction}};
  j["explanation"] = p.explanation;
  if (p.fit == planner::Fit::No) j["suggestion"] = p.suggestion;
  return j;
}

void print_json(const nlohmann::json& j) {
  const std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::printf("%s\n", s.c_str());
}

// One matrix cell: "gpu 29/29 41 t/s", "offload 12/29 3.1 t/s", "no".
std::string cell(const planner::Plan& p) {
  char buf[64];
  if (p.fit == planner::Fit::No) return "no";
  if (p.fit == planner::Fit::Cpu) {
    std::snprintf(buf, sizeof buf, "cpu %.1f t/s", p.decode_tps);
  } else {
    std::snprintf(buf, sizeof buf, "%s %d/%d %.1f t/s", planner::fit_name(p.fit), p.gpu_layers, p.total_layers,
                  p.decode_tps);
  }
  return buf;
}

Status matrix(const PlanOptions& o) {
  std::string cal_path;
  DHI_ASSIGN_OR_RETURN(std::optional<planner::Calibration> cal, load_cal(o, cal_path));
  DHI_ASSIGN_OR_RETURN(planner::PlanRequest req, request(o));
  if (req.n_ctx == 0) req.n_ctx = 4096;
  req.suggest = false;
  nlohmann::json rows = nlohmann::json::array();
  std::vector<std::vector<std::string>> table;
  for (const model::SynthPreset& preset : model::synth_presets()) {
    for (std::string_view q : planner::catalog_quants()) {
      DHI_ASSIGN_OR_RETURN(planner::ModelDesc m, planner::describe_catalog(preset, q));
      std::vector<std::string> row = {std::string(preset.name), std::string(q), gb(m.weight_bytes())};
      for (const char* dn : kMatrixDevices) {
        const planner::DeviceProfile& d = *planner::find_builtin_device(dn);
        const planner::CpuSpeed speed = cpu_speed(cal, m.dominant_type());
        DHI_ASSIGN_OR_RETURN(planner::Plan p, planner::make_plan(m, d, req, speed));
        row.push_back(cell(p));
        nlohmann::json j = plan_json(p, d, speed);
        j["weight_bytes"] = m.weight_bytes();
        rows.push_back(std::move(j));
      }
      table.push_back(std::move(row));
    }
  }
  if (o.json) {
    print_json({{"n_ctx", req.n_ctx}, {"n_seq", req.n_seq}, {"plans", rows}});
    return {};
  }
  const std::vector<std::string> head = {"model", "quant", "weights", "T4 (Colab)", "P100 (Kaggle)", "2xT4 (Kaggle)",
                                         "Colab CPU"};
  if (o.markdown) {
    std::string line = "|", rule = "|";
    for (const std::string& h : head) {
      line += " " + h + " |";
      rule += " --- |";
    }
    std::printf("%s\n%s\n", line.c_str(), rule.c_str());
    for (const auto& row : table) {
      line = "|";
      for (const std::string& c : row) line += " " + c + " |";
      std::printf("%s\n", line.c_str());
    }
    return {};
  }
  std::vector<size_t> w(head.size());
  for (size_t i = 0; i < head.size(); ++i) w[i] = head[i].size();
  for (const auto& row : table)
    for (size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], row[i].size());
  const auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) line += row[i] + std::string(w[i] - row[i].size() + 2, ' ');
    std::printf("%s\n", line.c_str());
  };
  std::printf("context %u, %d sequence(s); cells: verdict GPU-layers/total decode-speed\n", req.n_ctx, req.n_seq);
  print_row(head);
  for (const auto& row : table) print_row(row);
  return {};
}

Status plan(const PlanOptions& o) {
  if (o.matrix) return matrix(o);
  if (o.model.empty()) return make_error("plan: give a model (a GGUF file or a catalog name) or --matrix");
  std::string cal_path;
  DHI_ASSIGN_OR_RETURN(std::optional<planner::Calibration> cal, load_cal(o, cal_path));
  DHI_ASSIGN_OR_RETURN(planner::ModelDesc m, describe(o));
  DHI_ASSIGN_OR_RETURN(planner::DeviceProfile d, choose_device(o, cal ? &*cal : nullptr));
  DHI_ASSIGN_OR_RETURN(planner::PlanRequest req, request(o));
  const planner::CpuSpeed speed = cpu_speed(cal, m.dominant_type());
  DHI_ASSIGN_OR_RETURN(planner::Plan p, planner::make_plan(m, d, req, speed));
  if (o.json) {
    print_json(plan_json(p, d, speed));
  } else {
    print_plan(p, d, m);
  }
  return {};
}

}  // namespace

void register_plan(CLI::App& app, Action& action) {
  auto o = std::make_shared<PlanOptions>();
  CLI::App* cmd = app.add_subcommand("plan", "Memory, placement and speed of a model on a device, before loading it");
  cmd->add_option("model", o->model, "GGUF file, or a catalog model (dhi synth's presets), e.g. r1-distill-qwen-7b");
  cmd->add_option("-q,--quant", o->quant, "Catalog quant: F16, Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q3_K_M, Q2_K")
      ->capture_default_str();
  cmd->add_option("-c,--ctx", o->n_ctx, "Context length (0: the model's, capped at 4096, shrunk to what fits)")
      ->check(CLI::Range(0u, 1u << 24));
  cmd->add_option("--parallel", o->n_seq, "Sequences sharing the KV cache")->check(CLI::Range(1, 4096));
  cmd->add_option("--batch", o->n_ubatch, "Tokens per forward pass (micro-batch)")->check(CLI::Range(1, 65536));
  cmd->add_option("--kv-type", o->kv_type, "KV cache type: f32, f16, q8_0 (default: f32 on CPU, f16 on GPU)");
  cmd->add_option("--device", o->device, "t4, p100, 2xt4, colab-cpu, local (default), custom");
  cmd->add_option("--vram", o->vram_gb, "Custom device: GB of memory per GPU (0: no GPU)");
  cmd->add_option("--gpus", o->n_gpus, "Custom device: number of GPUs")->check(CLI::Range(1, 64));
  cmd->add_option("--ram", o->ram_gb, "Custom device: GB of host RAM");
  cmd->add_option("--bandwidth", o->bandwidth_gbs, "Custom device: memory bandwidth in GB/s (of the GPU if any)");
  cmd->add_option("-t,--threads", o->n_threads, "CPU threads (0: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_option("--calibration", o->calibration_path, "Calibration file (default: written by dhi bench --calibrate)");
  cmd->add_flag("--json", o->json, "Print one JSON object");
  cmd->add_flag("--matrix", o->matrix, "Capability table: catalog models x quants x t4, p100, 2xt4, colab-cpu");
  cmd->add_flag("--markdown", o->markdown, "With --matrix: a Markdown table");
  cmd->callback([o, &action] { action = [o] { return plan(*o); }; });
}

}  // namespace dhi::cli
