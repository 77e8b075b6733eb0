// Packing and unpacking of the row-interleaved layout (see interleave.h): a
// table of each type's fields and unit sizes, and one byte loop each way. Runs
// at model load (once per weight) and for the few single rows read back
// (embedding lookups of a tied output matrix), so it is plain portable code.
#include "kernels/cpu/dot/interleave.h"

#include <array>
#include <cstring>
#include <span>

#include "quant/blocks_k.h"
#include "quant/blocks_legacy.h"

namespace dhi::kernels::cpu {

namespace {

struct Field {
  uint32_t offset, bytes, unit;  // a byte range of the block; unit: 1, 2, 4 or 16 bytes
};

constexpr Field kQ4KFields[] = {{offsetof(BlockQ4_K, d), 2, 2},
                                {offsetof(BlockQ4_K, dmin), 2, 2},
                                {offsetof(BlockQ4_K, scales), K_SCALE_SIZE, 1},
                                {offsetof(BlockQ4_K, qs), QK_K / 2, 4}};
static_assert(offsetof(BlockQ4_K, qs) + QK_K / 2 == sizeof(BlockQ4_K));

// Q6_K in the decode kernel's reading order (interleave.h).
constexpr std::array<Field, 2 + 48> q6k_fields() {
  std::array<Field, 2 + 48> f{};
  f[0] = {offsetof(BlockQ6_K, d), 2, 2};
  f[1] = {offsetof(BlockQ6_K, scales), QK_K / 16, 2};
  size_t k = 2;
  for (uint32_t h = 0; h < 2; ++h)
    for (uint32_t i = 0; i < 8; ++i) {
      f[k++] = {uint32_t(offsetof(BlockQ6_K, qh)) + 32 * h + 4 * i, 4, 4};
      f[k++] = {uint32_t(offsetof(BlockQ6_K, ql)) + 64 * h + 4 * i, 4, 4};
      f[k++] = {uint32_t(offsetof(BlockQ6_K, ql)) + 64 * h + 32 + 4 * i, 4, 4};
    }
  return f;
}
constexpr std::array<Field, 2 + 48> kQ6KFields = q6k_fields();

// F16: a column is 8 halves of each row (one vcvtph2ps load), see interleave.h.
constexpr Field kF16Fields[] = {{0, 16, 16}};
constexpr Field kQ8_0Fields[] = {{offsetof(BlockQ8_0, d), 2, 2}, {offsetof(BlockQ8_0, qs), QK_LEGACY, 4}};
static_assert(offsetof(BlockQ8_0, qs) + QK_LEGACY == sizeof(BlockQ8_0));

struct Layout {
  std::span<const Field> fields;
  size_t block_bytes = 0;
  int64_t block_elems = QK_K;  // elements per column
};

Layout layout(TensorType t) {
  switch (t) {
    case TensorType::Q4_K: return {kQ4KFields, sizeof(BlockQ4_K), QK_K};
    case TensorType::Q6_K: return {kQ6KFields, sizeof(BlockQ6_K), QK_K};
    case TensorType::Q8_0: return {kQ8_0Fields, sizeof(BlockQ8_0), QK_LEGACY};
    case TensorType::F16: return {kF16Fields, 16, 8};
    default: return {};
  }
}

// Bytes of a row past its last whole column (F16 rows of n % 8 elements; none
// for the K-quants, whose rows are whole super-blocks).
size_t tail_bytes(const Layout& l, int64_t n) { return size_t(n % l.block_elems) * (l.block_bytes / size_t(l.block_elems)); }

// Moves the units of one field of row r between a block (file layout) and a
// group's super-block column (to_group: block -> column). The unit size is a
// constant, so each unit is one load and one store.
template <uint32_t U>
void move_field(const Field& fd, size_t column_offset, int r, bool to_group, const uint8_t* from, uint8_t* to) {
  const size_t column_base = column_offset + size_t(r) * U;
  for (uint32_t o = 0; o < fd.bytes; o += U) {
    const size_t in_block = fd.offset + o;
    const size_t in_column = column_base + size_t(kInterleaveRows) * o;
    if (to_group) {
      std::memcpy(to + in_column, from + in_block, U);
    } else {
      std::memcpy(to + in_block, from + in_column, U);
    }
  }
}

void move_row(const Layout& l, int r, bool to_group, const uint8_t* from, uint8_t* to) {
  size_t column_offset = 0;  // where this field's 16 rows start in the column
  for (const Field& fd : l.fields) {
    switch (fd.unit) {
      case 1: move_field<1>(fd, column_offset, r, to_group, from, to); break;
      case 2: move_field<2>(fd, column_offset, r, to_group, from, to); break;
      case 4: move_field<4>(fd, column_offset, r, to_group, from, to); break;
      default: move_field<16>(fd, column_offset, r, to_group, from, to); break;
    }
    column_offset += size_t(kInterleaveRows) * fd.bytes;
  }
}

}  // namespace

bool has_interleaved_layout(TensorType t) { return layout(t).block_bytes != 0; }

void interleave_group(TensorType t, int64_t n, const uint8_t* src, size_t src_stride, uint8_t* dst) {
  const Layout l = layout(t);
  const int64_t n_blocks = n / l.block_elems;
  const size_t column = size_t(kInterleaveRows) * l.block_bytes;
  const size_t tail = tail_bytes(l, n), whole = size_t(n_blocks) * l.block_bytes;
  for (int r = 0; r < kInterleaveRows; ++r) {
    const uint8_t* row = src + size_t(r) * src_stride;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const uint8_t* blk = row + size_t(b) * l.block_bytes;
      uint8_t* col = dst + size_t(b) * column;
      move_row(l, r, true, blk, col);
    }
    if (tail) std::memcpy(dst + size_t(n_blocks) * column + size_t(r) * tail, row + whole, tail);
  }
}

void deinterleave_row(TensorType t, int64_t n, const uint8_t* group, int r, uint8_t* dst) {
  const Layout l = layout(t);
  const int64_t n_blocks = n / l.block_elems;
  const size_t column = size_t(kInterleaveRows) * l.block_bytes;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* col = group + size_t(b) * column;
    uint8_t* blk = dst + size_t(b) * l.block_bytes;
    move_row(l, r, false, col, blk);
  }
  const size_t tail = tail_bytes(l, n);
  if (tail) std::memcpy(dst + size_t(n_blocks) * l.block_bytes, group + size_t(n_blocks) * column + size_t(r) * tail, tail);
}

const uint8_t* interleaved_matrix_row(TensorType t, int64_t n, const uint8_t* w, size_t row_bytes,
                                      int64_t n_rows, int64_t r, uint8_t* scratch) {
  const int64_t grouped = n_rows / kInterleaveRows * kInterleaveRows;
  if (r >= grouped) return w + size_t(r) * row_bytes;
  const uint8_t* group = w + size_t(r / kInterleaveRows) * kInterleaveRows * row_bytes;
  deinterleave_row(t, n, group, int(r % kInterleaveRows), scratch);
  return scratch;
}

}  // namespace dhi::kernels::cpu
