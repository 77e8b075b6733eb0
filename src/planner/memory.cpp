// The memory model's formulas (see memory.h for what each term stands for).
#include "planner/memory.h"

#include <algorithm>

#include "quant/quant.h"

namespace dhi::planner {

namespace {

uint64_t kv_row_bytes(const ModelDesc& m, TensorType kv_type) {
  const uint64_t kv_dim = uint64_t(m.kv_dim());
  switch (kv_type) {
    case TensorType::F16: return 2 * kv_dim;
    case TensorType::Q8_0: return row_bytes(TensorType::Q8_0, kv_dim).value_or(kv_dim * 34 / 32 + 34);
    default: return 4 * kv_dim;
  }
}

// Bytes per element of the quantized activations matmul keeps for a weight type.
double act_bytes_per_element(TensorType weight_type) {
  const QuantTraits* qt = quant_traits(weight_type);
  if (!qt || qt->vec_dot_type == TensorType::F32) return 0;
  const TensorTypeInfo ti = type_info(qt->vec_dot_type);
  return double(ti.block_bytes) / double(ti.block_size);
}

}  // namespace

MemoryBreakdown& MemoryBreakdown::operator+=(const MemoryBreakdown& o) {
  weights += o.weights;
  kv_cache += o.kv_cache;
  compute += o.compute;
  overhead += o.overhead;
  return *this;
}

uint64_t kv_cache_bytes(const ModelDesc& m, int32_t n_layers, uint32_t n_ctx, int32_t n_seq, TensorType kv_type) {
  return 2ull * uint64_t(n_layers) * uint64_t(n_seq) * uint64_t(n_ctx) * kv_row_bytes(m, kv_type);
}

uint64_t kv_read_bytes(const ModelDesc& m, int32_t n_layers, uint32_t n_pos, TensorType kv_type) {
  return 2ull * uint64_t(n_layers) * uint64_t(n_pos) * kv_row_bytes(m, kv_type);
}

uint64_t cpu_compute_bytes(const ModelDesc& m, const ComputeShape& s) {
  const uint64_t nb = uint64_t(std::max(1, s.n_ubatch));
  const uint64_t E = uint64_t(m.n_embd), Q = uint64_t(m.q_dim()), KV = uint64_t(m.kv_dim()), F = uint64_t(m.n_ff);
  uint64_t bytes = nb * (3 * E + 2 * Q + 2 * KV + 2 * F) * 4;
  bytes += uint64_t(double(nb * std::max(F, std::max(E, Q))) * act_bytes_per_element(m.dominant_type()));
  bytes += uint64_t(s.n_seq) * (uint64_t(m.n_vocab) + E) * 4;
  bytes += uint64_t(std::max(1, s.n_threads)) * s.n_ctx * 4;
  const bool f16 = s.kv_type == TensorType::F16 || m.dominant_type() == TensorType::F16;
  if (f16) bytes += 65536 * 4;
  return bytes;
}

uint64_t gpu_compute_bytes(const ModelDesc& m, const ComputeShape& s) {
  const uint64_t nb = uint64_t(std::max(1, s.n_ubatch));
  const uint64_t E = uint64_t(m.n_embd), F = uint64_t(m.n_ff);
  uint64_t bytes = nb * (4 * E + 2 * F) * 4;
  bytes += uint64_t(m.n_head) * nb * s.n_ctx * 4;
  bytes += uint64_t(s.n_seq) * uint64_t(m.n_vocab) * 4;
  bytes += E * F * 2;
  return bytes;
}

uint64_t cpu_runtime_overhead(const ModelDesc& m) {
  return kProcessBaseBytes + m.header_bytes + kTokenizerBytesPerToken * m.n_tokenizer_tokens;
}

uint64_t gpu_runtime_overhead(uint64_t allocated) {
  return kCudaContextBytes + uint64_t(double(allocated) * kGpuAllocatorSlack);
}

double attention_elements(const ModelDesc& m, int32_t n_layers, uint32_t n_pos) {
  return 2.0 * double(n_layers) * double(m.n_head) * double(m.head_dim) * double(n_pos);
}

double token_flops(const ModelDesc& m, uint32_t n_pos) {
  return 2.0 * double(m.matmul_params()) + 4.0 * double(m.n_layer) * double(m.q_dim()) * double(n_pos);
}

}  // namespace dhi::planner
