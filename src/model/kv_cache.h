// The KV cache: for each layer, K and V rows (f32) for n_ctx positions of each
// of n_seq sequences, allocated once. Layout per layer and tensor:
// [n_seq][n_ctx][n_head_kv * head_dim], so a sequence's keys are contiguous and
// position p of sequence s is row s * n_ctx + p. f32 keeps the fast path
// bit-comparable with the reference; an f16 cache is a later memory option.
// Storage is per layer so a later layer placement can move a layer's cache to
// the device that runs the layer.
#pragma once

#include <cstdint>
#include <vector>

namespace dhi::model {

struct KvLayerView {
  float* k = nullptr;
  float* v = nullptr;
  int64_t seq_stride = 0;  // floats between sequences
  int32_t kv_dim = 0;      // floats per position
};

class KvCache {
 public:
  KvCache(int32_t n_layer, int32_t n_seq, uint32_t n_ctx, int32_t kv_dim)
      : n_seq_(n_seq), n_ctx_(n_ctx), kv_dim_(kv_dim), sizes_(size_t(n_seq), 0) {
    const size_t per_layer = size_t(n_seq) * n_ctx * size_t(kv_dim);
    k_.resize(size_t(n_layer));
    v_.resize(size_t(n_layer));
    for (int32_t l = 0; l < n_layer; ++l) {
      k_[size_t(l)].assign(per_layer, 0.0f);
      v_[size_t(l)].assign(per_layer, 0.0f);
    }
  }

  KvLayerView layer(int32_t il) {
    return {k_[size_t(il)].data(), v_[size_t(il)].data(), int64_t(n_ctx_) * kv_dim_, kv_dim_};
  }
  int32_t n_seq() const { return n_seq_; }
  uint32_t n_ctx() const { return n_ctx_; }
  // Positions [0, size) of seq hold valid keys and values.
  int32_t size(int32_t seq) const { return sizes_[size_t(seq)]; }
  void set_size(int32_t seq, int32_t n) { sizes_[size_t(seq)] = n; }

  static uint64_t bytes(int32_t n_layer, int32_t n_seq, uint32_t n_ctx, int32_t kv_dim) {
    return 2ull * uint64_t(n_layer) * uint64_t(n_seq) * n_ctx * uint64_t(kv_dim) * sizeof(float);
  }

 private:
  int32_t n_seq_;
  uint32_t n_ctx_;
  int32_t kv_dim_;
  std::vector<int32_t> sizes_;
  std::vector<std::vector<float>> k_, v_;
};

}  // namespace dhi::model
