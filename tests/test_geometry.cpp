// The view-geometry convention of docs/design.md, pinned by hand-computed cases.
#include <gtest/gtest.h>

#include <cmath>

#include "aet/core/rng.hpp"
#include "aet/geometry/rotation.hpp"

using namespace aet;

namespace {
constexpr double kDeg = M_PI / 180.0;

void expect_matrix_near(const Mat3& a, const Mat3& b, double tol) {
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(a(i, j), b(i, j), tol) << "element " << i << "," << j;
}
}  // namespace

TEST(Geometry, ActiveRotationsAreRightHanded) {
  // Rz(90) takes x to y, Ry(90) takes z to x, Rx(90) takes y to z.
  EXPECT_TRUE((rot_z(90) * Vec3(1, 0, 0)).isApprox(Vec3(0, 1, 0), 1e-12));
  EXPECT_TRUE((rot_y(90) * Vec3(0, 0, 1)).isApprox(Vec3(1, 0, 0), 1e-12));
  EXPECT_TRUE((rot_x(90) * Vec3(0, 1, 0)).isApprox(Vec3(0, 0, 1), 1e-12));
}

TEST(Geometry, SingleAxisTiltFollowsTheDataConvention) {
  // shared/data README: for phi = psi = 0, u = x cos(theta) - z sin(theta), v = y.
  for (double theta : {-70.0, -33.0, 0.0, 12.5, 60.0}) {
    const ViewGeometry g = ViewGeometry::from_tilt(theta);
    const Vec3 p(2.5, -1.25, 4.0);
    const Vec3 q = g.map(p);
    EXPECT_NEAR(q.x(), p.x() * std::cos(theta * kDeg) - p.z() * std::sin(theta * kDeg), 1e-12);
    EXPECT_NEAR(q.y(), p.y(), 1e-12);
    EXPECT_NEAR(q.z(), p.x() * std::sin(theta * kDeg) + p.z() * std::cos(theta * kDeg), 1e-12);
    EXPECT_TRUE(g.is_single_axis());
  }
  EXPECT_FALSE(ViewGeometry::from_euler({5, 30, 0}).is_single_axis(1.0));
}

TEST(Geometry, EulerIsTransposeOfZyxProduct) {
  const Euler e{20, -35, 50};
  const Mat3 expected = (rot_z(20) * rot_y(-35) * rot_x(50)).transpose();
  expect_matrix_near(rotation_from_euler(e), expected, 1e-14);
  // A hand-computed entry: R(0,2) = M(2,0) of M = Rz Ry Rx, which is -sin(theta).
  EXPECT_NEAR(rotation_from_euler(e)(0, 2), std::sin(35 * kDeg), 1e-14);
  // Shifts add to (u, v) only.
  const ViewGeometry g = ViewGeometry::from_euler(e, Vec2(1.5, -2.0));
  const Vec3 p(1, 2, 3), q = rotation_from_euler(e) * p;
  EXPECT_TRUE(g.map(p).isApprox(Vec3(q.x() + 1.5, q.y() - 2.0, q.z()), 1e-12));
}

TEST(Geometry, EulerRoundTripsThroughTheMatrix) {
  Rng rng(42);
  for (int i = 0; i < 500; ++i) {
    const Euler e{rng.uniform(-180, 180), rng.uniform(-89.9, 89.9), rng.uniform(-180, 180)};
    const Euler back = euler_from_rotation(rotation_from_euler(e));
    EXPECT_NEAR(back.phi, e.phi, 1e-8);
    EXPECT_NEAR(back.theta, e.theta, 1e-8);
    EXPECT_NEAR(back.psi, e.psi, 1e-8);
  }
  // Gimbal lock: the matrix is still reproduced.
  for (double theta : {90.0, -90.0}) {
    const Mat3 R = rotation_from_euler({30, theta, 10});
    expect_matrix_near(rotation_from_euler(euler_from_rotation(R)), R, 1e-9);
  }
}

TEST(Geometry, GenfireZyzConverter) {
  // GENFIRE's projection matrix, written out as in its calculate3Dprojection (degrees).
  auto genfire = [](double phi, double theta, double psi) {
    const double cp = std::cos(phi * kDeg), sp = std::sin(phi * kDeg);
    const double ct = std::cos(theta * kDeg), st = std::sin(theta * kDeg);
    const double cs = std::cos(psi * kDeg), ss = std::sin(psi * kDeg);
    Mat3 R;
    R << cs * ct * cp - ss * sp, cs * ct * sp + ss * cp, -cs * st,  //
        -ss * ct * cp - cs * sp, -ss * ct * sp + cs * cp, ss * st,  //
        st * cp, st * sp, ct;
    return R;
  };
  for (const auto& a : {Euler{0, 30, 0}, Euler{40, 25, -70}, Euler{-120, 60, 15}}) {
    const Euler e = euler_from_genfire_zyz(a.phi, a.theta, a.psi);
    expect_matrix_near(rotation_from_euler(e), genfire(a.phi, a.theta, a.psi), 1e-12);
  }
  // A pure tilt means the same in both conventions.
  const Euler t = euler_from_genfire_zyz(0, 42, 0);
  EXPECT_NEAR(t.phi, 0, 1e-12);
  EXPECT_NEAR(t.theta, 42, 1e-12);
  EXPECT_NEAR(t.psi, 0, 1e-12);
}
