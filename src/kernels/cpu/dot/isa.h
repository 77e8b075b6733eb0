// Which SIMD instruction set the CPU kernels run with. Detected once at start-up
// from cpuid and the OS's saved register state (xgetbv); DHI_FORCE_ISA=generic|
// avx2|avx512 forces a path so tests can cover every path on one machine, and
// fails loudly when the CPU lacks it. Shipped builds never use -march=native: each
// ISA's translation units are compiled with their own flags and only called when
// the running CPU supports them.
#pragma once

#include <string_view>

#include "core/expected.h"

namespace dhi::kernels::cpu {

enum class Isa {
  Generic,  // portable C++
  Avx2,     // AVX2 + FMA + F16C
  Avx512,   // AVX-512 F/BW/DQ/VL + VNNI (Ice Lake, Zen 4 and later)
};

std::string_view isa_name(Isa isa);
Expected<Isa> isa_from_name(std::string_view name);

// Whether this CPU and OS can run `isa`.
bool isa_supported(Isa isa);
// The best ISA this CPU supports.
Isa best_isa();
// The ISA in use: DHI_FORCE_ISA when set (an error if unknown or unsupported),
// otherwise best_isa(). Computed once.
Expected<Isa> active_isa();

}  // namespace dhi::kernels::cpu
