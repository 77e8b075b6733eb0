// Calibration file reading, writing and the derived CPU speed constants (see
// calibration.h).
#include "planner/calibration.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace dhi::planner {

namespace {

constexpr int kVersion = 1;

nlohmann::json run_json(const CalibrationRun& r) {
  return {{"model", r.model},           {"weight_type", r.weight_type},   {"n_layer", r.n_layer},
          {"n_threads", r.n_threads},   {"n_prompt", r.n_prompt},         {"decode_bytes", r.decode_bytes},
          {"attn_elems", r.attn_elems}, {"prompt_flops", r.prompt_flops}, {"gen_tps", r.gen_tps},
          {"prompt_tps", r.prompt_tps}};
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
  s.layer_overhead_s = 21.5e-6;
  s.attn_s_per_elem = 2.1e-11;
  switch (t) {
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::F32: s.decode_fraction = 0.79; s.prefill_fraction = 1.56; break;
    case TensorType::Q8_0: s.decode_fraction = 0.89; s.prefill_fraction = 2.42; break;
    default: s.decode_fraction = 0.70; s.prefill_fraction = 2.36; break;
  }
  return s;
}

double run_decode_fraction(const CalibrationRun& r, double bandwidth_gbs, const CpuSpeed& fixed) {
  const double t_token = 1.0 / r.gen_tps - double(r.n_layer) * fixed.layer_overhead_s - r.attn_elems * fixed.attn_s_per_elem;
  if (!(t_token > 0) || !(bandwidth_gbs > 0)) return 0;
  return double(r.decode_bytes) / (bandwidth_gbs * 1e9 * t_token);
}

double run_prefill_fraction(const CalibrationRun& r, double nominal_gflops) {
  return nominal_gflops > 0 ? r.prompt_flops * r.prompt_tps / (nominal_gflops * 1e9) : 0;
}

CpuSpeed derive_cpu_speed(const Calibration& cal, TensorType weight_type) {
  CpuSpeed s = default_cpu_speed(weight_type);
  if (cal.runs.empty()) return s;
  std::string from;
  // Attention: two runs of one file differ only in the positions decoded at.
  double best_gap = 0;
  for (const CalibrationRun& a : cal.runs) {
    for (const CalibrationRun& b : cal.runs) {
      const double gap = b.attn_elems - a.attn_elems;
      if (!same_model(a, b) || gap <= best_gap) continue;
      const double dt = 1.0 / b.gen_tps - 1.0 / a.gen_tps;
      if (dt <= 0) continue;
      best_gap = gap;
      s.attn_s_per_elem = dt / gap;
      from = "attention from " + a.model + " at two contexts";
    }
  }
  // Per-layer cost: the run with the fewest bytes per layer, minus its
  // attention and the time its bytes take at full bandwidth.
  const CalibrationRun* smallest = &cal.runs.front();
  for (const CalibrationRun& r : cal.runs) {
    const double per_layer = double(r.decode_bytes) / r.n_layer, best = double(smallest->decode_bytes) / smallest->n_layer;
    if (per_layer < best || (per_layer == best && r.attn_elems < smallest->attn_elems)) smallest = &r;
  }
  const double t_small = 1.0 / smallest->gen_tps - double(smallest->decode_bytes) / (cal.bandwidth_gbs * 1e9) -
                         smallest->attn_elems * s.attn_s_per_elem;
  s.layer_overhead_s = std::max(0.0, t_small / smallest->n_layer);
  from += std::string(from.empty() ? "" : ", ") + "per-layer cost from " + smallest->model;
  // The latest run of the weight type (runs are kept in measurement order).
  const std::string type_name(tensor_type_name(weight_type));
  for (auto it = cal.runs.rbegin(); it != cal.runs.rend(); ++it) {
    if (it->weight_type != type_name || &*it == smallest) continue;
    const double f = run_decode_fraction(*it, cal.bandwidth_gbs, s);
    if (f > 0 && f <= 1.5) s.decode_fraction = f;
    const double pf = run_prefill_fraction(*it, cal.nominal_gflops);
    if (pf > 0) s.prefill_fraction = pf;
    from += ", " + type_name + " fractions from " + it->model;
    break;
  }
  s.source = "calibrated (" + from + ")";
  return s;
}

}  // namespace dhi::planner
