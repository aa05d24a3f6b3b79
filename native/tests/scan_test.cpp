// The CPU kernel, every instruction set this machine has, against a float64 per-token loop.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "selective_scan.h"

namespace {

struct Case {
  int64_t batch, k, din, n, length;
  float delta_scale;
};

struct Data {
  std::vector<float> u, delta, A, B, C, D, bias;
};

Data Make(const Case& c, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::uniform_real_distribution<float> ud(0.f, 1.f);
  const int64_t kd = c.k * c.din;
  Data d;
  auto fill = [&](std::vector<float>& v, size_t count, auto gen) { v.resize(count); for (auto& x : v) x = gen(); };
  fill(d.u, c.batch * kd * c.length, [&] { return nd(rng); });
  fill(d.delta, c.batch * kd * c.length, [&] { return nd(rng) * c.delta_scale; });
  fill(d.A, kd * c.n, [&] { return -std::exp(nd(rng)); });
  fill(d.B, c.batch * c.k * c.n * c.length, [&] { return nd(rng); });
  fill(d.C, c.batch * c.k * c.n * c.length, [&] { return nd(rng); });
  fill(d.D, kd, [&] { return nd(rng); });
  fill(d.bias, kd, [&] { return ud(rng) - 0.5f; });
  return d;
}

std::vector<double> Reference(const Case& c, const Data& d, bool softplus) {
  const int64_t kd = c.k * c.din, L = c.length;
  std::vector<double> y(c.batch * kd * L), h(c.n);
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t ch = 0; ch < kd; ++ch) {
      const int64_t kk = ch / c.din;
      std::fill(h.begin(), h.end(), 0.0);
      for (int64_t t = 0; t < L; ++t) {
        const int64_t i = (b * kd + ch) * L + t;
        double dt = double(d.delta[i]) + d.bias[ch];
        if (softplus) dt = dt > 20 ? dt : std::log1p(std::exp(dt));
        double acc = 0;
        for (int64_t s = 0; s < c.n; ++s) {
          const int64_t j = ((b * c.k + kk) * c.n + s) * L + t;
          h[s] = std::exp(dt * d.A[ch * c.n + s]) * h[s] + dt * d.B[j] * d.u[i];
          acc += h[s] * d.C[j];
        }
        y[i] = acc + double(d.D[ch]) * d.u[i];
      }
    }
  return y;
}

class ScanTest : public ::testing::TestWithParam<Case> {};

TEST_P(ScanTest, MatchesFloat64Loop) {
  const Case c = GetParam();
  const Data data = Make(c, 7);
  Data positive = data;  // without softplus, delta + bias must stay >= 0 for the state to decay
  for (auto& v : positive.delta) v = std::fabs(v) + 0.5f;
  for (bool softplus : {true, false}) {
    const Data& d = softplus ? data : positive;
    const auto ref = Reference(c, d, softplus);
    double peak = 0;
    for (double v : ref) peak = std::max(peak, std::fabs(v));
    for (int isa = 0; isa <= static_cast<int>(mambast::SelectIsa()); ++isa) {
      std::vector<float> y(ref.size(), NAN);
      mambast::ScanArgs a{d.u.data(), d.delta.data(), d.A.data(), d.B.data(), d.C.data(), d.D.data(),
                          d.bias.data(), y.data(), c.batch, c.k, c.din, c.n, c.length, softplus};
      const auto which = static_cast<mambast::Isa>(isa);
      mambast::RunItems(a, which, 0, mambast::WorkItems(a, which));
      double err = 0;
      for (size_t i = 0; i < y.size(); ++i) err = std::max(err, std::fabs(y[i] - ref[i]));
      EXPECT_LE(err / peak, 1e-5) << mambast::IsaName(which) << " softplus=" << softplus;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ScanTest,
    ::testing::Values(Case{1, 4, 16, 16, 64, 1.f},     // exact vector widths, one chunk
                      Case{2, 2, 13, 16, 131, 1.f},    // odd L, Din not a multiple of 8 or 16, batch 2
                      Case{1, 1, 40, 16, 1031, 30.f},  // large deltas (softplus ~ 100), long memory
                      Case{2, 4, 9, 7, 67, 3.f},       // generic N
                      Case{1, 2, 24, 64, 33, 1.f}));   // largest N

TEST(ScanIsa, NameAndWidthAgree) {
  EXPECT_EQ(mambast::IsaWidth(mambast::Isa::Scalar), 1);
  EXPECT_EQ(mambast::IsaWidth(mambast::Isa::Avx2), 8);
  EXPECT_EQ(mambast::IsaWidth(mambast::Isa::Avx512), 16);
  EXPECT_STREQ(mambast::IsaName(mambast::SelectIsa()), mambast::IsaName(mambast::SelectIsa()));
}

}  // namespace
