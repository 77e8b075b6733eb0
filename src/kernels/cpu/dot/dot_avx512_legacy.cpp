// AVX-512 (F/BW/DQ/VL + VNNI) kernels for the float and legacy quant types: the
// shared x86 kernels of dot_x86_legacy.h built with vpdpbusd (one instruction
// for the u8 x s8 block products, no int16 saturation step) and 32 vector
// registers, which allow 4 x 4 register tiles for prefill.
#define DHI_X86_VNNI 1
#include "kernels/cpu/dot/dot_x86_legacy.h"

namespace dhi::kernels::cpu::detail {
const DotKernel* avx512_legacy_kernel(TensorType w) { return x86_legacy_kernel(w); }
}  // namespace dhi::kernels::cpu::detail
