// avx2 instantiation of the selective-scan kernel (see scan_kernel.inl).
#include "selective_scan.h"

#pragma GCC target("avx2,fma")
#define MB_W 8
namespace mambast::avx2 {
#include "scan_kernel.inl"
}  // namespace mambast::avx2
