// CUDA selective scan (compiled only with MAMBAST_OPS_CUDA and nvcc; never built or run in CI).
#pragma once
#include <string>

#include "../src/selective_scan.h"

namespace mambast::cuda {
// All pointers in `a` are device pointers; runs on `stream` (cudaStream_t). Returns "" or an error.
std::string LaunchSelectiveScan(const ScanArgs& a, void* stream);
}  // namespace mambast::cuda
