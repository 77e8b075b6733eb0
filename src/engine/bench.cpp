// Model benchmark (see bench.h). Works on a Context directly rather than a
// Session: sampling is a plain argmax and end-of-generation tokens are ignored,
// so every repetition runs exactly n_prompt + n_gen tokens.
#include "engine/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

#include "gguf/reader.h"
#include "kernels/cpu/dot/isa.h"
#include "model/context.h"
#include "sampling/sampler.h"

namespace dhi::engine {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// The greedy token, as a Session picks it; token 0 should every logit be NaN
// or -inf (a broken model still runs all its steps).
int32_t argmax(std::span<const float> v) { return std::max(0, sampling::greedy_argmax(v)); }

uint64_t view_bytes(const model::TensorView& t) {
  return t.data ? uint64_t(t.ne1) * t.row_bytes : 0;
}

// The prompt: pseudo-random ids from a fixed LCG, so every run and every build
// evaluates the same tokens.
std::vector<int32_t> bench_prompt(int32_t n, int32_t n_vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  uint64_t s = 0x853c49e6748fea9bull;
  for (int32_t& id : ids) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    id = int32_t((s >> 33) % uint64_t(n_vocab));
  }
  return ids;
}

Expected<BenchRun> run_once(const BenchParams& p, BenchResult& info, bool first) {
  BenchRun run;
  const auto t_load = Clock::now();
  auto file = gguf::GgufFile::open(p.model_path);
  if (!file) return file.error();
  auto model = model::Model::load(*file);
  if (!model) return make_error(p.model_path, ": ", model.error().message);
  run.load_ms = ms_since(t_load);
  const model::Model& m = **model;
  const model::ModelConfig& c = m.config();

  if (first) {
    info.arch = c.arch;
    auto name = file->get_string_or("general.name", "");
    info.name = name ? *name : std::string();
    info.file_bytes = file->file_size();
    info.weight_bytes = m.weight_bytes();
    info.weight_bytes_per_token = decode_weight_bytes(m.weights());
    for (const gguf::TensorInfo& t : file->tensors()) {
      uint64_t n = 1;
      for (uint64_t d : t.dims) n *= d;
      info.n_params += n;
      info.bytes_by_type[std::string(tensor_type_name(TensorType(t.type)))] += t.n_bytes;
    }
    info.n_layer = c.n_layer;
    info.n_embd = c.n_embd;
    info.n_vocab = c.n_vocab;
  }

  model::ContextParams cp;
  cp.n_ctx = uint32_t(p.n_prompt + p.n_gen + 1);
  cp.n_threads = p.n_threads;
  cp.kv_type = p.kv_type;
  DHI_ASSIGN_OR_RETURN(auto ctx, model::Context::create(m, cp));

  const std::vector<int32_t> prompt = bench_prompt(p.n_prompt, c.n_vocab);
  model::Batch batch;
  for (int32_t i = 0; i < p.n_prompt; ++i) batch.add(prompt[size_t(i)], i, 0, i + 1 == p.n_prompt);
  const auto t_prompt = Clock::now();
  DHI_TRY(ctx->decode(batch));
  run.prompt_ms = ms_since(t_prompt);
  int32_t token = argmax(ctx->logits(batch.size() - 1));
  run.ttft_ms = ms_since(t_prompt);
  run.prompt_tps = run.prompt_ms > 0 ? p.n_prompt * 1000.0 / run.prompt_ms : 0;

  const auto t_gen = Clock::now();
  for (int32_t i = 0; i < p.n_gen; ++i) {
    batch.clear();
    batch.add(token, p.n_prompt + i, 0, true);
    DHI_TRY(ctx->decode(batch));
    token = argmax(ctx->logits(0));
  }
  run.gen_ms = ms_since(t_gen);
  run.gen_tps = run.gen_ms > 0 ? p.n_gen * 1000.0 / run.gen_ms : 0;
  return run;
}

}  // namespace

BenchStat bench_stat(std::vector<double> v) {
  BenchStat s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.min = v.front();
  s.max = v.back();
  return s;
}

uint64_t decode_weight_bytes(const model::ModelWeights& w) {
  uint64_t total = 0;
  for (const model::LayerWeights& L : w.layers) {
    for (const model::TensorView* t : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.bq, &L.bk, &L.bv, &L.q_norm,
                                       &L.k_norm, &L.wo, &L.ffn_norm, &L.ffn_gate, &L.ffn_up, &L.ffn_down}) {
      total += view_bytes(*t);
    }
  }
  // Tied: w.output is the embedding table, read in full by the output matmul.
  total += view_bytes(w.output_norm) + view_bytes(w.output);
  return total;
}

bool BenchRun::bandwidth_steady() const {
  const double mean = bandwidth_gbs();
  return mean > 0 && std::abs(bandwidth_after_gbs - bandwidth_before_gbs) <= kSteadyBandwidthTolerance * mean;
}

uint64_t peak_rss_bytes() {
  struct rusage ru = {};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return uint64_t(ru.ru_maxrss) * 1024;  // Linux reports kilobytes
}

Expected<BenchResult> run_bench(const BenchParams& p, const BenchProgress& progress) {
  if (p.n_prompt < 1 || p.n_prompt > (1 << 20)) return make_error("bench: prompt tokens must be in [1, 1048576], got ", p.n_prompt);
  if (p.n_gen < 0 || p.n_gen > (1 << 20)) return make_error("bench: generated tokens must be in [0, 1048576], got ", p.n_gen);
  if (p.n_reps < 1 || p.n_reps > 1000) return make_error("bench: repetitions must be in [1, 1000], got ", p.n_reps);
  if (p.n_threads < 0) return make_error("bench: threads must be >= 0, got ", p.n_threads);
  DHI_ASSIGN_OR_RETURN(kernels::cpu::Isa isa, kernels::cpu::active_isa());

  BenchResult r;
  r.n_prompt = p.n_prompt;
  r.n_gen = p.n_gen;
  r.n_reps = p.n_reps;
  r.n_threads = p.n_threads > 0 ? p.n_threads : int32_t(std::max(1u, std::thread::hardware_concurrency()));
  r.isa = std::string(kernels::cpu::isa_name(isa));
  if (p.probe && p.bandwidth_gbs > 0) return make_error("bench: give a bandwidth or probe it, not both");
  // Between repetitions no model and no thread pool is alive, so the probe's
  // fork copies nothing large and leaves no lock held.
  const auto probe = [&]() -> Expected<double> {
    if (!p.probe) return p.bandwidth_gbs;
    DHI_ASSIGN_OR_RETURN(BandwidthResult b, measure_read_bandwidth_in_child(*p.probe));
    r.probes.push_back(b);
    return b.median_gbs;
  };
  DHI_ASSIGN_OR_RETURN(double before, probe());
  for (int32_t rep = 0; rep < p.n_reps; ++rep) {
    DHI_ASSIGN_OR_RETURN(BenchRun run, run_once(p, r, rep == 0));
    run.bandwidth_before_gbs = before;
    DHI_ASSIGN_OR_RETURN(run.bandwidth_after_gbs, probe());
    before = run.bandwidth_after_gbs;
    r.runs.push_back(run);
    if (progress) progress(rep, run);
  }
  const auto collect = [&](double BenchRun::*field) {
    std::vector<double> v;
    for (const BenchRun& run : r.runs) v.push_back(run.*field);
    return bench_stat(std::move(v));
  };
  r.load_ms = collect(&BenchRun::load_ms);
  r.prompt_tps = collect(&BenchRun::prompt_tps);
  r.gen_tps = collect(&BenchRun::gen_tps);
  r.ttft_ms = collect(&BenchRun::ttft_ms);
  r.peak_rss_bytes = peak_rss_bytes();

  std::vector<int32_t> counted;
  for (int32_t i = 0; i < p.n_reps; ++i) {
    const BenchRun& run = r.runs[size_t(i)];
    r.run_fraction.push_back(bandwidth_fraction(r.weight_bytes_per_token, run.gen_tps, run.bandwidth_gbs()));
    if (run.bandwidth_steady()) counted.push_back(i);
  }
  r.n_steady = int32_t(counted.size());
  if (counted.empty())
    for (int32_t i = 0; i < p.n_reps; ++i) counted.push_back(i);
  std::vector<double> bw, fr;
  for (int32_t i : counted) {
    bw.push_back(r.runs[size_t(i)].bandwidth_gbs());
    fr.push_back(r.run_fraction[size_t(i)]);
  }
  r.bandwidth_gbs = bench_stat(std::move(bw));
  r.bandwidth_fraction = bench_stat(fr);
  std::sort(counted.begin(), counted.end(),
            [&](int32_t a, int32_t b) { return r.run_fraction[size_t(a)] < r.run_fraction[size_t(b)]; });
  r.median_fraction_run = counted[(counted.size() - 1) / 2];
  return r;
}

}  // namespace dhi::engine
