// Weight-by-activation matrix multiplication and row lookup on the CPU.
// Rows of the weight matrix are split across the thread pool; each thread
// dequantizes a small tile of rows into a thread-local f32 buffer once and dots
// it with every token of the batch, so a weight row is decoded once per batch
// (prefill) and the tile stays in L1/L2 while the activations stream past.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/fp16.h"
#include "kernels/cpu/ops.h"
#include "quant/quant.h"

namespace dhi::kernels::cpu {

namespace {

// Rows decoded per tile: enough to reuse each activation row a few times from
// cache, small enough that a tile of 14336-wide rows (~460 KB) fits in L2.
constexpr int64_t kTileRows = 8;

// Decodes one row to f32. F16 goes through the 64K-entry table (a load per
// element instead of the branchy bit conversion) and BF16 is a shift; both give
// exactly what quant's reference dequantizer gives.
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

const float* row_as_f32(const WeightMatrix& w, int64_t r, float* scratch) {
  const auto* base = static_cast<const uint8_t*>(w.data) + uint64_t(r) * w.row_bytes;
  // F32 rows are used in place when aligned (always, for GGUF's 32-byte data
  // alignment); an odd buffer is copied rather than read misaligned.
  if (w.type == TensorType::F32 && reinterpret_cast<uintptr_t>(base) % alignof(float) == 0) {
    return reinterpret_cast<const float*>(base);
  }
  if (w.type == TensorType::F32) {
    std::memcpy(scratch, base, size_t(w.n_cols) * sizeof(float));
    return scratch;
  }
  decode_row(w.type, base, scratch, w.n_cols);
  return scratch;
}

// Computes rows [r0, r1) of y for all tokens. This is the only function that
// reads weight bits: a quantized-activation path replaces it per type.
void matmul_rows_tile(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y,
                      int64_t r0, int64_t r1, std::vector<float>& scratch) {
  const int64_t n = w.n_cols;
  scratch.resize(size_t(kTileRows * n));
  const float* rows[kTileRows];
  for (int64_t r = r0; r < r1; ++r) rows[r - r0] = row_as_f32(w, r, scratch.data() + (r - r0) * n);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* xt = x + t * n;
    float* yt = y + t * w.n_rows;
    for (int64_t r = r0; r < r1; ++r) yt[r] = dot_f32(rows[r - r0], xt, n);
  }
}

}  // namespace

bool weight_type_supported(TensorType t) {
  switch (t) {
    case TensorType::F32: case TensorType::F16: case TensorType::BF16:
    case TensorType::Q4_0: case TensorType::Q4_1: case TensorType::Q5_0: case TensorType::Q5_1:
    case TensorType::Q8_0: case TensorType::Q2_K: case TensorType::Q3_K: case TensorType::Q4_K:
    case TensorType::Q5_K: case TensorType::Q6_K:
      return true;
    default:
      return false;
  }
}

float dot_f32(const float* a, const float* b, int64_t n) {
  // Eight independent partial sums: lets the compiler keep a vector register of
  // accumulators without -ffast-math reassociation.
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void matmul(ThreadPool& pool, const WeightMatrix& w, const float* x, int64_t n_tokens, float* y) {
  if (w.n_rows <= 0 || n_tokens <= 0) return;
  const int64_t n_tiles = (w.n_rows + kTileRows - 1) / kTileRows;
  // Tiles per chunk: a few chunks per thread keeps the atomic counter cheap
  // while letting fast threads take more; and at least ~64K multiply-adds per
  // chunk, so a small matrix runs on the calling thread instead of paying to
  // wake the pool (the pool runs a single chunk inline).
  constexpr int64_t kMinChunkMacs = 1 << 16;
  const int64_t tile_macs = kTileRows * w.n_cols * n_tokens;
  const int64_t grain = std::max<int64_t>({1, n_tiles / (int64_t(pool.n_threads()) * 4),
                                           kMinChunkMacs / std::max<int64_t>(1, tile_macs)});
  pool.parallel_for(n_tiles, grain, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scratch;
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t r0 = tile * kTileRows;
      const int64_t r1 = std::min(w.n_rows, r0 + kTileRows);
      matmul_rows_tile(w, x, n_tokens, y, r0, r1, scratch);
    }
  });
}

void get_rows(ThreadPool& pool, const WeightMatrix& w, const int32_t* ids, int64_t n_ids, float* y) {
  pool.parallel_for(n_ids, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const auto* src = static_cast<const uint8_t*>(w.data) + uint64_t(ids[i]) * w.row_bytes;
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
