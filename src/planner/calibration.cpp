// Calibration file reading, writing and the derived CPU speed constants (see
// calibration.h).
#include "planner/calibration.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

namespace dhi::planner {

namespace {

constexpr int kVersion = 1;
// Two runs within 15% of each other's bandwidth ran at one bandwidth (the
// tolerance of `dhi bench`'s steady repetitions).
constexpr double kSameBandwidth = 0.15;
// A run streaming its weights 5% or more below the memory roof was held back
// by the kernels.
constexpr double kUnderRoof = 0.05;

nlohmann::json run_json(const CalibrationRun& r) {
  return {{"model", r.model},           {"weight_type", r.weight_type},   {"n_layer", r.n_layer},
          {"n_threads", r.n_threads},   {"n_prompt", r.n_prompt},         {"decode_bytes", r.decode_bytes},
          {"attn_elems", r.attn_elems}, {"prompt_flops", r.prompt_flops}, {"gen_tps", r.gen_tps},
          {"prompt_tps", r.prompt_tps}, {"bandwidth_gbs", r.bandwidth_gbs},
          {"bandwidth_steady", r.bandwidth_steady}};
}

template <typename T>
Expected<T> field(const nlohmann::json& j, const char* key, const std::string& path) {
  if (!j.contains(key)) return make_error(path, ": calibration entry lacks '", key, "'");
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    return make_error(path, ": calibration field '", key, "' has the wrong type");
  }
}

Expected<CalibrationRun> parse_run(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) return make_error(path, ": a calibration run is not an object");
  CalibrationRun r;
  DHI_ASSIGN_OR_RETURN(r.model, field<std::string>(j, "model", path));
  DHI_ASSIGN_OR_RETURN(r.weight_type, field<std::string>(j, "weight_type", path));
  DHI_ASSIGN_OR_RETURN(r.n_layer, field<int32_t>(j, "n_layer", path));
  DHI_ASSIGN_OR_RETURN(r.n_threads, field<int32_t>(j, "n_threads", path));
  DHI_ASSIGN_OR_RETURN(r.n_prompt, field<int32_t>(j, "n_prompt", path));
  DHI_ASSIGN_OR_RETURN(r.decode_bytes, field<uint64_t>(j, "decode_bytes", path));
  DHI_ASSIGN_OR_RETURN(r.attn_elems, field<double>(j, "attn_elems", path));
  DHI_ASSIGN_OR_RETURN(r.prompt_flops, field<double>(j, "prompt_flops", path));
  DHI_ASSIGN_OR_RETURN(r.gen_tps, field<double>(j, "gen_tps", path));
  DHI_ASSIGN_OR_RETURN(r.prompt_tps, field<double>(j, "prompt_tps", path));
  if (j.contains("bandwidth_gbs")) {
    DHI_ASSIGN_OR_RETURN(r.bandwidth_gbs, field<double>(j, "bandwidth_gbs", path));
    if (!(r.bandwidth_gbs >= 0) || r.bandwidth_gbs > 1e6)
      return make_error(path, ": calibration run for ", r.model, " has an impossible bandwidth");
  }
  if (j.contains("bandwidth_steady")) {
    DHI_ASSIGN_OR_RETURN(r.bandwidth_steady, field<bool>(j, "bandwidth_steady", path));
  }
  if (r.n_layer < 1 || !(r.gen_tps > 0) || !(r.prompt_tps > 0) || !(r.prompt_flops >= 0) || !(r.attn_elems >= 0))
    return make_error(path, ": calibration run for ", r.model, " has impossible values");
  return r;
}

// One model file in one form: a path synthesized again with another weight
// type is another model, so its runs neither replace nor pair with the old ones.
bool same_model(const CalibrationRun& a, const CalibrationRun& b) {
  return a.model == b.model && a.weight_type == b.weight_type && a.decode_bytes == b.decode_bytes &&
         a.n_layer == b.n_layer;
}

}  // namespace

std::string default_calibration_path() {
  if (const char* p = std::getenv("DHI_CALIBRATION"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/dhi/calibration.json";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/dhi/calibration.json";
  return {};
}

Expected<std::optional<Calibration>> load_calibration(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::optional<Calibration>();
  std::stringstream ss;
  ss << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return make_error(path, ": not a JSON object (a dhi calibration file?)");
  DHI_ASSIGN_OR_RETURN(int version, field<int>(j, "version", path));
  if (version != kVersion) return make_error(path, ": calibration version ", version, ", expected ", kVersion);
  Calibration c;
  DHI_ASSIGN_OR_RETURN(c.cpu, field<std::string>(j, "cpu", path));
  DHI_ASSIGN_OR_RETURN(c.bandwidth_gbs, field<double>(j, "bandwidth_gbs", path));
  DHI_ASSIGN_OR_RETURN(c.nominal_gflops, field<double>(j, "nominal_gflops", path));
  if (!(c.bandwidth_gbs > 0) || !(c.nominal_gflops > 0))
    return make_error(path, ": bandwidth_gbs and nominal_gflops must be positive");
  if (!j.contains("runs") || !j["runs"].is_array()) return make_error(path, ": calibration lacks the 'runs' array");
  for (const nlohmann::json& r : j["runs"]) {
    DHI_ASSIGN_OR_RETURN(CalibrationRun run, parse_run(r, path));
    c.runs.push_back(std::move(run));
  }
  return std::optional<Calibration>(std::move(c));
}

Status save_calibration_run(const std::string& path, const std::string& cpu, double bandwidth_gbs,
                            double nominal_gflops, const CalibrationRun& run) {
  if (path.empty()) return make_error("no calibration path: set HOME, XDG_CACHE_HOME or --calibration");
  Calibration c;
  DHI_ASSIGN_OR_RETURN(std::optional<Calibration> old, load_calibration(path));
  if (old) c = std::move(*old);
  c.cpu = cpu;
  c.bandwidth_gbs = bandwidth_gbs;
  c.nominal_gflops = nominal_gflops;
  std::erase_if(c.runs, [&](const CalibrationRun& r) { return same_model(r, run) && r.n_prompt == run.n_prompt; });
  c.runs.push_back(run);
  nlohmann::json runs = nlohmann::json::array();
  for (const CalibrationRun& r : c.runs) runs.push_back(run_json(r));
  const nlohmann::json j = {{"version", kVersion},
                            {"cpu", c.cpu},
                            {"bandwidth_gbs", c.bandwidth_gbs},
                            {"nominal_gflops", c.nominal_gflops},
                            {"runs", runs}};
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  if (ec) return make_error("cannot create ", dir.string(), ": ", ec.message());
  // Written beside and renamed, so a reader never sees half a file.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return make_error("cannot write ", tmp);
    out << j.dump(2) << "\n";
    if (!out) return make_error("cannot write ", tmp);
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) return make_error("cannot rename ", tmp, " to ", path, ": ", ec.message());
  return {};
}

CpuSpeed default_cpu_speed(TensorType t) {
  CpuSpeed s;
  s.source = "default";
  // scripts/plan_check.sh's calibration of 2026-11-26 (README, "Prediction
  // against measurement") on the 2-core AMD EPYC (Zen 4) machine dhi is
  // developed on, with the AVX-512 kernels. Prefill fractions above 1: the
  // integer dot products (VNNI) outrun the nominal rate, which counts f32 FMAs.
  // The attention cost is newer (decode attention reads each KV row once per
  // GQA group since then): the median of three pairs of `dhi bench
  // --calibrate` runs, 14-layer 1.5B-shape Q4_K_M at -p 64 and -p 2048, each
  // pair at one bandwidth level (2.0, 2.1 and 2.9e-11 s; 6.2e-11 before).
  // The two decode roofs: the memory one from the runs at the host's ~36 GB/s
  // level (README, "Measured numbers": 89-90% F16 and Q8_0, 83-91% Q4_K_M),
  // the compute one from the ~64 GB/s level, where two threads streamed about
  // 51 GB/s of F16, 50 of Q8_0 and 45 of Q4_K_M.
  s.layer_overhead_s = 21.5e-6;
  s.attn_s_per_elem = 2.1e-11;
  s.decode_fraction = 0.90;
  switch (t) {
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::F32: s.decode_gbs_per_thread = 25.5; s.prefill_fraction = 1.56; break;
    case TensorType::Q8_0: s.decode_gbs_per_thread = 25; s.prefill_fraction = 2.42; break;
    default: s.decode_gbs_per_thread = 22.5; s.prefill_fraction = 2.36; break;
  }
  return s;
}

double cpu_weight_gbs(const CpuSpeed& speed, double bandwidth_gbs, int32_t n_threads) {
  return std::min(bandwidth_gbs * speed.decode_fraction, double(std::max(1, n_threads)) * speed.decode_gbs_per_thread);
}

double run_weight_gbs(const CalibrationRun& r, const CpuSpeed& fixed) {
  const double t_weights =
      1.0 / r.gen_tps - double(r.n_layer) * fixed.layer_overhead_s - r.attn_elems * fixed.attn_s_per_elem;
  return t_weights > 0 ? double(r.decode_bytes) / (t_weights * 1e9) : 0;
}

double run_prefill_fraction(const CalibrationRun& r, double nominal_gflops) {
  return nominal_gflops > 0 ? r.prompt_flops * r.prompt_tps / (nominal_gflops * 1e9) : 0;
}

double run_bandwidth_gbs(const Calibration& cal, const CalibrationRun& run) {
  return run.bandwidth_gbs > 0 ? run.bandwidth_gbs : cal.bandwidth_gbs;
}

CpuSpeed derive_cpu_speed(const Calibration& cal, TensorType weight_type) {
  CpuSpeed s = default_cpu_speed(weight_type);
  if (cal.runs.empty()) return s;
  std::string from;
  // Per-layer cost: the run with the fewest bytes per layer, minus its
  // attention and the time its bytes take at full bandwidth.
  const CalibrationRun* smallest = &cal.runs.front();
  for (const CalibrationRun& r : cal.runs) {
    const double per_layer = double(r.decode_bytes) / r.n_layer, best = double(smallest->decode_bytes) / smallest->n_layer;
    if (per_layer < best || (per_layer == best && r.attn_elems < smallest->attn_elems)) smallest = &r;
  }
  const auto layer_overhead = [&] {
    const double t_small = 1.0 / smallest->gen_tps -
                           double(smallest->decode_bytes) / (run_bandwidth_gbs(cal, *smallest) * 1e9) -
                           smallest->attn_elems * s.attn_s_per_elem;
    return std::max(0.0, t_small / smallest->n_layer);
  };
  s.layer_overhead_s = layer_overhead();
  // Attention: two runs of one file at one bandwidth differ only in the
  // positions decoded at.
  double best_gap = 0;
  for (const CalibrationRun& a : cal.runs) {
    for (const CalibrationRun& b : cal.runs) {
      const double gap = b.attn_elems - a.attn_elems;
      if (!same_model(a, b) || gap <= best_gap || !a.bandwidth_steady || !b.bandwidth_steady) continue;
      const double bw_a = run_bandwidth_gbs(cal, a), bw_b = run_bandwidth_gbs(cal, b);
      if (std::abs(bw_a - bw_b) > kSameBandwidth * 0.5 * (bw_a + bw_b)) continue;
      const double dt = 1.0 / b.gen_tps - 1.0 / a.gen_tps;
      if (dt <= 0) continue;
      best_gap = gap;
      s.attn_s_per_elem = dt / gap;
      from = "attention from " + a.model + " at two contexts";
    }
  }
  if (best_gap > 0) s.layer_overhead_s = layer_overhead();  // its attention term at the measured cost
  from += std::string(from.empty() ? "" : ", ") + "per-layer cost from " + smallest->model;
  // The decode roofs from every run of the type; the prefill fraction from
  // the latest (runs are kept in measurement order).
  const std::string type_name(tensor_type_name(weight_type));
  struct Streamed {
    double gbs, bandwidth_gbs;
    int32_t threads;
  };
  std::vector<Streamed> streamed;
  const CalibrationRun* latest = nullptr;
  for (const CalibrationRun& r : cal.runs) {
    if (r.weight_type != type_name || &r == smallest) continue;
    latest = &r;
    const double gbs = run_weight_gbs(r, s);
    if (gbs > 0 && r.bandwidth_steady) streamed.push_back({gbs, run_bandwidth_gbs(cal, r), std::max(1, r.n_threads)});
  }
  if (latest) {
    for (const Streamed& r : streamed)
      s.decode_fraction = std::max(s.decode_fraction, std::min(1.0, r.gbs / r.bandwidth_gbs));
    double compute_bound = 0, any = 0;
    for (const Streamed& r : streamed) {
      const double per_thread = r.gbs / r.threads;
      any = std::max(any, per_thread);
      if (r.gbs < (1 - kUnderRoof) * s.decode_fraction * r.bandwidth_gbs)
        compute_bound = std::max(compute_bound, per_thread);
    }
    s.decode_gbs_per_thread = compute_bound > 0 ? compute_bound : std::max(s.decode_gbs_per_thread, any);
    const double pf = run_prefill_fraction(*latest, cal.nominal_gflops);
    if (pf > 0) s.prefill_fraction = pf;
    from += ", " + type_name + " decode from " + std::to_string(streamed.size()) + " steady run(s), prefill from " +
            latest->model;
  }
  s.source = "calibrated (" + from + ")";
  return s;
}

}  // namespace dhi::planner
