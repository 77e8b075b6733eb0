// Private to the dot kernels: the gemm argument bundle and the tile driver every
// ISA's legacy kernels share. A kernel supplies a micro-kernel that computes an
// R x T tile (R weight rows by T tokens, both compile-time) over the whole row;
// the driver walks the rows x tokens output in such tiles and picks the
// instantiation for the ragged edges from a table, so each micro-kernel is
// written once with fixed-size accumulator arrays the compiler keeps in registers.
//
// Everything here has internal linkage (anonymous namespace): the header is
// included by translation units compiled with different ISA flags, and an
// inline function with external linkage would be merged by the linker into one
// copy, possibly the AVX-512 one, which would then run on a CPU without it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

namespace dhi::kernels::cpu {
namespace {

struct GemmArgs {
  int64_t n;            // elements per row
  const uint8_t* w;     // weight row 0
  size_t w_stride;      // bytes between weight rows
  const uint8_t* act;   // activation row 0
  size_t act_stride;    // bytes between activation rows
  float* out;
  size_t out_stride;    // floats between output rows (one per token)

  const uint8_t* w_row(int64_t r) const { return w + size_t(r) * w_stride; }
  const uint8_t* act_row(int64_t t) const { return act + size_t(t) * act_stride; }
  float& at(int64_t r, int64_t t) const { return out[size_t(t) * out_stride + size_t(r)]; }
};

// Unaligned loads of the blocks' fields: rows sit in a mapped file or a caller's
// buffer at any byte offset (the legacy blocks are 18..36 bytes, so even a row
// aligned at its start has misaligned blocks after it).
template <typename T>
inline T load_unaligned(const void* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Micro<R, T>::run(args, r0, t0) computes out rows r0..r0+R-1, tokens t0..t0+T-1.
template <template <int, int> class Micro, int MaxR, int MaxT>
struct TileTable {
  using Fn = void (*)(const GemmArgs&, int64_t, int64_t);
  template <size_t... I>
  static constexpr std::array<Fn, MaxR * MaxT> make(std::index_sequence<I...>) {
    return {&Micro<int(I / MaxT) + 1, int(I % MaxT) + 1>::run...};
  }
  static constexpr std::array<Fn, MaxR * MaxT> table = make(std::make_index_sequence<MaxR * MaxT>{});
};

// Rows outer, tokens inner: a tile's R weight rows stay in L1 while the call's
// activation rows (sized by the caller to fit L2) stream past them.
template <template <int, int> class Micro, int MaxR, int MaxT>
void run_tiles(const GemmArgs& a, int64_t n_rows, int64_t n_tokens) {
  const auto& table = TileTable<Micro, MaxR, MaxT>::table;
  for (int64_t r0 = 0; r0 < n_rows; r0 += MaxR) {
    const int64_t rr = n_rows - r0 < MaxR ? n_rows - r0 : MaxR;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += MaxT) {
      const int64_t tt = n_tokens - t0 < MaxT ? n_tokens - t0 : MaxT;
      table[size_t((rr - 1) * MaxT + (tt - 1))](a, r0, t0);
    }
  }
}

// The decode shape (one token) wants more rows in flight than the prefill tile
// has room for, so kernels pick their tiling by n_tokens.
template <template <int, int> class Micro, int DecodeR, int MaxR, int MaxT>
void gemm_tiled(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* act,
                size_t act_stride, int64_t n_tokens, float* out, size_t out_stride) {
  const GemmArgs a{n, static_cast<const uint8_t*>(w), w_stride, static_cast<const uint8_t*>(act),
                   act_stride, out, out_stride};
  if (n_tokens == 1) {
    run_tiles<Micro, DecodeR, 1>(a, n_rows, 1);
  } else {
    run_tiles<Micro, MaxR, MaxT>(a, n_rows, n_tokens);
  }
}

}  // namespace
}  // namespace dhi::kernels::cpu
