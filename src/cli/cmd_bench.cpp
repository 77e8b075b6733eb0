// `dhi bench`: model speed on this machine (load time, prompt and generation
// tokens per second, time to first token, peak RSS, ISA path) and the share of
// the machine's memory read bandwidth that generation reaches; `--bandwidth`
// measures that bandwidth alone. `--json` prints one object for scripts (keys
// documented in README.md, "Performance"). `--calibrate` stores the bandwidth
// and the achieved speeds in the planner's calibration file (planner/calibration.h).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/common.h"
#include "dhi_git_revision.h"
#include "engine/bandwidth.h"
#include "engine/bench.h"
#include "planner/plan.h"

namespace dhi::cli {
namespace {

struct BenchOptions {
  engine::BenchParams bench;
  bool json = false;
  bool bandwidth_only = false;
  double bandwidth_gbs = 0;  // > 0: given, not measured
  uint32_t bandwidth_mib = 1024;
  bool offline = false;
  bool calibrate = false;
  std::string calibration_path;
};

std::string cpu_model() { return planner::local_cpu_name(); }

nlohmann::json stat_json(const engine::BenchStat& s) { return {{"median", s.median}, {"min", s.min}, {"max", s.max}}; }

nlohmann::json bandwidth_json(const engine::BandwidthResult& b) {
  return {{"median_gbs", b.median_gbs}, {"min_gbs", b.min_gbs}, {"max_gbs", b.max_gbs},
          {"pass_gbs", b.pass_gbs},     {"threads", b.n_threads}, {"buffer_bytes", b.buffer_bytes}};
}

void print_json(const nlohmann::json& j) {
  const std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::printf("%s\n", s.c_str());
}

engine::BandwidthParams bandwidth_params(const BenchOptions& o) {
  engine::BandwidthParams bp;
  bp.buffer_bytes = uint64_t(o.bandwidth_mib) << 20;
  bp.n_threads = o.bench.n_threads;
  return bp;
}

Status bandwidth_only(const BenchOptions& o) {
  DHI_ASSIGN_OR_RETURN(engine::BandwidthResult b, engine::measure_read_bandwidth(bandwidth_params(o)));
  if (o.json) {
    nlohmann::json j = bandwidth_json(b);
    j["cpu"] = cpu_model();
    j["git_revision"] = DHI_GIT_REVISION;
    print_json(j);
  } else {
    std::printf("read bandwidth: %.1f GB/s median (min %.1f, max %.1f) over %zu passes of %.0f MiB, %d threads\n",
                b.median_gbs, b.min_gbs, b.max_gbs, b.pass_gbs.size(), double(b.buffer_bytes) / (1 << 20),
                b.n_threads);
  }
  return {};
}

// The calibration record of this bench: what the planner's speed model divides
// the measured speeds by, computed from the file's header.
Expected<planner::CalibrationRun> calibration_run(const BenchOptions& o, const engine::BenchResult& r) {
  DHI_ASSIGN_OR_RETURN(auto file, open_gguf(o.bench.model_path));
  DHI_ASSIGN_OR_RETURN(planner::ModelDesc m, planner::describe_gguf(*file, o.bench.model_path));
  planner::CalibrationRun run;
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(o.bench.model_path, ec);
  run.model = ec ? o.bench.model_path : abs.lexically_normal().string();
  run.weight_type = std::string(tensor_type_name(m.dominant_type()));
  run.n_layer = m.n_layer;
  run.n_threads = r.n_threads;
  // Decode steps run at positions n_prompt .. n_prompt + n_gen; the prompt's
  // tokens attend to n_prompt / 2 positions on average.
  const uint32_t gen_pos = uint32_t(o.bench.n_prompt + o.bench.n_gen / 2);
  run.n_prompt = o.bench.n_prompt;
  run.decode_bytes = m.decode_weight_bytes();
  run.attn_elems = planner::attention_elements(m, m.n_layer, gen_pos);
  run.prompt_flops = planner::token_flops(m, uint32_t(o.bench.n_prompt / 2));
  // Decode: the repetition with the median bandwidth fraction, with the
  // bandwidth of its own minutes; prefill does not depend on it.
  const engine::BenchRun& median = r.runs[size_t(r.median_fraction_run)];
  run.gen_tps = median.gen_tps;
  run.bandwidth_gbs = median.bandwidth_gbs();
  run.bandwidth_steady = r.n_steady > 0;
  run.prompt_tps = r.prompt_tps.median;
  return run;
}

Status bench(BenchOptions& o) {
  if (o.bench.model_path.empty()) return make_error("bench: give a model (-m MODEL.gguf or a name) or --bandwidth");
  DHI_ASSIGN_OR_RETURN(o.bench.model_path, resolve_model_arg(o.bench.model_path, o.offline));
  if (o.calibrate && o.bench.n_gen < 1) return make_error("bench: --calibrate needs generated tokens (-n >= 1)");
  {
    // Refuse what will not fit before loading it (the bench's context holds
    // the prompt and the generated tokens).
    DHI_ASSIGN_OR_RETURN(auto file, open_gguf(o.bench.model_path));
    EngineRequest req;
    req.n_ctx = uint32_t(o.bench.n_prompt + o.bench.n_gen + 1);
    req.n_threads = o.bench.n_threads;
    req.kv_type = o.bench.kv_type;
    DHI_TRY(admit(*file, o.bench.model_path, req));
  }
  const bool measured = !(o.bandwidth_gbs > 0);
  if (measured) {
    o.bench.probe = bandwidth_params(o);
  } else {
    o.bench.bandwidth_gbs = o.bandwidth_gbs;
  }
  const bool progress = !o.json;
  DHI_ASSIGN_OR_RETURN(engine::BenchResult r,
                       engine::run_bench(o.bench, [&](int32_t rep, const engine::BenchRun& run) {
                         if (!progress) return;
                         std::fprintf(stderr,
                                      "run %d: load %.0f ms | prompt %.2f tok/s | gen %.2f tok/s | ttft %.0f ms | "
                                      "read %.1f -> %.1f GB/s%s\n",
                                      rep + 1, run.load_ms, run.prompt_tps, run.gen_tps, run.ttft_ms,
                                      run.bandwidth_before_gbs, run.bandwidth_after_gbs,
                                      run.bandwidth_steady() ? "" : " (moved: not counted)");
                       }));
  // The machine's bandwidth now: the last probe.
  const double latest_gbs = r.runs.back().bandwidth_after_gbs;
  nlohmann::json cal_json;
  if (o.calibrate) {
    DHI_ASSIGN_OR_RETURN(planner::CalibrationRun run, calibration_run(o, r));
    const std::string path = o.calibration_path.empty() ? planner::default_calibration_path() : o.calibration_path;
    const double nominal = planner::nominal_cpu_gflops(r.n_threads, planner::local_cpu_ghz());
    DHI_TRY(planner::save_calibration_run(path, cpu_model(), latest_gbs, nominal, run));
    if (!run.bandwidth_steady)
      std::fprintf(stderr,
                   "calibration: the read bandwidth moved during every repetition, so this run's decode speed will "
                   "not set the planner's decode constants (its prefill speed will); more repetitions (-r) may "
                   "catch a steady one\n");
    cal_json = {{"path", path},
                {"weight_type", run.weight_type},
                {"decode_bytes", run.decode_bytes},
                {"prompt_flops", run.prompt_flops},
                {"nominal_gflops", nominal},
                {"prefill_fraction", planner::run_prefill_fraction(run, nominal)},
                {"bandwidth_steady", run.bandwidth_steady}};
  }

  if (o.json) {
    nlohmann::json runs = nlohmann::json::array();
    for (size_t i = 0; i < r.runs.size(); ++i) {
      const engine::BenchRun& run = r.runs[i];
      runs.push_back({{"load_ms", run.load_ms},
                      {"prompt_ms", run.prompt_ms},
                      {"prompt_tps", run.prompt_tps},
                      {"ttft_ms", run.ttft_ms},
                      {"gen_ms", run.gen_ms},
                      {"gen_tps", run.gen_tps},
                      {"bandwidth_before_gbs", run.bandwidth_before_gbs},
                      {"bandwidth_after_gbs", run.bandwidth_after_gbs},
                      {"bandwidth_steady", run.bandwidth_steady()},
                      {"bandwidth_fraction", r.run_fraction[i]}});
    }
    nlohmann::json j;
    j["model"] = {{"path", o.bench.model_path}, {"arch", r.arch},           {"name", r.name},
                  {"file_bytes", r.file_bytes},  {"weight_bytes", r.weight_bytes}, {"n_params", r.n_params},
                  {"n_layer", r.n_layer},        {"n_embd", r.n_embd},      {"n_vocab", r.n_vocab},
                  {"bytes_by_type", r.bytes_by_type}};
    j["n_prompt"] = r.n_prompt;
    j["n_gen"] = r.n_gen;
    j["reps"] = r.n_reps;
    j["threads"] = r.n_threads;
    j["isa"] = r.isa;
    j["kv_type"] = std::string(tensor_type_name(o.bench.kv_type));
    j["load_ms"] = r.load_ms.median;
    j["prompt_tps"] = r.prompt_tps.median;
    j["gen_tps"] = r.gen_tps.median;
    j["ttft_ms"] = r.ttft_ms.median;
    j["peak_rss_bytes"] = r.peak_rss_bytes;
    j["weight_bytes_per_token"] = r.weight_bytes_per_token;
    j["bandwidth_gbs"] = r.bandwidth_gbs.median;
    j["bandwidth_source"] = measured ? "measured" : "given";
    j["bandwidth_fraction"] = r.bandwidth_fraction.median;
    j["spread"] = {{"load_ms", stat_json(r.load_ms)},
                   {"prompt_tps", stat_json(r.prompt_tps)},
                   {"gen_tps", stat_json(r.gen_tps)},
                   {"ttft_ms", stat_json(r.ttft_ms)},
                   {"bandwidth_gbs", stat_json(r.bandwidth_gbs)},
                   {"bandwidth_fraction", stat_json(r.bandwidth_fraction)}};
    j["steady_runs"] = r.n_steady;
    if (measured) {
      nlohmann::json probes = nlohmann::json::array();
      for (const engine::BandwidthResult& b : r.probes) probes.push_back(bandwidth_json(b));
      j["bandwidth"] = {{"probes", probes}, {"steady_tolerance", engine::kSteadyBandwidthTolerance}};
    }
    if (o.calibrate) j["calibration"] = cal_json;
    j["runs"] = runs;
    j["cpu"] = cpu_model();
    j["git_revision"] = DHI_GIT_REVISION;
    print_json(j);
    return {};
  }

  std::printf("model:      %s (%s, %d layers, %.2f GB of weights, %.2f GB read per token)\n",
              o.bench.model_path.c_str(), r.arch.c_str(), r.n_layer, double(r.weight_bytes) / 1e9,
              double(r.weight_bytes_per_token) / 1e9);
  std::printf("machine:    %s, %d threads, ISA %s\n", cpu_model().c_str(), r.n_threads, r.isa.c_str());
  std::printf("load:       %.0f ms (min %.0f, max %.0f)\n", r.load_ms.median, r.load_ms.min, r.load_ms.max);
  std::printf("prompt:     %.2f tok/s over %d tokens (min %.2f, max %.2f)\n", r.prompt_tps.median, r.n_prompt,
              r.prompt_tps.min, r.prompt_tps.max);
  std::printf("generation: %.2f tok/s over %d tokens (min %.2f, max %.2f)\n", r.gen_tps.median, r.n_gen,
              r.gen_tps.min, r.gen_tps.max);
  std::printf("first token: %.0f ms (min %.0f, max %.0f)\n", r.ttft_ms.median, r.ttft_ms.min, r.ttft_ms.max);
  std::printf("peak RSS:   %.1f MiB\n", double(r.peak_rss_bytes) / (1 << 20));
  if (measured) {
    std::printf("bandwidth:  %.1f GB/s (median of the runs' own, probed before and after each); generation reaches "
                "%.0f%% (min %.0f, max %.0f) over %d of %d runs%s\n",
                r.bandwidth_gbs.median, 100.0 * r.bandwidth_fraction.median, 100.0 * r.bandwidth_fraction.min,
                100.0 * r.bandwidth_fraction.max, r.n_steady > 0 ? r.n_steady : r.n_reps, r.n_reps,
                r.n_steady > 0 ? "" : " (the bandwidth moved during every run)");
  } else {
    std::printf("bandwidth:  %.1f GB/s (given); generation reaches %.0f%% of it\n", r.bandwidth_gbs.median,
                100.0 * r.bandwidth_fraction.median);
  }
  std::printf("medians of %d runs; %s\n", r.n_reps, DHI_GIT_REVISION);
  if (o.calibrate) std::printf("calibration: stored in %s\n", cal_json["path"].get<std::string>().c_str());
  return {};
}

}  // namespace

void register_bench(CLI::App& app, Action& action) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure model speed and memory bandwidth");
  cmd->add_option("model,-m,--model", o->bench.model_path, "GGUF model file or model name");
  add_offline_flag(*cmd, o->offline);
  cmd->add_option("-p,--n-prompt", o->bench.n_prompt, "Prompt tokens")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("-n,--n-gen", o->bench.n_gen, "Generated tokens")->check(CLI::Range(0, 1 << 20));
  cmd->add_option("-t,--threads", o->bench.n_threads, "CPU threads (0: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_option("-r,--reps", o->bench.n_reps, "Repetitions (medians and min/max are reported)")
      ->check(CLI::Range(1, 1000));
  cmd->add_flag("--json", o->json, "Print one JSON object");
  cmd->add_flag("--bandwidth", o->bandwidth_only, "Only measure the machine's memory read bandwidth");
  cmd->add_option("--bandwidth-gbs", o->bandwidth_gbs,
                  "Read bandwidth in GB/s for bandwidth_fraction (skips measuring it)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--bandwidth-mib", o->bandwidth_mib, "Buffer size of the bandwidth measurement")
      ->check(CLI::Range(1u, 1u << 20));
  cmd->add_flag("--calibrate", o->calibrate,
                "Store the bandwidth and achieved speeds in the calibration file dhi plan reads");
  cmd->add_option("--calibration", o->calibration_path,
                  "Calibration file (default: $DHI_CALIBRATION, else $XDG_CACHE_HOME or ~/.cache /dhi/calibration.json)");
  cmd->callback([o, &action] {
    action = [o]() -> Status { return o->bandwidth_only ? bandwidth_only(*o) : bench(*o); };
  });
}

}  // namespace dhi::cli
