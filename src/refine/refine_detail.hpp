// Internals shared by the refinement (model_refinement.cpp) and its trust per atom
// (uncertainty.cpp): the pixel masses of one atom along an axis, and the refinement without the
// trust (the bootstrap's replicates).
#pragma once

#include <Eigen/Dense>
#include <array>
#include <cstdint>
#include <vector>

#include "aet/refine/model_refinement.hpp"

namespace aet::detail {

constexpr double kRefineReach = 5.0;  // sigmas: the mass beyond is 6e-7 of an atom
constexpr int kRefineMaxPixels = 96;  // per axis of one footprint; sigma is clamped to fit

// Masses of N(mu, s^2) over the pixels [lo, lo + count) of an axis of n pixels of size a (pixel
// j spans (j - n/2 -+ 1/2) a), with their derivatives by mu and by s.
struct Profile {
  std::int64_t lo = 0, count = 0;
  std::array<double, kRefineMaxPixels> m, dmu, ds;
};

void make_profile(double mu, double s, std::int64_t n, double a, Profile& p);

// One atom's Gauss-Newton normal equations in one view, over its footprint (px along u, py along
// v) against the residual view r (nx wide): the unknowns are its position and intensity, and a
// pixel's Jacobian row is (du a + dv b, l m) with m = m_u m_v, du = dmu_u m_v, dv = m_u dmu_v
// (a = scale * weight * first row of R, b = the same with the second row, l = the view's scale).
// Adds J^T J to A, J^T r to rhs and r^T r to rr; returns the footprint's pixel count. The masses
// are separable, so J^T J is a product of sums along each axis and only J^T r and r^T r visit
// the pixels (three products per pixel, not a 4 x 4 outer product): the sums of the pixel-by-pixel
// form, in another order.
template <class T>
std::int64_t add_atom_normal(const Profile& px, const Profile& py, const Vec3& a, const Vec3& b,
                             double l, const T* r, std::int64_t nx, Eigen::Matrix4d& A,
                             Eigen::Vector4d& rhs, double& rr) {
  double mm_x = 0, dd_x = 0, dm_x = 0, mm_y = 0, dd_y = 0, dm_y = 0;
  for (std::int64_t x = 0; x < px.count; ++x)
    mm_x += px.m[x] * px.m[x], dd_x += px.dmu[x] * px.dmu[x], dm_x += px.dmu[x] * px.m[x];
  for (std::int64_t y = 0; y < py.count; ++y)
    mm_y += py.m[y] * py.m[y], dd_y += py.dmu[y] * py.dmu[y], dm_y += py.dmu[y] * py.m[y];
  double ru = 0, rv = 0, rm = 0, r2 = 0;  // sums of du r, dv r, m r and r^2
  for (std::int64_t y = 0; y < py.count; ++y) {
    const T* row = r + (py.lo + y) * nx + px.lo;
    double sd = 0, sm = 0;
    for (std::int64_t x = 0; x < px.count; ++x) {
      const double v = static_cast<double>(row[x]);
      sd += px.dmu[x] * v;
      sm += px.m[x] * v;
      r2 += v * v;
    }
    ru += py.m[y] * sd;
    rv += py.dmu[y] * sm;
    rm += py.m[y] * sm;
  }
  const double suu = dd_x * mm_y, svv = mm_x * dd_y, suv = dm_x * dm_y;
  const Eigen::Matrix3d ab = a * b.transpose();
  A.topLeftCorner<3, 3>() +=
      suu * a * a.transpose() + suv * (ab + ab.transpose()) + svv * b * b.transpose();
  const Vec3 c = l * (dm_x * mm_y * a + mm_x * dm_y * b);
  A.block<3, 1>(0, 3) += c;
  A.block<1, 3>(3, 0) += c.transpose();
  A(3, 3) += l * l * mm_x * mm_y;
  rhs.head<3>() += ru * a + rv * b;
  rhs[3] += l * rm;
  rr += r2;
  return px.count * py.count;
}

// J^T J of one atom in one view whose image is its core (px, py) plus `amp` times its tail (tx, ty:
// the pixel masses of a Gaussian of the tail's width), in the unknowns and units of
// add_atom_normal: the curvature of the trust per atom when the refinement fitted a probe tail,
// whose part of each atom's image is evidence of the atom as well (up to a fifth of the curvature
// of a 1 A tail). Separable as there: only sums along each axis, whatever the tail's size.
Eigen::Matrix4d atom_curvature_with_tail(const Profile& px, const Profile& py, const Profile& tx,
                                         const Profile& ty, double amp, const Vec3& a,
                                         const Vec3& b, double l);

// The probe tail (ModelRefineOptions::fit_tail): adds to S (nx x ny, row-major) `amplitude` times
// each atom's weight w spread by a Gaussian of standard deviation `width` (Angstrom) about its
// image (R p + shift) in the view. The weights are spread to the four nearest pixels and the sum
// is blurred by a separable sampled Gaussian, so the cost does not grow with atoms times the
// tail's area; the bilinear spread adds about a third of a pixel in quadrature, negligible against
// a tail several pixels wide. Tails of atoms outside the field reach into it.
void add_tail(const std::vector<Vec3>& p, const std::vector<double>& w, const Mat3& R,
              const Vec2& shift, std::int64_t nx, std::int64_t ny, double a, double amplitude,
              double width, double* S);

// refine_atomic_model's checks and fit, without the trust per atom (result.trust left empty).
ModelRefineResult refine_atoms_and_views(const Array3& views, const TiltGeometry& geometry,
                                         const AtomModel& atoms, const ModelRefineOptions& opt);

// Fills result.trust and the model's trust properties (sigma_x, sigma_y, sigma_z, weight_snr,
// weak; with a bootstrap also the curvature's and the bootstrap's sigmas): the curvature of the
// fit at the result, then opt.bootstrap replicates against views drawn with replacement.
void add_trust(const Array3& views, const ModelRefineOptions& opt, ModelRefineResult& result);

}  // namespace aet::detail
