// Selective scan with its own backward pass, fp32, CPU: the training kernel behind
// mambast.scan's `kernel` variant (mambast/scan_kernel.py builds it with torch.utils.cpp_extension).
//
// Shapes (B and C come transposed, token-major, so the N states of a token are contiguous):
//   u, dt, y [b, KD, L]; A [KD, N]; Bt, Ct [b, K, L, N]; D [KD]; KD = K * Din.
//   h_t = exp(dt A) h_{t-1} + dt u B_t, y_t = C_t . h_t + D u.
// dt = softplus(delta + delta_bias) is computed (and differentiated) by PyTorch before the call:
// one vectorised op over the whole tensor, cheaper than a scalar log1p(exp) per token here.
// One task = one (batch, direction): its Din channels run one after another, so the gradients of
// B and C (sums over those channels) need no atomics; A and D gradients are written per batch
// element and summed by the caller. Tasks run on ATen's intra-op threads (OpenMP). Forward keeps the state at the start of every kChunk tokens;
// backward recomputes the states of one chunk into an L1-sized buffer and walks it backwards.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

constexpr int64_t kChunk = 64;
constexpr int64_t kMaxN = 64;

// Cephes-style expf, vectorisable (no table, no branch): about 2 ulp on [-87, 88].
inline float ExpF(float x) {
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float fx = std::floor(x * 1.44269504088896341f + 0.5f);
  x = x - fx * 0.693359375f + fx * 2.12194440e-4f;
  const float z = x * x;
  float y = 1.9875691500e-4f;
  y = y * x + 1.3981999507e-3f;
  y = y * x + 8.3334519073e-3f;
  y = y * x + 4.1665795894e-2f;
  y = y * x + 1.6666665459e-1f;
  y = y * x + 5.0000001201e-1f;
  y = y * z + x + 1.0f;
  const int32_t n = static_cast<int32_t>(fx);
  return y * __builtin_bit_cast(float, (n + 127) << 23);
}

struct Dims {
  int64_t b, kd, k, din, n, len, chunks;
};

Dims Check(const at::Tensor& u, const at::Tensor& dt, const at::Tensor& A, const at::Tensor& Bt,
           const at::Tensor& Ct, const at::Tensor& D) {
  for (const at::Tensor* t : {&u, &dt, &A, &Bt, &Ct, &D}) {
    TORCH_CHECK(t->device().is_cpu(), "scan kernel: CPU tensors only");
    TORCH_CHECK(t->scalar_type() == at::kFloat, "scan kernel: float32 only");
    TORCH_CHECK(t->is_contiguous(), "scan kernel: contiguous tensors only");
  }
  TORCH_CHECK(u.dim() == 3 && Bt.dim() == 4 && A.dim() == 2, "scan kernel: u [b, KD, L], A [KD, N], Bt [b, K, L, N]");
  Dims d{};
  d.b = u.size(0);
  d.kd = u.size(1);
  d.len = u.size(2);
  d.k = Bt.size(1);
  d.n = A.size(1);
  TORCH_CHECK(d.k > 0 && d.kd % d.k == 0, "scan kernel: KD must be a multiple of K");
  d.din = d.kd / d.k;
  TORCH_CHECK(d.n >= 1 && d.n <= kMaxN, "scan kernel: N must be in 1..64");
  TORCH_CHECK(dt.sizes() == u.sizes(), "scan kernel: dt must have u's shape");
  TORCH_CHECK(A.size(0) == d.kd, "scan kernel: A must be [KD, N]");
  TORCH_CHECK(Bt.sizes() == at::IntArrayRef({d.b, d.k, d.len, d.n}) && Ct.sizes() == Bt.sizes(),
              "scan kernel: Bt and Ct must be [b, K, L, N]");
  TORCH_CHECK(D.numel() == d.kd, "scan kernel: D must be [KD]");
  d.chunks = (d.len + kChunk - 1) / kChunk;
  return d;
}

std::vector<at::Tensor> Forward(const at::Tensor& u, const at::Tensor& dtin, const at::Tensor& A,
                                const at::Tensor& Bt, const at::Tensor& Ct, const at::Tensor& D) {
  const Dims d = Check(u, dtin, A, Bt, Ct, D);
  at::Tensor y = at::empty_like(u);
  at::Tensor states = at::zeros({d.b, d.kd, std::max<int64_t>(d.chunks, 1), d.n}, u.options());
  const float *pu = u.data_ptr<float>(), *pdt = dtin.data_ptr<float>(), *pA = A.data_ptr<float>();
  const float *pB = Bt.data_ptr<float>(), *pC = Ct.data_ptr<float>(), *pD = D.data_ptr<float>();
  float *py = y.data_ptr<float>(), *pst = states.data_ptr<float>();
  const int64_t n = d.n;
  at::parallel_for(0, d.b * d.k, 1, [&](int64_t first, int64_t last) {
    for (int64_t task = first; task < last; ++task) {
      const int64_t bi = task / d.k, ki = task % d.k;
      const float* Bd = pB + (bi * d.k + ki) * d.len * n;
      const float* Cd = pC + (bi * d.k + ki) * d.len * n;
      for (int64_t c = 0; c < d.din; ++c) {
        const int64_t ch = ki * d.din + c, row = (bi * d.kd + ch) * d.len;
        const float* Ac = pA + ch * n;
        float* st = pst + (bi * d.kd + ch) * std::max<int64_t>(d.chunks, 1) * n;
        float h[kMaxN] = {0.0f};
        for (int64_t t = 0; t < d.len; ++t) {
          if (t % kChunk == 0) std::memcpy(st + (t / kChunk) * n, h, sizeof(float) * n);
          const float dt = pdt[row + t];
          const float du = dt * pu[row + t];
          const float* Bx = Bd + t * n;
          const float* Cx = Cd + t * n;
          float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
          for (int64_t s = 0; s < n; ++s) {
            h[s] = ExpF(dt * Ac[s]) * h[s] + du * Bx[s];
            acc += h[s] * Cx[s];
          }
          py[row + t] = acc + pD[ch] * pu[row + t];
        }
      }
    }
  });
  return {y, states};
}

// -> gu, gdt [b, KD, L]; gA [b, KD, N], gBt, gCt [b, K, L, N]; gD [b, KD] (sum gA and gD over
// the batch).
std::vector<at::Tensor> Backward(const at::Tensor& gy, const at::Tensor& u, const at::Tensor& dtin,
                                 const at::Tensor& A, const at::Tensor& Bt, const at::Tensor& Ct,
                                 const at::Tensor& D, const at::Tensor& states) {
  const Dims d = Check(u, dtin, A, Bt, Ct, D);
  TORCH_CHECK(gy.sizes() == u.sizes() && gy.scalar_type() == at::kFloat && gy.is_contiguous() && gy.device().is_cpu(),
              "scan kernel: grad of y must be a contiguous float32 CPU tensor of u's shape");
  const int64_t chunks = std::max<int64_t>(d.chunks, 1);
  TORCH_CHECK(states.sizes() == at::IntArrayRef({d.b, d.kd, chunks, d.n}) && states.is_contiguous(),
              "scan kernel: states do not match the inputs");
  at::Tensor gu = at::empty_like(u), gdt = at::empty_like(u);
  at::Tensor gA = at::zeros({d.b, d.kd, d.n}, u.options());
  at::Tensor gB = at::zeros_like(Bt), gC = at::zeros_like(Ct);
  at::Tensor gD = at::zeros({d.b, d.kd}, u.options());
  const float *pgy = gy.data_ptr<float>(), *pu = u.data_ptr<float>(), *pdt = dtin.data_ptr<float>();
  const float *pA = A.data_ptr<float>(), *pB = Bt.data_ptr<float>(), *pC = Ct.data_ptr<float>();
  const float *pD = D.data_ptr<float>(), *pst = states.data_ptr<float>();
  float *pgu = gu.data_ptr<float>(), *pgdt = gdt.data_ptr<float>(), *pgA = gA.data_ptr<float>();
  float *pgB = gB.data_ptr<float>(), *pgC = gC.data_ptr<float>(), *pgD = gD.data_ptr<float>();
  const int64_t n = d.n;
  at::parallel_for(0, d.b * d.k, 1, [&](int64_t first, int64_t last) {
    std::vector<float> hbuf((kChunk + 1) * kMaxN);  // states before (row i) and after (row i + 1) token t0 + i
    float dtbuf[kChunk];
    for (int64_t task = first; task < last; ++task) {
      const int64_t bi = task / d.k, ki = task % d.k;
      const int64_t bc = (bi * d.k + ki) * d.len * n;
      for (int64_t c = 0; c < d.din; ++c) {
        const int64_t ch = ki * d.din + c, row = (bi * d.kd + ch) * d.len;
        const float* Ac = pA + ch * n;
        const float* st = pst + (bi * d.kd + ch) * chunks * n;
        float gh[kMaxN] = {0.0f}, ga[kMaxN] = {0.0f};
        float gDc = 0.0f;
        for (int64_t ci = d.chunks - 1; ci >= 0; --ci) {
          const int64_t t0 = ci * kChunk, m = std::min(kChunk, d.len - t0);
          std::memcpy(hbuf.data(), st + ci * n, sizeof(float) * n);
          for (int64_t i = 0; i < m; ++i) {  // recompute the chunk's states
            const int64_t t = t0 + i;
            const float dt = pdt[row + t];
            dtbuf[i] = dt;
            const float du = dt * pu[row + t];
            const float* Bx = pB + bc + t * n;
            const float* hp = hbuf.data() + i * kMaxN;
            float* hn = hbuf.data() + (i + 1) * kMaxN;
#pragma omp simd
            for (int64_t s = 0; s < n; ++s) hn[s] = ExpF(dt * Ac[s]) * hp[s] + du * Bx[s];
          }
          for (int64_t i = m - 1; i >= 0; --i) {  // and walk it backwards
            const int64_t t = t0 + i;
            const float g = pgy[row + t], uv = pu[row + t], dt = dtbuf[i], du = dt * uv;
            const float* Bx = pB + bc + t * n;
            const float* Cx = pC + bc + t * n;
            float* gBx = pgB + bc + t * n;
            float* gCx = pgC + bc + t * n;
            const float* hp = hbuf.data() + i * kMaxN;
            const float* hn = hbuf.data() + (i + 1) * kMaxN;
            float gdu = 0.0f, gdtx = 0.0f;
#pragma omp simd reduction(+ : gdu, gdtx)
            for (int64_t s = 0; s < n; ++s) {
              const float a = ExpF(dt * Ac[s]);
              const float ghs = gh[s] + g * Cx[s];  // dLoss/dh_t
              gCx[s] += g * hn[s];
              gBx[s] += ghs * du;
              gdu += ghs * Bx[s];
              const float aph = ghs * a * hp[s];
              gdtx += aph * Ac[s];
              ga[s] += aph * dt;
              gh[s] = ghs * a;  // dLoss/dh_{t-1} through h_t
            }
            gDc += g * uv;
            pgu[row + t] = g * pD[ch] + gdu * dt;
            pgdt[row + t] = gdtx + gdu * uv;
          }
        }
        std::memcpy(pgA + (bi * d.kd + ch) * n, ga, sizeof(float) * n);
        pgD[bi * d.kd + ch] = gDc;
      }
    }
  });
  return {gu, gdt, gA, gB, gC, gD};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &Forward, "selective scan forward (y, chunk states)");
  m.def("backward", &Backward, "selective scan backward");
  m.attr("chunk") = kChunk;
}
