// Instruction-set dispatch for the CPU selective scan.
#include <cstdlib>
#include <cstring>

#include "selective_scan.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define MB_X86 1
#endif

namespace mambast {

namespace {
Isa Detect() {
#ifdef MB_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
  return Isa::Scalar;
}
}  // namespace

Isa SelectIsa() {
  static const Isa chosen = [] {
    Isa best = Detect();
    const char* env = std::getenv("MAMBAST_OPS_ISA");
    Isa want = best;
    if (env && std::strcmp(env, "scalar") == 0) want = Isa::Scalar;
    if (env && std::strcmp(env, "avx2") == 0) want = Isa::Avx2;
    if (env && std::strcmp(env, "avx512") == 0) want = Isa::Avx512;
    return static_cast<int>(want) < static_cast<int>(best) ? want : best;
  }();
  return chosen;
}

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "scalar";
  }
}

int IsaWidth(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return 16;
    case Isa::Avx2: return 8;
    default: return 1;
  }
}

int64_t WorkItems(const ScanArgs& a, Isa isa) {
  const int64_t w = IsaWidth(isa);
  return a.batch * a.k * ((a.din + w - 1) / w);
}

void RunItems(const ScanArgs& a, Isa isa, int64_t first, int64_t last) {
#ifdef MB_X86
  // flush denormals: long decays drive the state towards 2^-126 where x86 slows down ~100x
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040);
#endif
  switch (isa) {
    case Isa::Avx512: avx512::Run(a, first, last); break;
    case Isa::Avx2: avx2::Run(a, first, last); break;
    default: scalar::Run(a, first, last); break;
  }
#ifdef MB_X86
  _mm_setcsr(csr);
#endif
}

}  // namespace mambast
