// Shape-faithful random-weight models of the real targets, for `dhi synth` and
// the benchmarks: the presets' hyperparameters (taken from each model's Hugging
// Face config.json), the per-tensor weight types of a quantization mix (Q4_K_M
// follows llama.cpp's rule), and a generator that writes a multi-gigabyte model
// straight to disk: tensor by tensor, each drawn in parallel chunks whose random
// streams depend only on (seed, tensor, chunk), so the bytes are the same for any
// thread count. Quantized weights are drawn as random blocks directly (random
// quants, scales set for the target standard deviation) instead of quantizing
// random floats, which would take minutes per billion weights.
//
// The weights follow synth.h's scales (matrices ~ 1/sqrt(fan_in), norms ~ 1,
// nonzero biases) with uniform rather than normal draws: the same variance,
// much cheaper to draw.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.h"
#include "core/tensor_type.h"
#include "gguf/reader.h"
#include "model/synth.h"

namespace dhi::model {

struct SynthPreset {
  std::string_view name;
  std::string_view source;  // the Hugging Face repository whose config.json gave the shapes
  std::string_view arch;    // llama, qwen2, qwen3
  int32_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
  int32_t n_vocab;  // the embedding rows (config vocab_size, padded in the real files)
  uint32_t n_ctx_train;
  float rms_eps, rope_base;
  bool llama3_rope;  // Llama 3.1 rope scaling (factor 8, low 1, high 4, original context 8192)
};

std::span<const SynthPreset> synth_presets();
const SynthPreset* find_synth_preset(std::string_view name);

// The weight types of a model: a plain type (every matrix, token embedding and
// output included, of that type: what a straight F16/Q8_0 conversion gives) or
// one of llama.cpp's K-quant file types, whose per-tensor rules (llama.cpp's
// llama_tensor_get_type, for dense non-Falcon models) are:
//   Q2_K:   Q2_K; attn_v Q4_K (Q3_K when fewer than 4 query heads share a KV
//           head), ffn_down and attn_output Q3_K;
//   Q3_K_M: Q3_K; attn_v Q5_K in the first 2 layers, else Q4_K; ffn_down Q5_K in
//           the first 1/16 of the layers, else Q4_K; attn_output Q4_K;
//   Q4_K_M, Q5_K_M: Q4_K / Q5_K; Q6_K for attn_v and ffn_down in the layers
//           use_more_bits() picks;
//   all K mixes (Q6_K included): output.weight Q6_K, token_embd the base type;
//   70B models (80 layers): an attn_v that would be Q3_K or Q4_K gets Q5_K.
enum class MixRule { Plain, Q2_K, Q3_K_M, Q4_K_M, Q5_K_M, Q6_K };
struct QuantMix {
  std::string name;
  TensorType base = TensorType::F16;
  MixRule rule = MixRule::Plain;
};
// F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q3_K, Q4_K, Q5_K (plain), Q2_K,
// Q3_K_M, Q4_K_M, Q5_K_M, Q6_K (llama.cpp's mixes).
Expected<QuantMix> parse_quant_mix(std::string_view name);

// llama.cpp's choice of layers that get more bits in the _M mixes: the first
// and last eighth of the layers and every third layer in between.
bool use_more_bits(int32_t i_layer, int32_t n_layer);

// The type of matrix `tensor_name` ("blk.<i>.ffn_down.weight", "output.weight", ...)
// in a model of n_layer layers whose query heads share KV heads n_gqa to one.
TensorType mix_tensor_type(const QuantMix& mix, std::string_view tensor_name, int32_t n_layer,
                           int32_t n_gqa = 1);

// Llama 3.1's rope frequency divisors (rope_freqs.weight: n_rot/2 values).
std::vector<float> llama3_rope_freqs(int32_t n_rot, float rope_base, float factor = 8.0f, float low_freq = 1.0f,
                                     float high_freq = 4.0f, uint32_t orig_ctx = 8192);

// What synth.h's SynthSpec does not carry.
struct SynthFileOptions {
  // With a vocab source smaller than this, the vocabulary is padded with unused
  // tokens "[PAD<id>]" to this size (the real 7B's 152064 embedding rows).
  int32_t n_vocab_min = 0;
  // Written as rope_freqs.weight when not empty (replaces spec.rope_freqs's ramp).
  std::vector<float> rope_freqs;
  int32_t n_threads = 0;  // 0: all cores
};

// The spec of a preset: its shapes (n_layer_override > 0 keeps only that many
// layers, for tests), the mix's types, the vocab source (required: tokenizer
// keys and chat template come from it) and seed.
Expected<SynthSpec> preset_spec(const SynthPreset& preset, const QuantMix& mix, const gguf::GgufFile& vocab,
                                int32_t n_layer_override, uint64_t seed);
SynthFileOptions preset_file_options(const SynthPreset& preset, const SynthSpec& spec);

struct SynthFileInfo {
  uint64_t file_bytes = 0, n_tensors = 0, n_params = 0;
  int32_t n_vocab = 0;
};

// Writes the model `spec` describes (synth.h's tensor set; random weights per
// the comment at the top) to `path`, streaming: memory stays at a few chunks.
Expected<SynthFileInfo> write_synth_model(const SynthSpec& spec, const SynthFileOptions& opts,
                                          const std::string& path);

}  // namespace dhi::model
