// Picks the dot kernel for a (weight type, ISA): the most specialised
// translation unit that handles the type wins (AVX-512 -> AVX2 -> generic), so an
// ISA file only needs the kernels it actually speeds up. Also picks the
// attention row kernels, which every ISA provides.
#include "kernels/cpu/dot/dot.h"

#include "kernels/cpu/dot/attention_rows.h"

#include "quant/blocks_k.h"
#include "quant/blocks_legacy.h"

namespace dhi::kernels::cpu {

const DotKernel* dot_kernel(TensorType weight_type, Isa isa) {
  // An ISA the CPU cannot run gets no kernel rather than one that faults.
  if (!isa_supported(isa)) return nullptr;
  const DotKernel* k = nullptr;
  switch (isa) {
    case Isa::Avx512:
      if ((k = detail::avx512_legacy_kernel(weight_type))) return k;
      if ((k = detail::avx512_kquant_kernel(weight_type))) return k;
      [[fallthrough]];
    case Isa::Avx2:
      if ((k = detail::avx2_legacy_kernel(weight_type))) return k;
      if ((k = detail::avx2_kquant_kernel(weight_type))) return k;
      [[fallthrough]];
    case Isa::Generic:
      if ((k = detail::generic_legacy_kernel(weight_type))) return k;
      return detail::generic_kquant_kernel(weight_type);
  }
  return nullptr;
}

const AttentionRowKernel* attention_row_kernel(Isa isa) {
  if (!isa_supported(isa)) return nullptr;
  switch (isa) {
    case Isa::Avx512: return detail::avx512_attention_kernel();
    case Isa::Avx2: return detail::avx2_attention_kernel();
    case Isa::Generic: return detail::generic_attention_kernel();
  }
  return nullptr;
}

uint64_t act_row_bytes(TensorType act_type, int64_t n) {
  const uint64_t un = uint64_t(n);
  switch (act_type) {
    case TensorType::F32: return un * sizeof(float);
    case TensorType::Q8_0: return un / QK_LEGACY * sizeof(BlockQ8_0);
    case TensorType::Q8_1: return un / QK_LEGACY * sizeof(BlockQ8_1);
    case TensorType::Q8_K: return un / QK_K * sizeof(BlockQ8_K);
    default: return 0;  // not an activation type
  }
}

}  // namespace dhi::kernels::cpu
