// CUDA kernel for mambast::SelectiveScan, fp32 (see native/src/selective_scan.h for the shapes).
// NOT BUILT OR TESTED in this repository's CI (no GPU, no nvcc): see docs/fused-scan.md.
//
// Layout: one thread per (batch, channel); a block holds kThreads channels of one (batch, k)
// direction, so B_t and C_t (shared by the direction's channels) are loaded once per block.
// Tokens are walked sequentially in chunks of kChunk: u, delta (per channel) and B, C (per
// direction) are loaded cooperatively and coalesced along L into shared memory, each thread then
// advances its N-float state in registers, and y goes back through shared memory, coalesced.
#include <cuda_runtime.h>

#include <string>

#include "selective_scan_cuda.h"

namespace mambast::cuda {
namespace {

constexpr int kThreads = 128;
// tokens per shared-memory tile; smaller for the generic-N kernel to stay under 48 KiB static smem
template <int NC>
constexpr int ChunkFor() { return NC > 0 ? 32 : 16; }

__device__ __forceinline__ float Softplus(float x) { return x > 20.f ? x : log1pf(__expf(x)); }

template <int NC>
__global__ void __launch_bounds__(kThreads) ScanKernel(ScanArgs a) {
  constexpr int kChunk = ChunkFor<NC>();
  const int n = NC > 0 ? NC : static_cast<int>(a.n);
  const int64_t L = a.length, KD = a.k * a.din;
  const int64_t b = blockIdx.z, kk = blockIdx.y;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads;  // first channel within the direction
  const int tid = threadIdx.x;
  const int64_t ch = kk * a.din + first + tid;
  const bool active = first + tid < a.din;
  const int rows = static_cast<int>(a.din - first < kThreads ? a.din - first : kThreads);

  __shared__ float su[kThreads][kChunk + 1];  // +1: row reads by different threads hit different banks
  __shared__ float sd[kThreads][kChunk + 1];
  __shared__ float sB[(NC > 0 ? NC : kMaxState)][kChunk];
  __shared__ float sC[(NC > 0 ? NC : kMaxState)][kChunk];

  float h[NC > 0 ? NC : kMaxState];
  float A[NC > 0 ? NC : kMaxState];
#pragma unroll
  for (int s = 0; s < (NC > 0 ? NC : kMaxState); ++s) {
    h[s] = 0.f;
    A[s] = (active && s < n) ? a.A[ch * a.n + s] : 0.f;
  }
  const float Dc = active ? a.D[ch] : 0.f;
  const float bias = active ? a.delta_bias[ch] : 0.f;
  const float* ub = a.u + (b * KD + kk * a.din + first) * L;
  const float* db = a.delta + (b * KD + kk * a.din + first) * L;
  float* yb = a.y + (b * KD + kk * a.din + first) * L;
  const float* Bb = a.B + (b * a.k + kk) * a.n * L;
  const float* Cb = a.C + (b * a.k + kk) * a.n * L;

  for (int64_t t0 = 0; t0 < L; t0 += kChunk) {
    const int tl = static_cast<int>(L - t0 < kChunk ? L - t0 : kChunk);
    // coalesced: consecutive threads read consecutive tokens of one row
    for (int i = tid; i < rows * kChunk; i += kThreads) {
      const int r = i / kChunk, t = i % kChunk;
      if (t < tl) {
        su[r][t] = ub[r * L + t0 + t];
        sd[r][t] = db[r * L + t0 + t];
      }
    }
    for (int i = tid; i < n * kChunk; i += kThreads) {
      const int s = i / kChunk, t = i % kChunk;
      if (t < tl) {
        sB[s][t] = Bb[s * L + t0 + t];
        sC[s][t] = Cb[s * L + t0 + t];
      }
    }
    __syncthreads();
    if (active) {
      for (int t = 0; t < tl; ++t) {
        const float uv = su[tid][t];
        float dt = sd[tid][t] + bias;
        if (a.softplus) dt = Softplus(dt);
        const float du = dt * uv;
        float acc = 0.f;
#pragma unroll
        for (int s = 0; s < (NC > 0 ? NC : kMaxState); ++s) {
          if (NC > 0 || s < n) {
            h[s] = __expf(dt * A[s]) * h[s] + du * sB[s][t];  // dt * A <= 0
            acc += h[s] * sC[s][t];
          }
        }
        su[tid][t] = acc + Dc * uv;  // reuse the u tile for y
      }
    }
    __syncthreads();
    for (int i = tid; i < rows * kChunk; i += kThreads) {
      const int r = i / kChunk, t = i % kChunk;
      if (t < tl) yb[r * L + t0 + t] = su[r][t];
    }
    __syncthreads();
  }
}

}  // namespace

std::string LaunchSelectiveScan(const ScanArgs& a, void* stream) {
  if (a.k > 65535 || a.batch > 65535) return "SelectiveScan (CUDA): k and batch must be <= 65535";
  const dim3 grid(static_cast<unsigned>((a.din + kThreads - 1) / kThreads), static_cast<unsigned>(a.k),
                  static_cast<unsigned>(a.batch));
  auto s = static_cast<cudaStream_t>(stream);
  if (a.n == 16)
    ScanKernel<16><<<grid, kThreads, 0, s>>>(a);
  else
    ScanKernel<0><<<grid, kThreads, 0, s>>>(a);
  cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? std::string() : std::string("SelectiveScan (CUDA): ") + cudaGetErrorString(err);
}

}  // namespace mambast::cuda
