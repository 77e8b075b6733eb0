// Backend implementation over the CPU kernels in kernels/cpu, sharing one
// thread pool for every operation.
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/ops.h"
#include "model/backend.h"

namespace dhi::model {

namespace {

namespace kc = kernels::cpu;

kc::WeightMatrix as_matrix(const TensorView& w) {
  return {w.data, w.type, w.ne0, w.ne1, w.row_bytes,
          w.interleaved ? kc::WeightLayout::Interleaved : kc::WeightLayout::Rows};
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int32_t n_threads) : pool_(n_threads) {}
  std::string_view name() const override { return "cpu"; }

  void get_rows(const TensorView& w, std::span<const int32_t> ids, float* out) override {
    kc::get_rows(pool_, as_matrix(w), ids.data(), int64_t(ids.size()), out);
  }
  void matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y) override {
    kc::matmul(pool_, as_matrix(w), x, n_tokens, y);
  }
  void matmul_multi(std::span<const MatmulOut> outs, const float* x, int64_t n_tokens) override {
    targets_.clear();
    for (const MatmulOut& o : outs) targets_.push_back({as_matrix(*o.w), o.y});
    kc::matmul_multi(pool_, targets_, x, n_tokens);
  }
  void rms_norm(const float* x, const TensorView& w, int64_t n_rows, float eps, float* y) override {
    kc::rms_norm(pool_, x, w.f32(), n_rows, w.ne0, eps, y);
  }
  void add_bias(float* y, const TensorView& b, int64_t n_rows) override {
    kc::add_bias(y, b.f32(), n_rows, b.ne0);
  }
  void add(float* y, const float* x, int64_t n) override { kc::add(y, x, n); }
  void matmul_swiglu(const TensorView& gate_w, const TensorView& up_w, const float* x, int64_t n_tokens, float* gate,
                     float* up) override {
    kc::matmul_swiglu(pool_, as_matrix(gate_w), as_matrix(up_w), x, n_tokens, gate, up);
  }
  void rope(float* x, int64_t n_tokens, int32_t n_heads, int32_t head_dim, std::span<const int32_t> positions,
            const RopeConfig& rc) override {
    kc::RopeParams p;
    p.pairing = rc.style == RopeStyle::Norm ? kc::RopePairing::Adjacent : kc::RopePairing::Half;
    p.n_rot = rc.n_rot;
    p.base = rc.base;
    p.freq_scale = rc.freq_scale;
    p.freq_factors = rc.freq_factors;
    kc::rope(pool_, x, n_tokens, n_heads, head_dim, positions.data(), p);
  }
  void kv_store(const KvLayerView& kv, const float* k, const float* v, std::span<const int32_t> seq_ids,
                std::span<const int32_t> positions) override {
    // Token t's row [n_head_kv][head_dim] goes to each head's run of positions.
    const size_t hd = size_t(kv.head_dim), n = hd * size_t(kv.n_head_kv);
    for (size_t t = 0; t < seq_ids.size(); ++t) {
      for (int32_t h = 0; h < kv.n_head_kv; ++h) {
        const int64_t off =
            int64_t(seq_ids[t]) * kv.seq_stride + h * kv.head_stride + int64_t(positions[t]) * kv.head_dim;
        const size_t src = t * n + size_t(h) * hd;
        if (kv.f16) {
          kc::f32_to_f16_row(k + src, static_cast<uint16_t*>(kv.k) + off, int64_t(hd));
          kc::f32_to_f16_row(v + src, static_cast<uint16_t*>(kv.v) + off, int64_t(hd));
        } else {
          std::memcpy(static_cast<float*>(kv.k) + off, k + src, hd * sizeof(float));
          std::memcpy(static_cast<float*>(kv.v) + off, v + src, hd * sizeof(float));
        }
      }
    }
  }
  void attention(const KvLayerView& kv, const float* q, int32_t n_head, int32_t n_head_kv, int32_t head_dim,
                 std::span<const int32_t> seq_ids, std::span<const int32_t> positions, float* out) override {
    kc::AttentionArgs a;
    a.q = q;
    a.out = out;
    a.n_tokens = int64_t(seq_ids.size());
    a.n_head = n_head;
    a.n_head_kv = n_head_kv;
    a.head_dim = head_dim;
    a.k_cache = kv.k;
    a.v_cache = kv.v;
    a.kv_f16 = kv.f16;
    a.seq_stride = kv.seq_stride;
    a.head_stride = kv.head_stride;
    a.pos_stride = kv.head_dim;
    a.seq_ids = seq_ids.data();
    a.positions = positions.data();
    a.scale = 1.0f / std::sqrt(float(head_dim));
    kc::attention(pool_, a);
  }

 private:
  ThreadPool pool_;
  std::vector<kc::MatmulTarget> targets_;  // matmul_multi's list, reused across calls
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int32_t n_threads) { return std::make_unique<CpuBackend>(n_threads); }

}  // namespace dhi::model
