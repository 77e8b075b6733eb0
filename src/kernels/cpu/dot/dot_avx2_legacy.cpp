// AVX2 (+FMA, F16C) kernels for the float and legacy quant types: the shared
// x86 kernels of dot_x86_legacy.h built with 16 vector registers and
// vpmaddubsw/vpmaddwd int8 products. Compiled with -mavx2 -mfma -mf16c only.
#include "kernels/cpu/dot/dot_x86_legacy.h"

namespace dhi::kernels::cpu::detail {
const DotKernel* avx2_legacy_kernel(TensorType w) { return x86_legacy_kernel(w); }
}  // namespace dhi::kernels::cpu::detail
