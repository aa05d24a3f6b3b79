// CUDA port of scan_kernel.cpp (the `kernel` scan variant's forward and backward), fp32.
// NOT YET COMPILED OR RUN: written in a session without a GPU after the CPU kernel was verified;
// mambast.scan_kernel.cuda_self_check() compares it with the float64 loop on first use and the
// trainer falls back to the parallel scan if it fails (model/README.md).
//
// Layout (the Python side transposes): u, dt, y, gu, gdt [b, L, KD] so that the threads of a warp
// (consecutive channels) touch consecutive addresses; Bt, Ct [b, K, L, N] (every thread of a block
// belongs to one direction and reads the same B_t, C_t: broadcasts); A [KD, N]; D [KD].
// One thread = one (batch, channel), its N = 16 states in registers. Forward stores the state at the
// start of every kChunk tokens; backward recomputes one chunk at a time into a per-thread buffer
// (local memory: 1 KB per thread) and walks it backwards. The gradients of B and C are sums over the Din
// channels of a direction: each thread writes its own term to gBc, gCc [b, L, N, KD] (coalesced
// over channels) and PyTorch sums them afterwards.
#include <torch/extension.h>

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

namespace {

constexpr int kThreads = 128;
constexpr int kN = 16;
constexpr int kChunk = 16;

__global__ void __launch_bounds__(kThreads) ForwardKernel(const float* __restrict__ u, const float* __restrict__ dt,
                                                          const float* __restrict__ A, const float* __restrict__ Bt,
                                                          const float* __restrict__ Ct, const float* __restrict__ D,
                                                          float* __restrict__ y, float* __restrict__ states,
                                                          int64_t L, int64_t K, int64_t din, int64_t chunks) {
  const int64_t kd = K * din;
  const int64_t b = blockIdx.z, k = blockIdx.y;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (c >= din) return;
  const int64_t ch = k * din + c;
  float h[kN], a[kN];
#pragma unroll
  for (int s = 0; s < kN; ++s) {
    h[s] = 0.f;
    a[s] = A[ch * kN + s];
  }
  const float Dc = D[ch];
  const float* Bd = Bt + (b * K + k) * L * kN;
  const float* Cd = Ct + (b * K + k) * L * kN;
  float* st = states + (b * kd + ch) * chunks * kN;
  for (int64_t t = 0; t < L; ++t) {
    if (t % kChunk == 0) {
#pragma unroll
      for (int s = 0; s < kN; ++s) st[(t / kChunk) * kN + s] = h[s];
    }
    const int64_t i = (b * L + t) * kd + ch;
    const float d = dt[i], uv = u[i], du = d * uv;
    float acc = 0.f;
#pragma unroll
    for (int s = 0; s < kN; ++s) {
      h[s] = __expf(d * a[s]) * h[s] + du * Bd[t * kN + s];
      acc += h[s] * Cd[t * kN + s];
    }
    y[i] = acc + Dc * uv;
  }
}

__global__ void __launch_bounds__(kThreads) BackwardKernel(
    const float* __restrict__ gy, const float* __restrict__ u, const float* __restrict__ dt,
    const float* __restrict__ A, const float* __restrict__ Bt, const float* __restrict__ Ct,
    const float* __restrict__ D, const float* __restrict__ states, float* __restrict__ gu,
    float* __restrict__ gdt, float* __restrict__ gA, float* __restrict__ gBc, float* __restrict__ gCc,
    float* __restrict__ gD, int64_t L, int64_t K, int64_t din, int64_t chunks) {
  const int64_t kd = K * din;
  const int64_t b = blockIdx.z, k = blockIdx.y;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (c >= din) return;
  const int64_t ch = k * din + c;
  float a[kN], gh[kN], ga[kN];
#pragma unroll
  for (int s = 0; s < kN; ++s) {
    a[s] = A[ch * kN + s];
    gh[s] = 0.f;
    ga[s] = 0.f;
  }
  const float Dc = D[ch];
  float gDc = 0.f;
  const float* Bd = Bt + (b * K + k) * L * kN;
  const float* Cd = Ct + (b * K + k) * L * kN;
  const float* st = states + (b * kd + ch) * chunks * kN;
  float hbuf[kChunk + 1][kN];  // states before (row j) and after (row j + 1) token t0 + j
  for (int64_t ci = chunks - 1; ci >= 0; --ci) {
    const int64_t t0 = ci * kChunk;
    const int m = static_cast<int>(L - t0 < kChunk ? L - t0 : kChunk);
#pragma unroll
    for (int s = 0; s < kN; ++s) hbuf[0][s] = st[ci * kN + s];
    for (int j = 0; j < m; ++j) {
      const int64_t i = (b * L + t0 + j) * kd + ch;
      const float d = dt[i], du = d * u[i];
#pragma unroll
      for (int s = 0; s < kN; ++s) hbuf[j + 1][s] = __expf(d * a[s]) * hbuf[j][s] + du * Bd[(t0 + j) * kN + s];
    }
    for (int j = m - 1; j >= 0; --j) {
      const int64_t t = t0 + j;
      const int64_t i = (b * L + t) * kd + ch;
      const float g = gy[i], uv = u[i], d = dt[i], du = d * uv;
      float gdu = 0.f, gdx = 0.f;
#pragma unroll
      for (int s = 0; s < kN; ++s) {
        const float e = __expf(d * a[s]);
        const float ghs = gh[s] + g * Cd[t * kN + s];
        const int64_t o = ((b * L + t) * kN + s) * kd + ch;  // [b, L, N, KD]
        gCc[o] = g * hbuf[j + 1][s];
        gBc[o] = ghs * du;
        gdu += ghs * Bd[t * kN + s];
        const float aph = ghs * e * hbuf[j][s];
        gdx += aph * a[s];
        ga[s] += aph * d;
        gh[s] = ghs * e;
      }
      gDc += g * uv;
      gu[i] = g * Dc + gdu * d;
      gdt[i] = gdx + gdu * uv;
    }
  }
#pragma unroll
  for (int s = 0; s < kN; ++s) gA[(b * kd + ch) * kN + s] = ga[s];
  gD[b * kd + ch] = gDc;
}

void CheckAll(std::initializer_list<const at::Tensor*> ts) {
  for (const at::Tensor* t : ts) {
    TORCH_CHECK(t->is_cuda() && t->scalar_type() == at::kFloat && t->is_contiguous(),
                "scan kernel (CUDA): contiguous float32 CUDA tensors only");
  }
}

void CheckShapes(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A, const at::Tensor& Bt,
                 const at::Tensor& Ct, const at::Tensor& D) {
  TORCH_CHECK(u.dim() == 3 && Bt.dim() == 4 && A.dim() == 2, "scan kernel (CUDA): u [b, L, KD], A [KD, 16], Bt [b, K, L, 16]");
  const int64_t b = u.size(0), L = u.size(1), kd = u.size(2), K = Bt.size(1);
  TORCH_CHECK(K > 0 && kd % K == 0 && K <= 65535 && b <= 65535, "scan kernel (CUDA): KD must be a multiple of K; K, b <= 65535");
  TORCH_CHECK(dt.sizes() == u.sizes(), "scan kernel (CUDA): dt must have u's shape");
  TORCH_CHECK(A.size(0) == kd && A.size(1) == kN, "scan kernel (CUDA): A must be [KD, 16]");
  TORCH_CHECK(Bt.sizes() == at::IntArrayRef({b, K, L, kN}) && Ct.sizes() == Bt.sizes(),
              "scan kernel (CUDA): Bt and Ct must be [b, K, L, 16]");
  TORCH_CHECK(D.numel() == kd, "scan kernel (CUDA): D must be [KD]");
}

int64_t Chunks(int64_t L) { return std::max<int64_t>((L + kChunk - 1) / kChunk, 1); }

// u, dt [b, L, KD]; A [KD, 16]; Bt, Ct [b, K, L, 16]; D [KD] -> y [b, L, KD], states
std::vector<at::Tensor> Forward(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A,
                                const at::Tensor& Bt, const at::Tensor& Ct, const at::Tensor& D) {
  CheckAll({&u, &dt, &A, &Bt, &Ct, &D});
  CheckShapes(u, dt, A, Bt, Ct, D);
  const int64_t b = u.size(0), L = u.size(1), kd = u.size(2), K = Bt.size(1);
  const int64_t din = kd / K, chunks = Chunks(L);
  const at::cuda::CUDAGuard guard(u.device());
  at::Tensor y = at::empty_like(u);
  at::Tensor states = at::zeros({b, kd, chunks, kN}, u.options());
  const dim3 grid(static_cast<unsigned>((din + kThreads - 1) / kThreads), static_cast<unsigned>(K),
                  static_cast<unsigned>(b));
  if (u.numel() > 0) {
    ForwardKernel<<<grid, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        u.data_ptr<float>(), dt.data_ptr<float>(), A.data_ptr<float>(), Bt.data_ptr<float>(), Ct.data_ptr<float>(),
        D.data_ptr<float>(), y.data_ptr<float>(), states.data_ptr<float>(), L, K, din, chunks);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {y, states};
}

// -> gu, gdt [b, L, KD]; gA [b, KD, 16]; gBc, gCc [b, L, 16, KD] (per-channel terms); gD [b, KD]
std::vector<at::Tensor> Backward(const at::Tensor& gy, const at::Tensor& u, const at::Tensor& dt,
                                 const at::Tensor& A, const at::Tensor& Bt, const at::Tensor& Ct,
                                 const at::Tensor& D, const at::Tensor& states) {
  CheckAll({&gy, &u, &dt, &A, &Bt, &Ct, &D, &states});
  CheckShapes(u, dt, A, Bt, Ct, D);
  const int64_t b = u.size(0), L = u.size(1), kd = u.size(2), K = Bt.size(1);
  const int64_t din = kd / K, chunks = Chunks(L);
  TORCH_CHECK(gy.sizes() == u.sizes(), "scan kernel (CUDA): grad of y must have u's shape");
  TORCH_CHECK(states.sizes() == at::IntArrayRef({b, kd, chunks, kN}), "scan kernel (CUDA): states do not match the inputs");
  const at::cuda::CUDAGuard guard(u.device());
  // every element of gu, gdt, gBc, gCc is written by the kernel, or they are empty; gA and gD are
  // written too except when L == 0, where they must be zero
  at::Tensor gu = at::empty_like(u), gdt = at::empty_like(u);
  at::Tensor gA = at::zeros({b, kd, kN}, u.options()), gD = at::zeros({b, kd}, u.options());
  at::Tensor gBc = at::empty({b, L, kN, kd}, u.options()), gCc = at::empty({b, L, kN, kd}, u.options());
  const dim3 grid(static_cast<unsigned>((din + kThreads - 1) / kThreads), static_cast<unsigned>(K),
                  static_cast<unsigned>(b));
  if (u.numel() > 0) {
    BackwardKernel<<<grid, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        gy.data_ptr<float>(), u.data_ptr<float>(), dt.data_ptr<float>(), A.data_ptr<float>(), Bt.data_ptr<float>(),
        Ct.data_ptr<float>(), D.data_ptr<float>(), states.data_ptr<float>(), gu.data_ptr<float>(),
        gdt.data_ptr<float>(), gA.data_ptr<float>(), gBc.data_ptr<float>(), gCc.data_ptr<float>(),
        gD.data_ptr<float>(), L, K, din, chunks);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {gu, gdt, gA, gBc, gCc, gD};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &Forward, "selective scan forward, CUDA (y, chunk states)");
  m.def("backward", &Backward, "selective scan backward, CUDA");
}
