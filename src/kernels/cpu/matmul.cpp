// Weight-by-activation matrix multiplication and row lookup on the CPU.
//
// matmul runs the quantized dot kernels of kernels/cpu/dot: the activation rows
// are quantized once per call into the 8-bit block type the weight type pairs
// with (Q8_0, Q8_1 or Q8_K; float weights keep f32 activations), into one
// buffer the threads share, and the weights stay in their packed blocks. The
// kernel for each weight type is picked once from active_isa(). A matrix in
// the row-interleaved layout (interleave_weights, which the model loader
// applies where interleaved_layout_pays) goes to the kernel's
// gemm_interleaved in groups of 16 rows; its tail rows to gemm.
//
// matmul_multi (and matmul_swiglu, its gate/up pairing) runs several matrices
// that read the same input in one parallel region, the input quantized once
// per activation type.
//
// Work split: decode (one token) streams the weights once, so the rows are cut
// into a few contiguous chunks per thread (each thread streams its own rows;
// the kernel prefetches ahead within its chunk). Prefill cuts the rows into a
// few chunks per thread and the tokens into tiles whose activations
// (kTokenTileBytes, a multiple of 16 tokens: the widest kernel tile) stay in L2
// while the chunk's rows pass; each row's weights are read once per tile.
#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "core/fp16.h"
#include "kernels/cpu/dot/dot.h"
#include "kernels/cpu/dot/interleave.h"
#include "kernels/cpu/dot/isa.h"
#include "kernels/cpu/ops.h"
#include "quant/quant.h"

namespace dhi::kernels::cpu {

namespace {

// Fewest rows per prefill work item (a multiple of every kernel's row tile).
constexpr int64_t kPrefillRows = 32;
// Activation bytes per prefill token tile: half of a core's L2 (1 MB on the
// machines we measure), the other half for the rows in flight.
constexpr uint64_t kTokenTileBytes = 512 * 1024;
// Below this many multiply-adds per chunk a matmul is not worth spreading: the
// pool runs a single chunk on the calling thread.
constexpr int64_t kMinChunkMacs = 1 << 16;

// The ISA every matmul uses. An unusable DHI_FORCE_ISA is reported where the
// model is set up (check_cpu_isa()); should a matmul run anyway, it takes the
// portable kernels rather than fail.
Isa matmul_isa() {
  static const Isa isa = [] {
    const Expected<Isa> a = active_isa();
    return a.ok() ? *a : Isa::Generic;
  }();
  return isa;
}

// One kernel per weight type id, looked up once.
const DotKernel* kernel_for(TensorType t) {
  static const auto table = [] {
    std::array<const DotKernel*, size_t(TensorType::BF16) + 1> k{};
    for (size_t i = 0; i < k.size(); ++i) k[i] = dot_kernel(TensorType(uint32_t(i)), matmul_isa());
    return k;
  }();
  return size_t(t) < table.size() ? table[size_t(t)] : nullptr;
}

// Decodes one row to f32 for get_rows. F16 goes through the 64K-entry table (a
// load per element instead of the branchy bit conversion) and BF16 is a shift;
// both give exactly what quant's reference dequantizer gives.
void decode_row(TensorType type, const uint8_t* src, float* dst, int64_t n) {
  if (type == TensorType::F16) {
    const float* table = f16_to_f32_table();
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      dst[i] = table[h];
    }
  } else if (type == TensorType::BF16) {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t b;
      std::memcpy(&b, src + 2 * i, 2);
      dst[i] = bf16_to_f32(b);
    }
  } else {
    dhi::dequantize_row(type, src, dst, n);
  }
}

}  // namespace

Status check_cpu_isa() {
  const Expected<Isa> isa = active_isa();
  if (!isa) return isa.error();
  return {};
}

std::string_view matmul_isa_name() { return isa_name(matmul_isa()); }

bool weight_type_supported(TensorType t) {
  switch (t) {
    case TensorType::F32: case TensorType::F16: case TensorType::BF16:
    case TensorType::Q4_0: case TensorType::Q4_1: case TensorType::Q5_0: case TensorType::Q5_1:
    case TensorType::Q8_0: case TensorType::Q2_K: case TensorType::Q3_K: case TensorType::Q4_K:
    case TensorType::Q5_K: case TensorType::Q6_K:
      return kernel_for(t) != nullptr;
    default:
      return false;
  }
}

bool interleaved_layout_pays(TensorType t) {
  const DotKernel* k = kernel_for(t);
  return k && k->gemm_interleaved && has_interleaved_layout(t);
}

void interleave_weights(const WeightMatrix& w, int64_t row_begin, int64_t row_end, void* dst) {
  const auto* src = static_cast<const uint8_t*>(w.data);
  auto* out = static_cast<uint8_t*>(dst);
  const int64_t grouped = w.n_rows / kInterleaveRows * kInterleaveRows;
  const DotKernel* k = kernel_for(w.type);
  int64_t r = row_begin;
  for (; r + kInterleaveRows <= std::min(row_end, grouped); r += kInterleaveRows) {
    const uint8_t* from = src + size_t(r) * w.row_bytes;
    uint8_t* to = out + size_t(r) * w.row_bytes;
    if (k && k->interleave_group) {
      k->interleave_group(w.n_cols, from, w.row_bytes, to);
    } else {
      interleave_group(w.type, w.n_cols, from, w.row_bytes, to);
    }
  }
  if (r < row_end) std::memcpy(out + size_t(r) * w.row_bytes, src + size_t(r) * w.row_bytes, size_t(row_end - r) * w.row_bytes);
}

void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t n_tokens, float* y) {
  if (w.n_rows <= 0 || n_tokens <= 0) return;
  const DotKernel* k = kernel_for(w.type);
  if (!k) return;  // weight_type_supported() is checked when the model binds its tensors
  const int64_t n = w.n_cols;
  const int n_threads = pool.n_threads();

  // Activations: f32 rows as they are, or quantized once into a buffer owned
  // by the calling thread (it outlives the parallel regions below).
  const void* act = x;
  size_t act_stride = size_t(n) * sizeof(float);
  if (k->act_type != TensorType::F32) {
    thread_local std::vector<uint8_t> act_buf;
    act_stride = size_t(act_row_bytes(k->act_type, n));
    act_buf.resize(act_stride * size_t(n_tokens));
    uint8_t* dst = act_buf.data();
    const int64_t grain = std::max<int64_t>(1, kMinChunkMacs / std::max<int64_t>(1, n));
    pool.parallel_for(n_tokens, grain, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) k->quantize_act(x + t * n, dst + size_t(t) * act_stride, n);
    });
    act = act_buf.data();
  }
  const auto* w_bytes = static_cast<const uint8_t*>(w.data);
  // Rows [r0, r1) (r0 a multiple of 16) against tokens [t0, t0 + tokens): the
  // interleaved matrix's groups go to gemm_interleaved, its tail rows and a
  // row-layout matrix to gemm.
  const bool interleaved = w.layout == WeightLayout::Interleaved && k->gemm_interleaved;
  const int64_t grouped = interleaved ? w.n_rows / kInterleaveRows * kInterleaveRows : 0;
  const auto rows = [&](int64_t r0, int64_t r1, int64_t t0, int64_t tokens) {
    const uint8_t* a = static_cast<const uint8_t*>(act) + size_t(t0) * act_stride;
    float* out = y + size_t(t0) * size_t(w.n_rows);
    if (r0 < grouped) {
      const int64_t g1 = std::min(r1, grouped);
      k->gemm_interleaved(n, w_bytes + size_t(r0) * w.row_bytes, (g1 - r0) / kInterleaveRows, a, act_stride, tokens,
                          out + r0, size_t(w.n_rows));
      r0 = g1;
    }
    if (r0 < r1) {
      k->gemm(n, w_bytes + size_t(r0) * w.row_bytes, w.row_bytes, r1 - r0, a, act_stride, tokens, out + r0,
              size_t(w.n_rows));
    }
  };

  if (n_tokens == 1) {
    // A few chunks per thread (a slow core hands rows to a fast one), each a
    // contiguous run of rows in multiples of 16 (every decode row tile and the
    // interleaved groups divide 16).
    const int64_t n_chunks_max = int64_t(n_threads) * 4;
    const int64_t min_rows = std::max<int64_t>(16, kMinChunkMacs / std::max<int64_t>(1, n));
    int64_t chunk_rows = std::max<int64_t>(min_rows, (w.n_rows + n_chunks_max - 1) / n_chunks_max);
    chunk_rows = (chunk_rows + 15) / 16 * 16;
    const int64_t n_chunks = (w.n_rows + chunk_rows - 1) / chunk_rows;
    pool.parallel_for(n_chunks, 1, [&](int64_t begin, int64_t end) {
      rows(begin * chunk_rows, std::min(w.n_rows, end * chunk_rows), 0, 1);
    });
    return;
  }

  // A few row chunks per thread; each call covers a chunk's rows for one token
  // tile, so per-call set-up in the kernels (the outer-product kernels lay the
  // tile's activations out token-minor and unpack each row once) is amortised
  // over many rows and tokens.
  const int64_t token_tile =
      std::clamp<int64_t>(int64_t(kTokenTileBytes / std::max<size_t>(1, act_stride)) / 16 * 16, 16, 256);
  const int64_t n_chunks_max = int64_t(n_threads) * 4;
  const int64_t chunk_rows =
      std::max(kPrefillRows, ((w.n_rows + n_chunks_max - 1) / n_chunks_max + 15) / 16 * 16);
  const int64_t n_chunks = (w.n_rows + chunk_rows - 1) / chunk_rows;
  pool.parallel_for(n_chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t r0 = c * chunk_rows;
      const int64_t r1 = std::min(w.n_rows, r0 + chunk_rows);
      for (int64_t t0 = 0; t0 < n_tokens; t0 += token_tile) rows(r0, r1, t0, std::min(token_tile, n_tokens - t0));
    }
  });
}

void get_rows(ThreadPool& pool, const WeightMatrix& w, const int32_t* ids, int64_t n_ids, float* y) {
  pool.parallel_for(n_ids, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<uint8_t> scratch;  // one row read back from its group
    if (w.layout == WeightLayout::Interleaved) scratch.resize(size_t(w.row_bytes));
    for (int64_t i = begin; i < end; ++i) {
      const auto* base = static_cast<const uint8_t*>(w.data);
      const uint8_t* src = w.layout == WeightLayout::Interleaved
                               ? interleaved_matrix_row(w.type, w.n_cols, base, size_t(w.row_bytes), w.n_rows, ids[i],
                                                        scratch.data())
                               : base + uint64_t(ids[i]) * w.row_bytes;
      float* dst = y + i * w.n_cols;
      if (w.type == TensorType::F32) {
        std::memcpy(dst, src, size_t(w.n_cols) * sizeof(float));
      } else {
        decode_row(w.type, src, dst, w.n_cols);
      }
    }
  });
}

}  // namespace dhi::kernels::cpu

namespace dhi::kernels::cpu {

namespace {

// One matrix of a matmul_multi: its kernel, the activation rows it reads (in
// the type its kernel pairs with) and how its rows are cut into work items.
struct MultiPart {
  const DotKernel* k = nullptr;
  const MatmulTarget* target = nullptr;
  const uint8_t* act = nullptr;
  size_t act_stride = 0;
  int64_t chunk_rows = 0;   // rows per work item, a multiple of 16
  int64_t first_item = 0;   // index of its first work item in the region
  int64_t token_tile = 1;   // prefill: tokens per kernel call
};

// Rows [r0, r1) of part p (r0 a multiple of 16) against tokens [t0, t0 + tokens),
// split between gemm_interleaved and gemm as matmul splits them.
void multi_rows(const MultiPart& p, int64_t r0, int64_t r1, int64_t t0, int64_t tokens) {
  const WeightMatrix& w = p.target->w;
  const auto* w_bytes = static_cast<const uint8_t*>(w.data);
  const uint8_t* a = p.act + size_t(t0) * p.act_stride;
  float* out = p.target->y + size_t(t0) * size_t(w.n_rows);
  const bool interleaved = w.layout == WeightLayout::Interleaved && p.k->gemm_interleaved;
  const int64_t grouped = interleaved ? w.n_rows / kInterleaveRows * kInterleaveRows : 0;
  if (r0 < grouped) {
    const int64_t g1 = std::min(r1, grouped);
    p.k->gemm_interleaved(w.n_cols, w_bytes + size_t(r0) * w.row_bytes, (g1 - r0) / kInterleaveRows, a,
                          p.act_stride, tokens, out + r0, size_t(w.n_rows));
    r0 = g1;
  }
  if (r0 < r1) {
    p.k->gemm(w.n_cols, w_bytes + size_t(r0) * w.row_bytes, w.row_bytes, r1 - r0, a, p.act_stride, tokens, out + r0,
              size_t(w.n_rows));
  }
}

// Work items are (matrix, row chunk) pairs numbered matrix by matrix, handed
// out by the pool's counter. Decode sizes the chunks by bytes over the union
// (about four per thread in all), so a small matrix (K, V) is one item rather
// than a region of its own; prefill cuts each matrix as matmul does and runs
// the token tiles inside each item. Chunk starts are multiples of 16 rows and
// the token tiles are matmul's, so every row meets the same kernel calls'
// arithmetic as in matmul. With `swiglu` (two targets of as many rows: gate,
// up) an item is the same rows of both, and applies silu_mul to them once
// their products are out.
void run_multi(ThreadPool& pool, std::span<const MatmulTarget> targets, const float* x, int64_t n_tokens,
               bool swiglu) {
  if (targets.empty() || n_tokens <= 0) return;
  const int64_t n = targets.front().w.n_cols;
  const int n_threads = pool.n_threads();

  // One quantized copy of x per activation type (at most one per target),
  // in buffers owned by the calling thread that outlive the region below.
  thread_local std::vector<std::vector<uint8_t>> act_bufs;
  std::vector<TensorType> act_types;
  std::vector<MultiPart> parts;
  parts.reserve(targets.size());
  for (const MatmulTarget& t : targets) {
    const DotKernel* k = kernel_for(t.w.type);
    if (!k || t.w.n_rows <= 0) continue;  // weight_type_supported() is checked when the model binds its tensors
    MultiPart p;
    p.k = k;
    p.target = &t;
    if (k->act_type == TensorType::F32) {
      p.act = reinterpret_cast<const uint8_t*>(x);
      p.act_stride = size_t(n) * sizeof(float);
    } else {
      const size_t slot = size_t(std::find(act_types.begin(), act_types.end(), k->act_type) - act_types.begin());
      p.act_stride = size_t(act_row_bytes(k->act_type, n));
      if (slot == act_types.size()) {
        act_types.push_back(k->act_type);
        if (act_bufs.size() < act_types.size()) act_bufs.resize(act_types.size());
        std::vector<uint8_t>& buf = act_bufs[slot];
        buf.resize(p.act_stride * size_t(n_tokens));
        uint8_t* dst = buf.data();
        const size_t stride = p.act_stride;
        const int64_t grain = std::max<int64_t>(1, kMinChunkMacs / std::max<int64_t>(1, n));
        pool.parallel_for(n_tokens, grain, [&](int64_t begin, int64_t end) {
          for (int64_t tk = begin; tk < end; ++tk) k->quantize_act(x + tk * n, dst + size_t(tk) * stride, n);
        });
      }
      p.act = act_bufs[slot].data();
    }
    parts.push_back(p);
  }
  if (parts.empty()) return;
  if (swiglu && (parts.size() != 2 || parts[0].target->w.n_rows != parts[1].target->w.n_rows)) return;

  const int64_t n_chunks_max = int64_t(n_threads) * 4;
  uint64_t total_bytes = 0;
  for (const MultiPart& p : parts) total_bytes += uint64_t(p.target->w.n_rows) * p.target->w.row_bytes;
  const uint64_t chunk_bytes = std::max<uint64_t>(1, (total_bytes + uint64_t(n_chunks_max) - 1) / uint64_t(n_chunks_max));
  // The bytes an item's row costs: its own row, or a paired gate and up row.
  const uint64_t pair_row_bytes = swiglu ? parts[0].target->w.row_bytes + parts[1].target->w.row_bytes : 0;
  const int64_t min_rows = std::max<int64_t>(16, kMinChunkMacs / std::max<int64_t>(1, n));
  int64_t n_items = 0;
  for (MultiPart& p : parts) {
    const WeightMatrix& w = p.target->w;
    int64_t rows;
    if (n_tokens == 1) {
      const uint64_t item_row_bytes = std::max<uint64_t>(1, swiglu ? pair_row_bytes : w.row_bytes);
      rows = std::max<int64_t>(min_rows, int64_t((chunk_bytes + item_row_bytes - 1) / item_row_bytes));
    } else {
      rows = std::max(kPrefillRows, (w.n_rows + n_chunks_max - 1) / n_chunks_max);
      p.token_tile = std::clamp<int64_t>(int64_t(kTokenTileBytes / std::max<size_t>(1, p.act_stride)) / 16 * 16, 16, 256);
    }
    p.chunk_rows = (rows + 15) / 16 * 16;
    p.first_item = swiglu ? 0 : n_items;
    n_items = p.first_item + (w.n_rows + p.chunk_rows - 1) / p.chunk_rows;
  }

  pool.parallel_for(n_items, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      // The parts whose items include `item`: both with swiglu, else the last
      // one starting at or before it.
      size_t i = parts.size() - 1;
      while (parts[i].first_item > item) --i;
      const size_t i0 = swiglu ? 0 : i;
      const int64_t r0 = (item - parts[i].first_item) * parts[i].chunk_rows;
      const int64_t r1 = std::min(parts[i].target->w.n_rows, r0 + parts[i].chunk_rows);
      for (size_t j = i0; j <= i; ++j) {
        const MultiPart& p = parts[j];
        for (int64_t t0 = 0; t0 < n_tokens; t0 += p.token_tile) {
          multi_rows(p, r0, r1, t0, std::min(p.token_tile, n_tokens - t0));
        }
      }
      if (swiglu) {
        const size_t stride = size_t(parts[0].target->w.n_rows);
        for (int64_t tk = 0; tk < n_tokens; ++tk) {
          const size_t at = size_t(tk) * stride + size_t(r0);
          silu_mul(parts[0].target->y + at, parts[1].target->y + at, r1 - r0);
        }
      }
    }
  });
}

}  // namespace

void matmul_multi(ThreadPool& pool, std::span<const MatmulTarget> targets, const float* x, int64_t n_tokens) {
  run_multi(pool, targets, x, n_tokens, false);
}

void matmul_swiglu(ThreadPool& pool, const WeightMatrix& gate, const WeightMatrix& up, const float* x,
                   int64_t n_tokens, float* gate_out, float* up_out) {
  const MatmulTarget targets[] = {{gate, gate_out}, {up, up_out}};
  run_multi(pool, targets, x, n_tokens, true);
}

}  // namespace dhi::kernels::cpu
