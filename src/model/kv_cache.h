// The KV cache: for each layer, K and V rows for n_ctx positions of each of
// n_seq sequences, allocated once. Layout per layer and tensor:
// [n_seq][n_ctx][n_head_kv * head_dim], so a sequence's keys are contiguous and
// position p of sequence s is row s * n_ctx + p.
//
// Elements are f32 by default: the fast path then computes exactly what the
// reference computes. F16 halves the memory (llama.cpp's default, and what the
// stories260K golden logits were produced with); keys and values are rounded
// to f16 when stored. Storage is per layer so a later layer placement can move
// a layer's cache to the device that runs the layer.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor_type.h"

namespace dhi::model {

struct KvLayerView {
  void* k = nullptr;
  void* v = nullptr;
  bool f16 = false;
  int64_t seq_stride = 0;  // elements between sequences
  int32_t kv_dim = 0;      // elements per position
};

class KvCache {
 public:
  // type must be F32 or F16 (checked by Context::create).
  KvCache(int32_t n_layer, int32_t n_seq, uint32_t n_ctx, int32_t kv_dim, TensorType type)
      : n_seq_(n_seq), n_ctx_(n_ctx), kv_dim_(kv_dim), f16_(type == TensorType::F16), sizes_(size_t(n_seq), 0) {
    const size_t per_layer = size_t(n_seq) * n_ctx * size_t(kv_dim) * (f16_ ? 2 : 4);
    k_.resize(size_t(n_layer));
    v_.resize(size_t(n_layer));
    for (int32_t l = 0; l < n_layer; ++l) {
      // Zeroed so unused rows are finite; float storage for alignment.
      k_[size_t(l)].assign(per_layer / 4 + 1, 0.0f);
      v_[size_t(l)].assign(per_layer / 4 + 1, 0.0f);
    }
  }

  KvLayerView layer(int32_t il) {
    return {k_[size_t(il)].data(), v_[size_t(il)].data(), f16_, int64_t(n_ctx_) * kv_dim_, kv_dim_};
  }
  int32_t n_seq() const { return n_seq_; }
  uint32_t n_ctx() const { return n_ctx_; }
  bool f16() const { return f16_; }
  // Positions [0, size) of seq hold valid keys and values.
  int32_t size(int32_t seq) const { return sizes_[size_t(seq)]; }
  void set_size(int32_t seq, int32_t n) { sizes_[size_t(seq)] = n; }

  static uint64_t bytes(int32_t n_layer, int32_t n_seq, uint32_t n_ctx, int32_t kv_dim, TensorType type) {
    const uint64_t elem = type == TensorType::F16 ? 2 : 4;
    return 2ull * uint64_t(n_layer) * uint64_t(n_seq) * n_ctx * uint64_t(kv_dim) * elem;
  }

 private:
  int32_t n_seq_;
  uint32_t n_ctx_;
  int32_t kv_dim_;
  bool f16_;
  std::vector<int32_t> sizes_;
  std::vector<std::vector<float>> k_, v_;
};

}  // namespace dhi::model
