// Fused selective scan (Mamba, delta_softplus variant), fp32, CPU.
// Shapes (mamba_ssm): u, delta, y [batch, K*Din, L]; A [K*Din, N]; B, C [batch, K, N, L];
// D, delta_bias [K*Din]. B and C are shared by the Din channels of one scan direction k.
#pragma once
#include <cstdint>

namespace mambast {

constexpr int kMaxState = 64;  // largest supported N (Mamba uses 16)

struct ScanArgs {
  const float* u;
  const float* delta;
  const float* A;
  const float* B;
  const float* C;
  const float* D;
  const float* delta_bias;
  float* y;
  int64_t batch, k, din, n, length;
  bool softplus;
};

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

// Best instruction set this CPU supports, lowered by MAMBAST_OPS_ISA=scalar|avx2|avx512 if set.
Isa SelectIsa();
const char* IsaName(Isa isa);
// Channels processed together by one work item (vector width in floats).
int IsaWidth(Isa isa);
// Work items: batch * k * ceil(din / width); each is independent.
int64_t WorkItems(const ScanArgs& a, Isa isa);
// Runs work items [first, last).
void RunItems(const ScanArgs& a, Isa isa, int64_t first, int64_t last);

namespace scalar { void Run(const ScanArgs& a, int64_t first, int64_t last); }
namespace avx2 { void Run(const ScanArgs& a, int64_t first, int64_t last); }
namespace avx512 { void Run(const ScanArgs& a, int64_t first, int64_t last); }

}  // namespace mambast
