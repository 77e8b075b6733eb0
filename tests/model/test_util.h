// Helpers shared by the model tests: opening shared models, building synthetic
// models in memory, and comparing logits.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gguf/reader.h"
#include "model/context.h"
#include "model/model.h"
#include "model/synth.h"

namespace dhi::model::test {

inline std::string shared_model(const std::string& name) { return std::string(DHI_SHARED_DIR) + "/models/" + name; }

// A synthetic model parsed from bytes held alongside it.
struct SynthFile {
  std::vector<uint8_t> bytes;
  std::unique_ptr<gguf::GgufFile> file;
};

// A tiny qwen2 model (2 layers, 64 wide, Q8_0, tied output) with the
// vocabulary and chat template of `vocab`: what the CLI and server tests run
// the real DeepSeek-R1-Distill-Qwen tokenizer through.
inline SynthSpec tiny_r1_spec(const gguf::GgufFile& vocab, uint32_t n_ctx_train) {
  SynthSpec spec;
  spec.arch = "qwen2";
  spec.n_embd = 64;
  spec.n_layer = 2;
  spec.n_head = 4;
  spec.n_head_kv = 2;
  spec.n_ff = 128;
  spec.n_ctx_train = n_ctx_train;
  spec.weight_type = TensorType::Q8_0;
  spec.tied_output = true;
  spec.vocab_source = &vocab;
  return spec;
}

inline SynthFile make_synth(const SynthSpec& spec) {
  SynthFile s;
  auto w = synth_model(spec);
  EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().message);
  if (!w.ok()) return s;
  s.bytes = w->to_bytes();
  auto f = gguf::GgufFile::parse(s.bytes);
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
  if (f.ok()) s.file = std::make_unique<gguf::GgufFile>(std::move(f).value());
  return s;
}

inline int32_t argmax(std::span<const float> v) {
  return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}

// Runs `prompt` as one prefill batch, then greedy-decodes n_predict tokens one
// at a time. Returns the generated ids; all_logits (if given) gets the logits
// that chose each generated token.
inline std::vector<int32_t> greedy(Context& ctx, const std::vector<int32_t>& prompt, int n_predict, int32_t seq = 0,
                                   std::vector<std::vector<float>>* all_logits = nullptr) {
  Batch b;
  for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], int32_t(i), seq, i + 1 == prompt.size());
  std::vector<int32_t> out;
  Status st = ctx.decode(b);
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
  if (!st.ok()) return out;
  std::span<const float> lg = ctx.logits(b.size() - 1);
  int32_t pos = int32_t(prompt.size());
  for (int i = 0; i < n_predict; ++i) {
    if (all_logits) all_logits->emplace_back(lg.begin(), lg.end());
    const int32_t next = argmax(lg);
    out.push_back(next);
    if (i + 1 == n_predict) break;
    b.clear();
    b.add(next, pos++, seq, true);
    st = ctx.decode(b);
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
    if (!st.ok()) return out;
    lg = ctx.logits(0);
  }
  return out;
}

// RMS of a - b relative to the RMS of b.
inline double rel_rms_diff(std::span<const float> a, std::span<const float> b) {
  double err = 0.0, ref = 1e-30;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    err += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    ref += double(b[i]) * b[i];
  }
  return std::sqrt(err / ref);
}

// Largest |a - b| relative to the largest |b| (the logits' scale).
inline double max_rel_diff(std::span<const float> a, std::span<const float> b) {
  double scale = 1e-6, worst = 0.0;
  for (float x : b) scale = std::max(scale, double(std::fabs(x)));
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) worst = std::max(worst, double(std::fabs(a[i] - b[i])));
  return worst / scale;
}

}  // namespace dhi::model::test
