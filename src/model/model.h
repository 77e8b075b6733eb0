// The loaded model: hyperparameters read from GGUF metadata (ModelConfig) and
// views of every weight tensor (ModelWeights): inside the memory-mapped file,
// except the matrices that the CPU decode kernels read faster row-interleaved,
// which are permuted once at load into memory the Model owns (same size; the
// file pages they came from are released). The GgufFile must outlive the Model. Loading checks
// every tensor's presence, type and shape against the config, so the forward
// pass never meets a surprise.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/expected.h"
#include "core/tensor_type.h"
#include "gguf/reader.h"

namespace dhi::model {

enum class RopeStyle { Norm, Neox };  // Norm: adjacent pairs (Llama); Neox: halves (Qwen)

enum class RopeScaling { None, Linear, Llama3 };

struct ModelConfig {
  std::string arch;
  int32_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0;
  uint32_t n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  float rope_scale = 1.0f;  // linear factor: positions are divided by it
  RopeStyle rope_style = RopeStyle::Norm;
  bool qkv_bias = false, qk_norm = false, tied_output = false;

  int32_t n_rot = 0;  // rotated dims per head (<arch>.rope.dimension_count, default head_dim)
  RopeScaling rope_scaling = RopeScaling::None;
  // Llama 3.1 frequency smoothing, used when rope_scaling == Llama3 and the file
  // has no rope_freqs.weight tensor.
  float rope_llama3_factor = 1.0f, rope_llama3_low_freq = 1.0f, rope_llama3_high_freq = 4.0f;
  uint32_t rope_llama3_orig_ctx = 8192;
  bool has_rope_freqs = false;  // rope_freqs.weight present (Llama 3.1 GGUFs)

  int32_t q_dim() const { return n_head * head_dim; }
  int32_t kv_dim() const { return n_head_kv * head_dim; }
};

// Reads and validates the config of a supported architecture from metadata
// (tensor shapes fill in n_vocab and tied_output). Errors name the key.
Expected<ModelConfig> parse_config(const gguf::GgufFile& file);

// Per-frequency divisors for the rope angles (size n_rot/2), or empty when the
// model needs none: rope_freqs.weight if present, else computed from the Llama
// 3.1 scaling parameters.
std::vector<float> rope_freq_factors(const gguf::GgufFile& file, const ModelConfig& cfg);

// A tensor inside the mapping, or a matrix interleaved at load. For a matrix,
// ne0 is the row length (input features) and ne1 the number of rows (output
// features).
struct TensorView {
  const void* data = nullptr;
  TensorType type = TensorType::F32;
  int64_t ne0 = 0, ne1 = 1;
  uint64_t row_bytes = 0;
  // Rows stored in the CPU decode kernels' row-interleaved layout
  // (kernels/cpu/dot/interleave.h) in memory the Model owns, not in the file's.
  bool interleaved = false;
  const float* f32() const { return static_cast<const float*>(data); }
};

struct LayerWeights {
  TensorView attn_norm;               // [n_embd]
  TensorView wq, wk, wv;              // [n_embd -> q_dim], [n_embd -> kv_dim] x2
  TensorView bq, bk, bv;              // biases (qkv_bias only)
  TensorView q_norm, k_norm;          // [head_dim] (qk_norm only)
  TensorView wo;                      // [q_dim -> n_embd]
  TensorView ffn_norm;                // [n_embd]
  TensorView ffn_gate, ffn_up;        // [n_embd -> n_ff]
  TensorView ffn_down;                // [n_ff -> n_embd]
};

struct ModelWeights {
  TensorView token_embd;  // [n_embd] x n_vocab rows
  std::vector<LayerWeights> layers;
  TensorView output_norm;  // [n_embd]
  TensorView output;       // [n_embd -> n_vocab]; token_embd when tied
  std::vector<float> rope_freq_factors;  // n_rot/2 or empty (small, owned)
};

struct LoadOptions {
  // Called with the fraction of weight bytes touched (prefaulted or
  // interleaved) so far.
  std::function<void(double fraction)> on_progress;
  // Interleave the matrices whose CPU decode kernel prefers it (on the ISA in
  // use); off, every weight stays in the file's layout.
  bool interleave = true;
};

class Model {
 public:
  // `file` must outlive the model. Unsupported arch → error listing supported
  // ones; an unsupported tensor type → error naming tensor and type.
  static Expected<std::unique_ptr<Model>> load(const gguf::GgufFile& file, const LoadOptions& opts = {});

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  uint64_t weight_bytes() const { return weight_bytes_; }
  // Bytes of weights held interleaved in owned memory (0 when none).
  uint64_t interleaved_bytes() const { return interleaved_bytes_; }
  static std::vector<std::string> supported_architectures();

 private:
  struct AlignedFree {
    void operator()(uint8_t* p) const;
  };
  Model() = default;
  ModelConfig config_;
  ModelWeights weights_;
  uint64_t weight_bytes_ = 0;
  uint64_t interleaved_bytes_ = 0;
  std::unique_ptr<uint8_t, AlignedFree> interleaved_;
};

}  // namespace dhi::model
