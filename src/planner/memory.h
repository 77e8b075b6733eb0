// The memory model: bytes of each part of a model's footprint on a device.
// Weights come exactly from ModelDesc. The rest is modelled on what an engine
// really allocates:
//
// - KV cache: 2 (K and V) x layers x n_seq x n_ctx x kv_dim elements of the
//   cache type (F32 and F16 in dhi's CPU engine; Q8_0 rows of 32-element blocks
//   of 34 bytes for a CUDA engine), exactly model::KvCache's allocation.
// - CPU compute (dhi's engine, model/blocks.h, context.cpp, kernels/cpu): the
//   forward pass's activation buffers for one micro-batch of n_ubatch tokens
//   (x, xn, tmp: n_embd; q, attn: q_dim; k, v: kv_dim; gate, up: n_ff; all f32),
//   the quantized activations matmul keeps for the widest input (n_ff columns of
//   the weights' activation type), the logits of the last token of each sequence
//   (n_vocab f32), one attention score row per thread (n_ctx f32) and the f16
//   conversion table (256 KiB) when F16 weights or cache are read.
// - GPU compute (a CUDA engine of llama.cpp's kind, without flash attention):
//   per micro-batch the residual stream and FFN hidden states (n_ubatch x
//   (4 n_embd + 2 n_ff) f32), the attention score matrix (n_head x n_ubatch x
//   n_ctx f32), the logits, and one weight matrix dequantized to f16 for the
//   cuBLAS prefill path (the largest: n_embd x n_ff).
// - Runtime overhead. CPU (dhi): the process itself (code, libc/libstdc++, the
//   shared libraries of the HTTP stack — libcurl with its TLS, HTTP/2 and
//   Kerberos dependencies, OpenSSL, cpp-httplib —, allocator arenas, PCRE2's
//   JIT code and thread stacks: kProcessBaseBytes, the peak RSS of a `dhi run`
//   of stories260K at a 64-token context less its modelled parts; `dhi
//   --version` alone is 13 MiB), the GGUF header pages the
//   parser reads, and the parsed metadata and tokenizer tables (per token of the
//   vocabulary, measured). GPU: the CUDA context with cuBLAS handles and
//   workspace (kCudaContextBytes: 300-400 MiB on Turing/Pascal with CUDA 12
//   module lazy loading, per nvidia-smi around context creation) plus 2%
//   allocator slack (buffer alignment, 2 MiB allocation granularity).
#pragma once

#include <cstdint>

#include "core/tensor_type.h"
#include "planner/model_desc.h"

namespace dhi::planner {

inline constexpr uint64_t kProcessBaseBytes = 15ull << 20;
inline constexpr uint64_t kTokenizerBytesPerToken = 300;
inline constexpr uint64_t kCudaContextBytes = 384ull << 20;
inline constexpr double kGpuAllocatorSlack = 0.02;

struct MemoryBreakdown {
  uint64_t weights = 0, kv_cache = 0, compute = 0, overhead = 0;
  uint64_t total() const { return weights + kv_cache + compute + overhead; }
  MemoryBreakdown& operator+=(const MemoryBreakdown& o);
};

struct ComputeShape {
  uint32_t n_ctx = 0;
  int32_t n_seq = 1;
  int32_t n_ubatch = 512;
  int32_t n_threads = 1;
  TensorType kv_type = TensorType::F32;
};

// KV cache of n_layers layers (F32, F16 or Q8_0).
uint64_t kv_cache_bytes(const ModelDesc& m, int32_t n_layers, uint32_t n_ctx, int32_t n_seq, TensorType kv_type);
// KV bytes one decode step reads at cache position n_pos, over n_layers layers.
uint64_t kv_read_bytes(const ModelDesc& m, int32_t n_layers, uint32_t n_pos, TensorType kv_type);

uint64_t cpu_compute_bytes(const ModelDesc& m, const ComputeShape& s);
uint64_t gpu_compute_bytes(const ModelDesc& m, const ComputeShape& s);

// dhi's process, header and tokenizer (once per process, on the host).
uint64_t cpu_runtime_overhead(const ModelDesc& m);
// CUDA context and allocator slack on one GPU holding `allocated` bytes.
uint64_t gpu_runtime_overhead(uint64_t allocated);

// Cached K and V elements one decode step's attention visits at position n_pos
// over n_layers layers (each query head reads its KV head's rows).
double attention_elements(const ModelDesc& m, int32_t n_layers, uint32_t n_pos);

// FLOPs of one token at cache position n_pos: 2 per weight multiply-add of the
// matrices plus the attention dot products (QK^T and AV: 4 x q_dim x n_pos per layer).
double token_flops(const ModelDesc& m, uint32_t n_pos);

}  // namespace dhi::planner
