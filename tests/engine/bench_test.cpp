// The arithmetic behind `dhi bench`: medians and spreads, the bandwidth
// fraction, which weights a decode step reads (tied and untied output), the
// bandwidth measurement's argument checks and its child-process form.
#include <gtest/gtest.h>

#include "engine/bandwidth.h"
#include "engine/bench.h"
#include "gguf/reader.h"
#include "model/model.h"
#include "model/synth.h"

namespace dhi::engine {
namespace {

TEST(BenchStat, MedianMinMax) {
  BenchStat s = bench_stat({3.0, 1.0, 2.0});
  EXPECT_EQ(s.median, 2.0);
  EXPECT_EQ(s.min, 1.0);
  EXPECT_EQ(s.max, 3.0);
  s = bench_stat({4.0, 1.0, 2.0, 10.0});
  EXPECT_EQ(s.median, 3.0);
  EXPECT_EQ(s.max, 10.0);
  s = bench_stat({5.0});
  EXPECT_EQ(s.median, 5.0);
  EXPECT_EQ(s.min, 5.0);
  s = bench_stat({});
  EXPECT_EQ(s.median, 0.0);
}

TEST(BenchStat, BandwidthFraction) {
  // 1 GB per token at 10 tok/s on a 20 GB/s machine: half the bandwidth.
  EXPECT_DOUBLE_EQ(bandwidth_fraction(1000000000, 10.0, 20.0), 0.5);
  EXPECT_EQ(bandwidth_fraction(1000000000, 10.0, 0.0), 0.0);
}

// Bytes of every tensor of a model file but the ones named.
uint64_t bytes_except(const gguf::GgufFile& f, std::initializer_list<std::string_view> skip) {
  uint64_t total = 0;
  for (const gguf::TensorInfo& t : f.tensors()) {
    bool skipped = false;
    for (std::string_view s : skip) skipped |= t.name == s;
    if (!skipped) total += t.n_bytes;
  }
  return total;
}

TEST(DecodeWeightBytes, SkipsTheGatheredEmbeddingUnlessTied) {
  for (bool tied : {false, true}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    model::SynthSpec s;
    s.arch = "llama";
    s.n_embd = 64;
    s.n_ff = 96;
    s.weight_type = TensorType::Q8_0;
    s.tied_output = tied;
    s.rope_freqs = true;  // read once at load, not per token
    auto w = model::synth_model(s);
    ASSERT_TRUE(w.ok()) << w.error().message;
    const std::vector<uint8_t> bytes = w->to_bytes();
    auto f = gguf::GgufFile::parse(bytes);
    ASSERT_TRUE(f.ok()) << f.error().message;
    auto m = model::Model::load(*f);
    ASSERT_TRUE(m.ok()) << m.error().message;
    // Tied: the table is the output matrix, read in full once per token.
    const uint64_t expected = tied ? bytes_except(*f, {"rope_freqs.weight"})
                                   : bytes_except(*f, {"token_embd.weight", "rope_freqs.weight"});
    EXPECT_EQ(decode_weight_bytes((*m)->weights()), expected);
  }
}

TEST(Bandwidth, RejectsBadParameters) {
  BandwidthParams p;
  p.passes = 0;
  EXPECT_FALSE(measure_read_bandwidth(p).ok());
  p = {};
  p.buffer_bytes = 1000;
  EXPECT_FALSE(measure_read_bandwidth(p).ok());
  p = {};
  p.n_threads = -1;
  EXPECT_FALSE(measure_read_bandwidth(p).ok());
}

TEST(Bandwidth, MeasuresEveryPass) {
  BandwidthParams p;
  p.buffer_bytes = 8u << 20;
  p.passes = 3;
  p.n_threads = 2;
  auto r = measure_read_bandwidth(p);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->pass_gbs.size(), 3u);
  EXPECT_EQ(r->n_threads, 2);
  EXPECT_EQ(r->buffer_bytes, 8u << 20);
  for (double g : r->pass_gbs) EXPECT_GT(g, 0.0);
  EXPECT_LE(r->min_gbs, r->median_gbs);
  EXPECT_LE(r->median_gbs, r->max_gbs);
}

TEST(Bandwidth, ChildProcessMeasuresWithoutRaisingOurPeakRss) {
  // The probe between benchmark repetitions must not count in the model's
  // peak RSS: a 512 MiB buffer filled in a child leaves ours where it was.
  const uint64_t before = peak_rss_bytes();
  if (before > (uint64_t(256) << 20)) GTEST_SKIP() << "this process already peaked at " << before << " bytes";
  BandwidthParams p;
  p.buffer_bytes = uint64_t(512) << 20;
  p.passes = 3;
  p.n_threads = 2;
  auto r = measure_read_bandwidth_in_child(p);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->pass_gbs.size(), 3u);
  EXPECT_EQ(r->n_threads, 2);
  EXPECT_EQ(r->buffer_bytes, p.buffer_bytes);
  for (double g : r->pass_gbs) EXPECT_GT(g, 0.0);
  EXPECT_LE(r->min_gbs, r->median_gbs);
  EXPECT_LE(r->median_gbs, r->max_gbs);
  EXPECT_LT(peak_rss_bytes(), before + (uint64_t(64) << 20));

  // The child's error comes back as ours.
  p.passes = 0;
  auto bad = measure_read_bandwidth_in_child(p);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("passes"), std::string::npos) << bad.error().message;
}

TEST(BenchRun, SteadyWhenItsProbesAgree) {
  BenchRun r;
  EXPECT_FALSE(r.bandwidth_steady());  // no bandwidth at all
  r.bandwidth_before_gbs = 36;
  r.bandwidth_after_gbs = 38;
  EXPECT_DOUBLE_EQ(r.bandwidth_gbs(), 37);
  EXPECT_TRUE(r.bandwidth_steady());
  r.bandwidth_after_gbs = 64;  // the host switched level during the run
  EXPECT_FALSE(r.bandwidth_steady());
}

}  // namespace
}  // namespace dhi::engine
