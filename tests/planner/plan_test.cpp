// The memory model's terms against the engine's own allocations, placement
// verdicts on the built-in devices, automatic context, suggestions, and the
// calibration file with the speed constants derived from it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "model/kv_cache.h"
#include "planner/plan.h"

namespace dhi::planner {
namespace {

ModelDesc catalog(const char* name, const char* quant) {
  auto d = describe_catalog(name, quant);
  EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message);
  return d.ok() ? *d : ModelDesc{};
}

const DeviceProfile& device(const char* name) { return *find_builtin_device(name); }

Plan plan(const ModelDesc& m, const DeviceProfile& d, uint32_t n_ctx, std::optional<TensorType> kv = std::nullopt) {
  PlanRequest r;
  r.n_ctx = n_ctx;
  r.kv_type = kv;
  auto p = make_plan(m, d, r, default_cpu_speed(m.dominant_type()));
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  return p.ok() ? *p : Plan{};
}

TEST(Memory, KvCacheMatchesTheEngineAndQ8_0Rows) {
  const ModelDesc m = catalog("r1-distill-qwen-1.5b", "Q4_K_M");
  for (TensorType t : {TensorType::F32, TensorType::F16}) {
    EXPECT_EQ(kv_cache_bytes(m, 28, 4096, 2, t), model::KvCache::bytes(28, 2, 4096, 256, t));
  }
  // 2 x 28 layers x 4096 positions x (256 / 32 blocks of 34 bytes).
  EXPECT_EQ(kv_cache_bytes(m, 28, 4096, 1, TensorType::Q8_0), 2ull * 28 * 4096 * 8 * 34);
  EXPECT_EQ(kv_read_bytes(m, 28, 100, TensorType::F16), 2ull * 28 * 100 * 256 * 2);
}

TEST(Memory, CpuComputeScalesWithMicroBatchAndContext) {
  const ModelDesc m = catalog("r1-distill-qwen-1.5b", "Q8_0");
  ComputeShape a{512, 1, 1, 2, TensorType::F32};
  ComputeShape b = a;
  b.n_ubatch = 101;
  // Activations per token: 3 n_embd + 2 q_dim + 2 kv_dim + 2 n_ff floats, and
  // n_ff Q8_0 activations (34 bytes per 32).
  const double per_token = (3 * 1536 + 2 * 1536 + 2 * 256 + 2 * 8960) * 4 + 8960 * 34.0 / 32;
  EXPECT_NEAR(double(cpu_compute_bytes(m, b) - cpu_compute_bytes(m, a)), 100 * per_token, 1.0);
  ComputeShape c = a;
  c.n_ctx = 1536;  // one score row per thread grows by 1024 floats
  EXPECT_EQ(cpu_compute_bytes(m, c) - cpu_compute_bytes(m, a), 2ull * 1024 * 4);
}

TEST(Place, SevenBFitsAT4) {
  const Plan p = plan(catalog("r1-distill-qwen-7b", "Q4_K_M"), device("t4"), 4096);
  EXPECT_EQ(p.fit, Fit::Gpu);
  EXPECT_EQ(p.gpu_layers, 29);
  EXPECT_EQ(p.total_layers, 29);
  EXPECT_EQ(p.kv_type, TensorType::F16);  // a GPU engine's default
  ASSERT_EQ(p.parts.size(), 2u);
  EXPECT_LE(p.parts[0].memory.total(), p.parts[0].capacity);
  EXPECT_GT(p.decode_tps, 10);
  EXPECT_EQ(p.memory.total(), p.parts[0].memory.total() + p.parts[1].memory.total());
}

TEST(Place, ThirtyTwoBOffloadsOnT4AndSplitsOnTwo) {
  const ModelDesc m = catalog("r1-distill-qwen-32b", "Q4_K_M");
  const Plan one = plan(m, device("t4"), 4096);
  EXPECT_EQ(one.fit, Fit::Offload);
  EXPECT_GT(one.gpu_layers, 0);
  EXPECT_LT(one.gpu_layers, one.total_layers);
  for (const DevicePart& d : one.parts) EXPECT_LE(d.memory.total(), d.capacity) << d.name;
  const Plan two = plan(m, device("2xt4"), 4096);
  EXPECT_EQ(two.fit, Fit::Split);
  EXPECT_EQ(two.gpu_layers, two.total_layers);
  EXPECT_GT(two.decode_tps, one.decode_tps);
  ASSERT_EQ(two.parts.size(), 3u);  // gpu0, gpu1, cpu
  EXPECT_EQ(two.parts[0].layers + two.parts[1].layers, two.total_layers);
}

TEST(Place, CpuDevicesRunOnTheCpuOrSayNoWithASuggestion) {
  const Plan small = plan(catalog("r1-distill-qwen-1.5b", "Q4_K_M"), device("colab-cpu"), 4096);
  EXPECT_EQ(small.fit, Fit::Cpu);
  EXPECT_EQ(small.gpu_layers, 0);
  EXPECT_EQ(small.kv_type, TensorType::F32);  // dhi's CPU engine default
  const Plan big = plan(catalog("r1-distill-llama-70b", "Q4_K_M"), device("colab-cpu"), 4096);
  EXPECT_EQ(big.fit, Fit::No);
  EXPECT_FALSE(big.suggestion.empty());
  EXPECT_NE(big.explanation.find("11.70 GB"), std::string::npos) << big.explanation;
}

TEST(Place, CpuDecodeUnderTheLowerRoof) {
  // Two threads: at 36 GB/s memory binds (0.90 x 36 < 2 x 22.5); at 200 GB/s
  // the kernels do, and more bandwidth no longer speeds decode up.
  const ModelDesc m = catalog("r1-distill-qwen-1.5b", "Q4_K_M");
  const CpuSpeed speed = default_cpu_speed(TensorType::Q4_K);
  Plan at[3];
  const double bandwidths[3] = {36, 200, 400};
  for (int i = 0; i < 3; ++i) {
    auto d = custom_device(0, 1, 24, bandwidths[i], 2);  // no VRAM: a CPU device
    ASSERT_TRUE(d.ok()) << d.error().message;
    PlanRequest r;
    r.n_ctx = 4096;
    auto p = make_plan(m, *d, r, speed);
    ASSERT_TRUE(p.ok()) << p.error().message;
    at[i] = *p;
  }
  EXPECT_FALSE(at[0].cpu_kernel_bound);
  EXPECT_NEAR(at[0].cpu_weight_gbs, 0.90 * 36, 1e-9);
  EXPECT_TRUE(at[1].cpu_kernel_bound);
  EXPECT_NEAR(at[1].cpu_weight_gbs, 2 * speed.decode_gbs_per_thread, 1e-9);
  EXPECT_GT(at[1].decode_tps, at[0].decode_tps);
  EXPECT_DOUBLE_EQ(at[2].decode_tps, at[1].decode_tps);
}

TEST(Place, SuggestsTheSmallestChange) {
  // 14B Q4_K_M weights (~9 GB) fit 11.7 GB of RAM, but not with an f32 cache
  // of 8192 positions (3.2 GB): an f16 cache (1.6 GB) is the smallest change.
  const ModelDesc m = catalog("r1-distill-qwen-14b", "Q4_K_M");
  const Plan p = plan(m, device("colab-cpu"), 8192);
  ASSERT_EQ(p.fit, Fit::No);
  EXPECT_NE(p.suggestion.find("f16 KV cache"), std::string::npos) << p.suggestion;
  // At a context where even an f16 cache is too big, a shorter context.
  const Plan q = plan(m, device("colab-cpu"), 32768);
  ASSERT_EQ(q.fit, Fit::No);
  EXPECT_NE(q.suggestion.find("context of"), std::string::npos) << q.suggestion;
  // The suggested context fits, one step of 256 more does not.
  const uint32_t ctx = uint32_t(std::stoul(q.suggestion.substr(q.suggestion.find("context of") + 11)));
  EXPECT_NE(plan(m, device("colab-cpu"), ctx).fit, Fit::No);
  EXPECT_EQ(plan(m, device("colab-cpu"), ctx + 256).fit, Fit::No);
}

TEST(Place, AutomaticContextShrinksToWhatFits) {
  const ModelDesc m = catalog("r1-distill-qwen-7b", "Q4_K_M");
  auto tight = custom_device(0, 1, 5.2, 20, 2);
  ASSERT_TRUE(tight.ok());
  PlanRequest r;
  auto p = make_plan(m, *tight, r, default_cpu_speed(m.dominant_type()));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->fit, Fit::Cpu);
  EXPECT_LT(p->n_ctx, 4096u);
  EXPECT_GE(p->n_ctx, 256u);
  EXPECT_LE(p->memory.total(), tight->ram_bytes);
  auto roomy = custom_device(0, 1, 64, 20, 2);
  ASSERT_TRUE(roomy.ok());
  auto q = make_plan(m, *roomy, r, default_cpu_speed(m.dominant_type()));
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->n_ctx, 4096u);  // the training context, capped
}

TEST(Place, ContextBeyondTrainingIsAnError) {
  const ModelDesc m = catalog("r1-distill-qwen-7b", "Q4_K_M");
  PlanRequest r;
  r.n_ctx = 131073;
  auto p = make_plan(m, device("t4"), r, default_cpu_speed(m.dominant_type()));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("training context of 131072"), std::string::npos) << p.error().message;
}

TEST(Place, MoreMemoryNeverMeansFewerGpuLayers) {
  const ModelDesc m = catalog("r1-distill-qwen-14b", "Q8_0");
  int32_t last = -1;
  for (double vram : {4.0, 6.0, 8.0, 12.0, 16.0, 24.0}) {
    auto d = custom_device(vram, 1, 32, 300, 4);
    ASSERT_TRUE(d.ok());
    const Plan p = plan(m, *d, 4096);
    EXPECT_GE(p.gpu_layers, last) << vram;
    last = p.gpu_layers;
  }
  EXPECT_EQ(last, m.n_layer + 1);
}

TEST(Calibration, RoundTripAndDerivedConstants) {
  // Saving merges into an existing file: start from none (a recycled pid's
  // leftover would add its runs).
  const std::string path = ::testing::TempDir() + "/dhi_cal_" + std::to_string(getpid()) + "/calibration.json";
  std::remove(path.c_str());
  // Runs built from the speed model itself: 10 GB/s, 50 us per layer, 2 ns
  // per attention element, the tiny model at full bandwidth (measured at two
  // prompt lengths), the Q4_K one at 60% (below the memory roof: its kernels,
  // 3 GB/s per thread, held it back).
  const double bw = 10, c = 50e-6, a = 2e-9;
  CalibrationRun tiny{"/m/tiny.gguf", "F32", 5, 2, 64, 1'000'000, 0, 1e6, 0, 1000};
  tiny.gen_tps = 1.0 / (5 * c + 1e6 / (bw * 1e9));
  CalibrationRun tiny_long = tiny;
  tiny_long.n_prompt = 1024;
  tiny_long.attn_elems = 5e5;
  tiny_long.gen_tps = 1.0 / (5 * c + 1e6 / (bw * 1e9) + 5e5 * a);
  CalibrationRun q4{"/m/q4.gguf", "Q4_K", 28, 2, 64, 1'000'000'000, 1e6, 3e9, 0, 20};
  q4.gen_tps = 1.0 / (28 * c + 1e6 * a + 1e9 / (bw * 1e9 * 0.6));
  ASSERT_TRUE(save_calibration_run(path, "cpu", bw, 100, tiny).ok());
  ASSERT_TRUE(save_calibration_run(path, "cpu", bw, 100, tiny_long).ok());
  ASSERT_TRUE(save_calibration_run(path, "cpu", bw, 100, q4).ok());
  // Measured again: replaces the run of the same file and prompt length.
  ASSERT_TRUE(save_calibration_run(path, "cpu", bw, 100, q4).ok());
  auto cal = load_calibration(path);
  ASSERT_TRUE(cal.ok()) << cal.error().message;
  ASSERT_TRUE(cal->has_value());
  ASSERT_EQ((*cal)->runs.size(), 3u);
  const CpuSpeed s = derive_cpu_speed(**cal, TensorType::Q4_K);
  EXPECT_NEAR(s.attn_s_per_elem, a, 1e-13);
  EXPECT_NEAR(s.layer_overhead_s, c, 1e-9);
  EXPECT_EQ(s.decode_fraction, default_cpu_speed(TensorType::Q4_K).decode_fraction);
  EXPECT_NEAR(s.decode_gbs_per_thread, 3, 1e-6);
  EXPECT_NEAR(cpu_weight_gbs(s, bw, 2), 6, 1e-6);
  EXPECT_NEAR(s.prefill_fraction, 3e9 * 20 / 100e9, 1e-9);
  // A type without a run keeps the default fraction but the measured costs.
  const CpuSpeed f16 = derive_cpu_speed(**cal, TensorType::F16);
  EXPECT_EQ(f16.decode_fraction, default_cpu_speed(TensorType::F16).decode_fraction);
  EXPECT_NEAR(f16.layer_overhead_s, c, 1e-9);

  // The same path synthesized again in another type (as scripts/plan_check.sh
  // does) is another model: its run is added, not put in place of the Q4_K
  // one, and a slower run at a longer prompt is not taken for attention cost.
  CalibrationRun q8 = q4;
  q8.weight_type = "Q8_0";
  q8.decode_bytes = 1'900'000'000;
  q8.n_prompt = 1024;
  q8.attn_elems = 2e7;
  q8.gen_tps = 1.0 / (28 * c + 2e7 * a * 10 + 1.9e9 / (bw * 1e9 * 0.7));
  ASSERT_TRUE(save_calibration_run(path, "cpu", bw, 100, q8).ok());
  auto cal2 = load_calibration(path);
  ASSERT_TRUE(cal2.ok() && cal2->has_value());
  ASSERT_EQ((*cal2)->runs.size(), 4u);
  EXPECT_NEAR(derive_cpu_speed(**cal2, TensorType::Q4_K).attn_s_per_elem, a, 1e-13);
  EXPECT_NEAR(cpu_weight_gbs(derive_cpu_speed(**cal2, TensorType::Q4_K), bw, 2), 6, 1e-6);

  // A missing file is no calibration; a broken one is an error naming it.
  auto none = load_calibration(path + ".missing");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  { std::ofstream(path) << "{\"version\": 1, \"cpu\": 3}"; }
  auto bad = load_calibration(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(path), std::string::npos);
  { std::ofstream(path) << "not json"; }
  EXPECT_FALSE(load_calibration(path).ok());
}

TEST(Calibration, DecodeRoofsFromRunsAtTheirOwnBandwidths) {
  // A shared host's bandwidth moves between runs. The truth here: 20 us per
  // layer, 3e-11 s per attention element, weights streamed at the lower of
  // 93% of the bandwidth and 23 GB/s per thread (2 threads). The Q4_K model
  // ran at -p 64 and -p 2048 while the machine read 36 GB/s and at a long
  // context while it read 44 (memory-bound), and at -p 1024 while it read 64
  // (compute-bound: 46 < 0.93 x 64). The tiny model ran at full bandwidth.
  const double c = 20e-6, a = 3e-11, f = 0.93, per_thread = 23;
  const double d = 5e8;
  const auto weight_s = [&](double bw) { return d / (std::min(f * bw, 2 * per_thread) * 1e9); };
  CalibrationRun tiny{"/m/tiny.gguf", "F32", 5, 2, 64, 1'000'000, 0, 1e6, 0, 1000};
  tiny.bandwidth_gbs = 50;
  tiny.gen_tps = 1.0 / (5 * c + 1e6 / 50e9);
  CalibrationRun short_ctx{"/m/q4.gguf", "Q4_K", 14, 2, 64, uint64_t(d), 1e6, 3e9, 0, 20};
  short_ctx.bandwidth_gbs = 36;
  short_ctx.gen_tps = 1.0 / (14 * c + 1e6 * a + weight_s(36));
  CalibrationRun long_ctx = short_ctx;
  long_ctx.n_prompt = 2048;
  long_ctx.attn_elems = 3e7;
  long_ctx.gen_tps = 1.0 / (14 * c + 3e7 * a + weight_s(36));
  CalibrationRun huge = short_ctx;
  huge.n_prompt = 8192;
  huge.attn_elems = 2e8;
  huge.bandwidth_gbs = 44;
  huge.gen_tps = 1.0 / (14 * c + 2e8 * a + weight_s(44));
  CalibrationRun fast = short_ctx;
  fast.n_prompt = 1024;
  fast.attn_elems = 1.5e7;
  fast.bandwidth_gbs = 64;
  fast.gen_tps = 1.0 / (14 * c + 1.5e7 * a + weight_s(64));

  const std::string path = ::testing::TempDir() + "/dhi_cal_bw_" + std::to_string(getpid()) + ".json";
  std::remove(path.c_str());
  for (const CalibrationRun& r : {tiny, short_ctx, long_ctx, huge, fast})
    ASSERT_TRUE(save_calibration_run(path, "cpu", r.bandwidth_gbs, 100, r).ok());
  auto cal = load_calibration(path);
  ASSERT_TRUE(cal.ok() && cal->has_value());
  EXPECT_EQ((*cal)->bandwidth_gbs, 64);  // the latest
  ASSERT_EQ((*cal)->runs.size(), 5u);
  EXPECT_EQ((*cal)->runs[0].bandwidth_gbs, 50);
  EXPECT_EQ((*cal)->runs[4].bandwidth_gbs, 64);
  const CpuSpeed s = derive_cpu_speed(**cal, TensorType::Q4_K);
  // Attention from the pair at one bandwidth. The pairs with the run at 44
  // differ more in attention work, but their weights streamed faster: 1.6e-11
  // from the widest of them.
  EXPECT_NEAR(s.attn_s_per_elem, a, 1e-15);
  EXPECT_NEAR(s.layer_overhead_s, c, 1e-10);
  EXPECT_NEAR(s.decode_fraction, f, 1e-9);
  EXPECT_NEAR(s.decode_gbs_per_thread, per_thread, 1e-6);
  // So the planner predicts both levels: memory-bound at 36, compute-bound at 64.
  EXPECT_NEAR(cpu_weight_gbs(s, 36, 2), f * 36, 1e-6);
  EXPECT_NEAR(cpu_weight_gbs(s, 64, 2), 2 * per_thread, 1e-6);

  // Runs all at the memory roof say only that the kernels keep up with it:
  // the per-thread rate is at least what they streamed, and the default's.
  Calibration memory_bound = **cal;
  memory_bound.runs.pop_back();
  const CpuSpeed m = derive_cpu_speed(memory_bound, TensorType::Q4_K);
  EXPECT_NEAR(m.decode_fraction, f, 1e-9);
  EXPECT_EQ(m.decode_gbs_per_thread, std::max(default_cpu_speed(TensorType::Q4_K).decode_gbs_per_thread, f * 36 / 2));

  // A run during which the bandwidth moved (its probes' mean 50 GB/s, its
  // decode mostly at 36) would pass for a compute-bound one at 16.7 GB/s per
  // thread; `dhi bench` marks it unsteady and it is left out of the decode
  // constants (and survives the file's round trip so marked).
  CalibrationRun moved = short_ctx;
  moved.n_prompt = 512;
  moved.attn_elems = 7e6;
  moved.bandwidth_gbs = 50;
  moved.bandwidth_steady = false;
  moved.gen_tps = 1.0 / (14 * c + 7e6 * a + weight_s(36));
  memory_bound.runs.push_back(moved);
  EXPECT_EQ(derive_cpu_speed(memory_bound, TensorType::Q4_K).decode_gbs_per_thread, m.decode_gbs_per_thread);
  ASSERT_TRUE(save_calibration_run(path, "cpu", 50, 100, moved).ok());
  auto with_moved = load_calibration(path);
  ASSERT_TRUE(with_moved.ok() && with_moved->has_value());
  ASSERT_EQ((*with_moved)->runs.size(), 6u);
  EXPECT_FALSE((*with_moved)->runs[5].bandwidth_steady);
  EXPECT_TRUE((*with_moved)->runs[4].bandwidth_steady);

  // A file written before runs kept their bandwidth: the file's stands in.
  { std::ofstream(path) << R"({"version": 1, "cpu": "cpu", "bandwidth_gbs": 40, "nominal_gflops": 100, "runs": [
      {"model": "/m/q4.gguf", "weight_type": "Q4_K", "n_layer": 14, "n_threads": 2, "n_prompt": 64,
       "decode_bytes": 500000000, "attn_elems": 0, "prompt_flops": 3e9, "gen_tps": 50, "prompt_tps": 20}]})"; }
  auto old = load_calibration(path);
  ASSERT_TRUE(old.ok()) << old.error().message;
  ASSERT_TRUE(old->has_value());
  EXPECT_EQ((*old)->runs[0].bandwidth_gbs, 0);
  EXPECT_EQ(run_bandwidth_gbs(**old, (*old)->runs[0]), 40);
  { std::ofstream(path) << R"({"version": 1, "cpu": "cpu", "bandwidth_gbs": 40, "nominal_gflops": 100, "runs": [
      {"model": "/m/q4.gguf", "weight_type": "Q4_K", "n_layer": 14, "n_threads": 2, "n_prompt": 64,
       "decode_bytes": 500000000, "attn_elems": 0, "prompt_flops": 3e9, "gen_tps": 50, "prompt_tps": 20,
       "bandwidth_gbs": -3}]})"; }
  EXPECT_FALSE(load_calibration(path).ok());
  std::remove(path.c_str());
}

TEST(Devices, CustomProfileChecksItsInputs) {
  EXPECT_FALSE(custom_device(-1, 1, 8, 100, 2).ok());
  EXPECT_FALSE(custom_device(8, 1, 0, 100, 2).ok());
  EXPECT_FALSE(custom_device(8, 1, 8, 0, 2).ok());
  EXPECT_FALSE(custom_device(8, 0, 8, 100, 2).ok());
  auto d = custom_device(24, 2, 64, 900, 8);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->n_gpus, 2);
  EXPECT_EQ(d->gpu.memory_bytes, uint64_t(24e9));
  auto local = local_device({0, nullptr, false});
  ASSERT_TRUE(local.ok()) << local.error().message;
  EXPECT_GT(local->ram_bytes, 0u);
  EXPECT_EQ(local->n_gpus, 0);
}

}  // namespace
}  // namespace dhi::planner
