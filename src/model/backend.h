// The operations the forward pass is built from. Model code (blocks.cpp and
// the architecture files) calls only these, so a CUDA backend, or a different
// backend per layer range, can be slotted in without touching the model code.
// Today all buffers are host f32 arrays; a device backend will keep its
// activations resident and sync at the layer-range boundary.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "model/kv_cache.h"
#include "model/model.h"

namespace dhi::model {

struct RopeConfig {
  RopeStyle style = RopeStyle::Norm;
  int32_t n_rot = 0;
  float base = 10000.0f;
  float freq_scale = 1.0f;              // 1 / linear scaling factor
  const float* freq_factors = nullptr;  // n_rot/2 divisors or null
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;

  // out[i] = row ids[i] of the embedding table, as f32 ([n][w.ne0]).
  virtual void get_rows(const TensorView& w, std::span<const int32_t> ids, float* out) = 0;
  // y[t][r] = w[r] . x[t] for t < n_tokens (x: [n_tokens][w.ne0], y: [n_tokens][w.ne1]).
  virtual void matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y) = 0;
  // RMS norm of n_rows rows of w.ne0 elements, scaled by w (f32). x may equal y.
  virtual void rms_norm(const float* x, const TensorView& w, int64_t n_rows, float eps, float* y) = 0;
  // y[r][i] += b[i] over n_rows rows of b.ne0 elements.
  virtual void add_bias(float* y, const TensorView& b, int64_t n_rows) = 0;
  virtual void add(float* y, const float* x, int64_t n) = 0;
  // gate = silu(gate) * up, element-wise over n.
  virtual void silu_mul(float* gate, const float* up, int64_t n) = 0;
  // Rotates every head of x ([n_tokens][n_heads * head_dim]) by its token's position.
  virtual void rope(float* x, int64_t n_tokens, int32_t n_heads, int32_t head_dim,
                    std::span<const int32_t> positions, const RopeConfig& rc) = 0;
  // Writes k and v ([n_tokens][kv_dim]) into the cache at (seq_ids[t], positions[t]).
  virtual void kv_store(const KvLayerView& kv, const float* k, const float* v,
                        std::span<const int32_t> seq_ids, std::span<const int32_t> positions) = 0;
  // Causal attention: query t sees cache positions 0..positions[t] of seq_ids[t].
  virtual void attention(const KvLayerView& kv, const float* q, int32_t n_head, int32_t n_head_kv,
                         int32_t head_dim, std::span<const int32_t> seq_ids,
                         std::span<const int32_t> positions, float* out) = 0;
};

// The CPU backend over one persistent thread pool (n_threads 0 = all cores).
std::unique_ptr<Backend> make_cpu_backend(int32_t n_threads);

}  // namespace dhi::model
