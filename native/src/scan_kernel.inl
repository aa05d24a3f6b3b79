// Included by scan_{scalar,avx2,avx512}.cpp inside `namespace mambast::<isa>` after
// `#pragma GCC target(...)` and `#define MB_W <floats per vector>`. One work item = MB_W
// channels of one (batch, direction) over all tokens; the state h[N] of those channels lives in
// N vector registers (N = 16 is specialised), the token chunk being scanned in L1 buffers.
// Uses no standard-library templates, so nothing compiled for a wider ISA can leak into the
// scalar path through the linker.

typedef float vf __attribute__((vector_size(MB_W * 4)));
typedef int32_t vi __attribute__((vector_size(MB_W * 4)));

namespace {

constexpr int kChunk = 64;

#define MB_INLINE inline __attribute__((always_inline))

MB_INLINE vf splat(float s) { return vf{} + s; }

// exp(x), Cephes expf polynomial (~1 ulp); results below 2^-126 are flushed to 0. The scan only
// calls it with x <= 0 (delta * A, A < 0); x is capped at 88 so other inputs cannot overflow.
MB_INLINE vf vexp(vf x) {
  const vi tiny = x < splat(-87.33f);
  x = x < splat(-87.33f) ? splat(-87.33f) : x;
  x = x > splat(88.0f) ? splat(88.0f) : x;
  // round(x / ln2) without a rounding instruction: floor(y + 0.5) via truncation of a shifted value
  vf y = x * 1.44269504088896341f + 0.5f;
  vi ti = __builtin_convertvector(y + 128.0f, vi) - 128;  // y + 128 > 0, so truncation = floor
  vf fx = __builtin_convertvector(ti, vf);
  x = x - fx * 0.693359375f + fx * 2.12194440e-4f;
  vf z = x * x;
  vf p = splat(1.9875691500E-4f);
  p = p * x + 1.3981999507E-3f;
  p = p * x + 8.3334519073E-3f;
  p = p * x + 4.1665795894E-2f;
  p = p * x + 1.6666665459E-1f;
  p = p * x + 5.0000001201E-1f;
  p = p * z + x + 1.0f;
  vi bits = (ti + 127) << 23;
  vf scale = (vf)bits;
  vf r = p * scale;
  return (vf)((vi)r & ~tiny);
}

// log(w) for w >= 1 (Cephes logf polynomial).
MB_INLINE vf vlog_ge1(vf w) {
  vi bits = (vi)w;
  vi e = ((bits >> 23) & 0xff) - 127;
  vf m = (vf)((bits & 0x7fffff) | 0x3f800000);  // [1, 2)
  const vi big = m > splat(1.41421356f);
  m = big ? m * 0.5f : m;
  e = e + (big & 1);
  vf fe = __builtin_convertvector(e, vf);
  vf x = m - 1.0f;
  vf z = x * x;
  vf p = splat(7.0376836292E-2f);
  p = p * x - 1.1514610310E-1f;
  p = p * x + 1.1676998740E-1f;
  p = p * x - 1.2420140846E-1f;
  p = p * x + 1.4249322787E-1f;
  p = p * x - 1.6668057665E-1f;
  p = p * x + 2.0000714765E-1f;
  p = p * x - 2.4999993993E-1f;
  p = p * x + 3.3333331174E-1f;
  vf yv = x * z * p;
  yv = yv - fe * 2.12194440e-4f;
  yv = yv - z * 0.5f;
  return x + yv + fe * 0.693359375f;
}

// softplus(x) = max(x, 0) + log1p(exp(-|x|)); log1p(z) = log(1 + z) * z / ((1 + z) - 1) keeps
// full relative precision for small z.
MB_INLINE vf vsoftplus(vf x) {
  vf ax = x < 0.0f ? -x : x;
  vf z = vexp(-ax);
  vf w = z + 1.0f;
  vf d = w - 1.0f;
  vf lg = vlog_ge1(w);
  vf safe_d = d == 0.0f ? splat(1.0f) : d;
  vf l1p = d == 0.0f ? z : lg * (z / safe_d);
  vf mx = x > 0.0f ? x : splat(0.0f);
  return mx + l1p;
}

template <int NC>
void ScanGroup(const ScanArgs& a, int64_t b, int64_t kk, int64_t g) {
  const int n = NC > 0 ? NC : static_cast<int>(a.n);
  const int64_t L = a.length, KD = a.k * a.din;
  const int64_t c0 = kk * a.din + g * MB_W;
  const int cnt = static_cast<int>(a.din - g * MB_W < MB_W ? a.din - g * MB_W : MB_W);

  alignas(64) vf At[NC > 0 ? NC : kMaxState];
  alignas(64) vf h[NC > 0 ? NC : kMaxState];
  alignas(64) vf dtb[kChunk], ub[kChunk], yb[kChunk];
  alignas(64) float Bt[kChunk * (NC > 0 ? NC : kMaxState)];
  alignas(64) float Ct[kChunk * (NC > 0 ? NC : kMaxState)];
  vf Dv = splat(0.0f), biasv = splat(0.0f);
  for (int s = 0; s < n; ++s) { At[s] = splat(0.0f); h[s] = splat(0.0f); }
  for (int w = 0; w < cnt; ++w) {
    for (int s = 0; s < n; ++s) At[s][w] = a.A[(c0 + w) * a.n + s];
    Dv[w] = a.D[c0 + w];
    biasv[w] = a.delta_bias[c0 + w];
  }
  for (int t = 0; t < kChunk; ++t) { dtb[t] = splat(0.0f); ub[t] = splat(0.0f); }

  const float* ubase = a.u + (b * KD + c0) * L;
  const float* dbase = a.delta + (b * KD + c0) * L;
  float* ybase = a.y + (b * KD + c0) * L;
  const float* Bbase = a.B + (b * a.k + kk) * a.n * L;
  const float* Cbase = a.C + (b * a.k + kk) * a.n * L;

  for (int64_t t0 = 0; t0 < L; t0 += kChunk) {
    const int tl = static_cast<int>(L - t0 < kChunk ? L - t0 : kChunk);
    for (int w = 0; w < cnt; ++w) {
      const float* up = ubase + w * L + t0;
      const float* dp = dbase + w * L + t0;
      for (int t = 0; t < tl; ++t) { ub[t][w] = up[t]; dtb[t][w] = dp[t]; }
    }
    for (int s = 0; s < n; ++s) {
      const float* bp = Bbase + s * L + t0;
      const float* cp = Cbase + s * L + t0;
      for (int t = 0; t < tl; ++t) { Bt[t * n + s] = bp[t]; Ct[t * n + s] = cp[t]; }
    }
    for (int t = 0; t < tl; ++t) {
      vf x = dtb[t] + biasv;
      dtb[t] = a.softplus ? vsoftplus(x) : x;
    }
    for (int t = 0; t < tl; ++t) {
      const vf dt = dtb[t];
      const vf du = dt * ub[t];
      const float* bt = Bt + t * n;
      const float* ct = Ct + t * n;
      vf acc = splat(0.0f);
      for (int s = 0; s < n; ++s) {
        const vf decay = vexp(dt * At[s]);
        h[s] = decay * h[s] + du * bt[s];
        acc += h[s] * ct[s];
      }
      yb[t] = acc + Dv * ub[t];
    }
    for (int w = 0; w < cnt; ++w) {
      float* yp = ybase + w * L + t0;
      for (int t = 0; t < tl; ++t) yp[t] = yb[t][w];
    }
  }
}

}  // namespace

void Run(const ScanArgs& a, int64_t first, int64_t last) {
  const int64_t groups = (a.din + MB_W - 1) / MB_W;
  for (int64_t i = first; i < last; ++i) {
    const int64_t b = i / (a.k * groups), rem = i % (a.k * groups);
    const int64_t kk = rem / groups, g = rem % groups;
    if (a.n == 16)
      ScanGroup<16>(a, b, kk, g);
    else
      ScanGroup<0>(a, b, kk, g);
  }
}
