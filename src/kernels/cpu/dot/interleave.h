// The row-interleaved weight layout of the decode kernels. Decode multiplies
// every weight row by the same activation row; stored one row after another, a
// kernel must reduce each row's products horizontally and unpack each row's
// block scales on its own. Interleaved, 16 rows of a block column lie
// side by side at a small grain (4 quant bytes, 1 scale byte, one fp16 per
// row), so one 64-byte load holds the same positions of 16 rows: vpdpbusd with
// a broadcast activation dword advances all 16 row sums in its 16 lanes, and
// lane r stays row r to the end (no horizontal sums).
//
// The layout is a byte permutation, so a matrix takes exactly as many bytes
// interleaved as in the file (the memory model and the bytes read per token do
// not change). A matrix of n_rows rows: floor(n_rows / 16) groups of 16 rows,
// then the remaining rows in the file's row layout. A group is its block
// columns one after another (16 x block_bytes each). A column is a list of
// pieces of the block (byte ranges of its struct in blocks_k.h or
// blocks_legacy.h, each cut into units of 1, 2 or 4 bytes); a piece of B
// bytes takes 16 * B bytes of the column, in which unit u of row r sits at
// 16 * (u * unit) + r * unit. The pieces come in
// the order the decode kernel reads them, so a column is read front to back:
//   Q4_K (144 bytes): d, dmin (2-byte units), scales (1), qs (4)
//   Q6_K (210 bytes): d (2), scales (2: a pair of group scales), then for each
//     half h, quarter q and i = 4q..4q+3: qh bytes 32h+4i.., ql bytes 64h+4i..,
//     ql bytes 64h+32+4i.. (4 bytes each: the bits of four 4-element runs).
//   Q8_0 (34 bytes, 32-element blocks): d (2), qs (4). The quants stay signed
//     (the layout stays a pure permutation); the kernel flips their sign bits
//     in registers for vpdpbusd (dot_avx512_legacy.cpp).
//   F16: a column is 8 halves (16 bytes, one unit) of each of the 16 rows, so
//     the decode kernel's 16 row streams become one sequential stream (the
//     hardware prefetcher follows one stream per thread; it loses 16 short
//     ones). A row of n % 8 != 0 halves has its last n % 8 after the whole
//     columns: row r's at r * (n % 8) * 2 bytes past them.
// Only the kernels that gain from it read this layout (dot.h's
// gemm_interleaved); everything else reads rows through deinterleave_row.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/tensor_type.h"

namespace dhi::kernels::cpu {

constexpr int64_t kInterleaveRows = 16;

// Whether `t` has an interleaved layout.
bool has_interleaved_layout(TensorType t);

// Writes rows 0..15 (n elements each, src_stride bytes apart) as one group
// (16 * row bytes at dst).
void interleave_group(TensorType t, int64_t n, const uint8_t* src, size_t src_stride, uint8_t* dst);

// Row r (0..15) of a group, back in the file's row layout (row bytes at dst).
void deinterleave_row(TensorType t, int64_t n, const uint8_t* group, int r, uint8_t* dst);

// Rows of an interleaved matrix as whole rows: row r's bytes, from its group
// (copied into scratch, one row's bytes) or from the tail (a pointer into w).
const uint8_t* interleaved_matrix_row(TensorType t, int64_t n, const uint8_t* w, size_t row_bytes,
                                      int64_t n_rows, int64_t r, uint8_t* scratch);

}  // namespace dhi::kernels::cpu
