// The constants of the vector exp (Cephes expf): the clamp range, ln 2 split in two for an exact
// range reduction, and the degree-5 polynomial for exp on [-ln2/2, ln2/2]. The AVX2 and AVX-512
// kernels share them; each keeps its own reduction and reconstruction, which their ISAs differ in.
#pragma once

namespace caphost::exp_poly {

constexpr float kMin = -87.3365447504f;   // below: exp underflows to 0
constexpr float kMax = 88.3762626647949f;  // above: clamped (exp(kMax) ~ 3.4e38)
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
// y = ((((p0 x + p1) x + p2) x + p3) x + p4) x + p5, then exp = y x^2 + x + 1
constexpr float kP0 = 1.9875691500e-4f;
constexpr float kP1 = 1.3981999507e-3f;
constexpr float kP2 = 8.3334519073e-3f;
constexpr float kP3 = 4.1665795894e-2f;
constexpr float kP4 = 1.6666665459e-1f;
constexpr float kP5 = 5.0000001201e-1f;

}  // namespace caphost::exp_poly
