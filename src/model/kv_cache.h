// The KV cache: for each layer, K and V rows for n_ctx positions of each of
// n_seq sequences, allocated once. Layout per layer and tensor:
// [n_seq][n_head_kv][n_ctx][head_dim]: the positions of one KV head are
// contiguous, so attention, which reads one head's positions in order, reads
// one sequential stream per head (the hardware prefetcher follows it; with
// [n_ctx][n_head_kv * head_dim] rows a head's reads skip through memory).
//
// Elements are f32 by default: the fast path then computes exactly what the
// reference computes. F16 halves the memory (llama.cpp's default, and what the
// stories260K golden logits were produced with); keys and values are rounded
// to f16 when stored. Storage is per layer so a later layer placement can move
// a layer's cache to the device that runs the layer.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor_type.h"

namespace dhi::model {

struct KvLayerView {
  void* k = nullptr;
  void* v = nullptr;
  bool f16 = false;
  int64_t seq_stride = 0;   // elements between sequences
  int64_t head_stride = 0;  // elements between KV heads of a sequence (n_ctx * head_dim)
  int32_t head_dim = 0;     // elements per head and position (positions of a head are adjacent)
  int32_t n_head_kv = 0;
};

class KvCache {
 public:
  // type must be F32 or F16 (checked by Context::create).
  KvCache(int32_t n_layer, int32_t n_seq, uint32_t n_ctx, int32_t n_head_kv, int32_t head_dim, TensorType type)
      : n_seq_(n_seq), n_ctx_(n_ctx), n_head_kv_(n_head_kv), head_dim_(head_dim), f16_(type == TensorType::F16),
        sizes_(size_t(n_seq), 0) {
    const size_t per_layer = size_t(n_seq) * n_ctx * size_t(n_head_kv) * size_t(head_dim) * (f16_ ? 2 : 4);
    const size_t n_floats = per_layer / 4 + 1;  // float storage for alignment
    for (auto* caches : {&k_, &v_}) {
      for (int32_t l = 0; l < n_layer; ++l) {
        // On transparent huge pages where granted (the advice must precede the
        // first write): attention streams a head's positions every token, and
        // on 4 KB pages a long context costs a TLB miss every 16 positions.
        // Zeroed so unused rows are finite.
        caches->emplace_back(new float[n_floats]);
        advise_huge_pages(caches->back().get(), n_floats * sizeof(float));
        std::memset(caches->back().get(), 0, n_floats * sizeof(float));
      }
    }
  }

  KvLayerView layer(int32_t il) {
    const int64_t head_stride = int64_t(n_ctx_) * head_dim_;
    return {k_[size_t(il)].get(), v_[size_t(il)].get(), f16_, head_stride * n_head_kv_, head_stride, head_dim_,
            n_head_kv_};
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
  int32_t n_head_kv_, head_dim_;
  bool f16_;
  std::vector<int32_t> sizes_;
  std::vector<std::unique_ptr<float[]>> k_, v_;
};

}  // namespace dhi::model
