// Tiny random models for tests and `dhi synth`: a complete GGUF (metadata,
// tokenizer keys, every tensor an architecture needs) with weights drawn so
// activations stay O(1) through the layers: matrices ~ N(0, 1/fan_in), norm
// weights ~ 1 + small noise, biases clearly nonzero. Norms, biases and rope
// factors stay F32; matrices take the chosen type.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/expected.h"
#include "core/tensor_type.h"
#include "gguf/reader.h"
#include "gguf/writer.h"

namespace dhi::model {

struct SynthSpec {
  std::string arch = "llama";  // llama, qwen2 (q/k/v biases), qwen3 (q/k norms)
  int32_t n_vocab = 64;        // ignored when vocab_source is set
  int32_t n_embd = 64, n_layer = 2, n_head = 4, n_head_kv = 2;
  int32_t head_dim = 0;  // 0 = n_embd / n_head
  int32_t n_ff = 128;
  uint32_t n_ctx_train = 512;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  float rope_scale_linear = 0.0f;  // > 0: write rope.scaling.type linear with this factor
  TensorType weight_type = TensorType::F32;
  // Optional per-tensor override for matrices (token_embd, attn_*, ffn_*, output).
  std::function<TensorType(const std::string& tensor_name)> type_for;
  bool tied_output = false;  // omit output.weight
  bool rope_freqs = false;   // add a rope_freqs.weight tensor (Llama 3.1 style)
  uint64_t seed = 1;
  // When set, its tokenizer.* keys (vocab, merges, chat template, special ids)
  // are copied and n_vocab is the size of its tokenizer.ggml.tokens.
  const gguf::GgufFile* vocab_source = nullptr;
};

Expected<gguf::GgufWriter> synth_model(const SynthSpec& spec);

}  // namespace dhi::model
