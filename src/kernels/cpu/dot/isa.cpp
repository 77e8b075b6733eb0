#include "kernels/cpu/dot/isa.h"

#include <cpuid.h>

#include <cstdint>
#include <cstdlib>

namespace dhi::kernels::cpu {
namespace {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false, avx512vnni = false;
  bool os_avx = false, os_avx512 = false;
};

CpuFeatures read_features() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  f.fma = c & bit_FMA;
  f.f16c = c & bit_F16C;
  const bool osxsave = c & bit_OSXSAVE;
  if (osxsave) {
    // XCR0: the OS saves SSE+AVX state (bits 1,2) and the AVX-512 state (5,6,7).
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    f.os_avx = (lo & 0x6) == 0x6;
    f.os_avx512 = (lo & 0xe6) == 0xe6;
  }
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = b & bit_AVX2;
    f.avx512f = b & bit_AVX512F;
    f.avx512dq = b & bit_AVX512DQ;
    f.avx512bw = b & bit_AVX512BW;
    f.avx512vl = b & bit_AVX512VL;
    f.avx512vnni = c & bit_AVX512VNNI;
  }
#endif
  return f;
}

const CpuFeatures& features() {
  static const CpuFeatures f = read_features();
  return f;
}

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::Generic: return "generic";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "unknown";
}

Expected<Isa> isa_from_name(std::string_view name) {
  for (Isa isa : {Isa::Generic, Isa::Avx2, Isa::Avx512})
    if (isa_name(isa) == name) return isa;
  return make_error("unknown ISA '", name, "' (known: generic, avx2, avx512)");
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = features();
  switch (isa) {
    case Isa::Generic: return true;
    case Isa::Avx2: return f.os_avx && f.avx2 && f.fma && f.f16c;
    case Isa::Avx512:
      return isa_supported(Isa::Avx2) && f.os_avx512 && f.avx512f && f.avx512bw && f.avx512dq &&
             f.avx512vl && f.avx512vnni;
  }
  return false;
}

Isa best_isa() {
  if (isa_supported(Isa::Avx512)) return Isa::Avx512;
  if (isa_supported(Isa::Avx2)) return Isa::Avx2;
  return Isa::Generic;
}

Expected<Isa> active_isa() {
  static const Expected<Isa> active = []() -> Expected<Isa> {
    const char* forced = std::getenv("DHI_FORCE_ISA");
    if (!forced || !*forced) return best_isa();
    auto isa = isa_from_name(forced);
    if (!isa) return make_error("DHI_FORCE_ISA: ", isa.error().message);
    if (!isa_supported(*isa))
      return make_error("DHI_FORCE_ISA=", forced, ": this CPU (or OS) does not support ", forced);
    return isa;
  }();
  return active;
}

}  // namespace dhi::kernels::cpu
