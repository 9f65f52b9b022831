// The constants of the vector exp and erf that the AVX2 and AVX-512 kernels share. Each kernel
// keeps its own reduction and reconstruction, which their ISAs differ in.
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

// erf(z) for z >= 0 by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7):
// t = 1 / (1 + p z), erf = 1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-z^2).
namespace caphost::erf_poly {

constexpr float kInvSqrt2 = 0.70710678118654752f;  // GELU's erf(x / sqrt 2)
constexpr float kP = 0.3275911f;
constexpr float kA5 = 1.061405429f;
constexpr float kA4 = -1.453152027f;
constexpr float kA3 = 1.421413741f;
constexpr float kA2 = -0.284496736f;
constexpr float kA1 = 0.254829592f;

}  // namespace caphost::erf_poly
