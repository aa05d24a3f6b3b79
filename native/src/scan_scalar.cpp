// scalar instantiation of the selective-scan kernel (see scan_kernel.inl).
#include "selective_scan.h"


#define MB_W 1
namespace mambast::scalar {
#include "scan_kernel.inl"
}  // namespace mambast::scalar
