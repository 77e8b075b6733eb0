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

// One product of Backend::matmul_multi: y ([n_tokens][w->ne1]) = w times the shared input.
struct MatmulOut {
  const TensorView* w = nullptr;
  float* y = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;

  // out[i] = row ids[i] of the embedding table, as f32 ([n][w.ne0]).
  virtual void get_rows(const TensorView& w, std::span<const int32_t> ids, float* out) = 0;
  // y[t][r] = w[r] . x[t] for t < n_tokens (x: [n_tokens][w.ne0], y: [n_tokens][w.ne1]).
  virtual void matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y) = 0;
  // matmul of one input x ([n_tokens][ne0]) by several matrices of ne0 columns
  // (Q, K and V; gate and up), each output as matmul gives it. A backend shares
  // the work on the input (its conversion, the launch or the threads' start
  // and barrier) across the matrices.
  virtual void matmul_multi(std::span<const MatmulOut> outs, const float* x, int64_t n_tokens) = 0;
  // RMS norm of n_rows rows of w.ne0 elements, scaled by w (f32). x may equal y.
  virtual void rms_norm(const float* x, const TensorView& w, int64_t n_rows, float eps, float* y) = 0;
  // y[r][i] += b[i] over n_rows rows of b.ne0 elements.
  virtual void add_bias(float* y, const TensorView& b, int64_t n_rows) = 0;
  virtual void add(float* y, const float* x, int64_t n) = 0;
  // The SwiGLU FFN's input half: gate = silu(gate_w x) * (up_w x) and
  // up = up_w x (each [n_tokens][gate_w.ne1]), as matmul_multi over both
  // matrices and then silu(gate) * up element by element would give them. A
  // backend applies the SwiGLU to rows as they come out of the products.
  virtual void matmul_swiglu(const TensorView& gate_w, const TensorView& up_w, const float* x, int64_t n_tokens,
                             float* gate, float* up) = 0;
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
