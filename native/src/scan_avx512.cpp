// avx512 instantiation of the selective-scan kernel (see scan_kernel.inl).
#include "selective_scan.h"

#pragma GCC target("avx512f,fma")
#define MB_W 16
namespace mambast::avx512 {
#include "scan_kernel.inl"
}  // namespace mambast::avx512
