#include "aet/geometry/rotation.hpp"

#include <Eigen/Geometry>
#include <Eigen/LU>
#include <Eigen/SVD>
#include <algorithm>
#include <cmath>

namespace aet {
namespace {
constexpr double kDeg = M_PI / 180.0;
}

Mat3 nearest_rotation(const Mat3& M) {
  Eigen::JacobiSVD<Mat3> svd(M, Eigen::ComputeFullU | Eigen::ComputeFullV);
  Mat3 D = Mat3::Identity();
  D(2, 2) = (svd.matrixU() * svd.matrixV().transpose()).determinant() < 0 ? -1 : 1;
  return svd.matrixU() * D * svd.matrixV().transpose();
}

Mat3 frame_rotation(const Vec3& b1, const Vec3& b2, const Vec3& t1, const Vec3& t2) {
  auto frame = [](const Vec3& u, const Vec3& v) {
    Mat3 f;
    f.col(0) = u.normalized();
    f.col(2) = u.cross(v).normalized();
    f.col(1) = f.col(2).cross(f.col(0));
    return f;
  };
  return frame(b1, b2) * frame(t1, t2).transpose();
}

double rotation_angle_deg(const Mat3& R) {
  return std::acos(std::clamp(0.5 * (R.trace() - 1.0), -1.0, 1.0)) / kDeg;
}

Mat3 rot_x(double deg) {
  const double c = std::cos(deg * kDeg), s = std::sin(deg * kDeg);
  Mat3 m;
  m << 1, 0, 0, 0, c, -s, 0, s, c;
  return m;
}

Mat3 rot_y(double deg) {
  const double c = std::cos(deg * kDeg), s = std::sin(deg * kDeg);
  Mat3 m;
  m << c, 0, s, 0, 1, 0, -s, 0, c;
  return m;
}

Mat3 rot_z(double deg) {
  const double c = std::cos(deg * kDeg), s = std::sin(deg * kDeg);
  Mat3 m;
  m << c, -s, 0, s, c, 0, 0, 0, 1;
  return m;
}

Mat3 rotation_from_euler(const Euler& e) {
  return (rot_z(e.phi) * rot_y(e.theta) * rot_x(e.psi)).transpose();
}

Euler euler_from_rotation(const Mat3& R) {
  // M = R^T = Rz(phi) Ry(theta) Rx(psi):
  //   M(2,0) = -sin(theta), M(2,1) = cos(theta) sin(psi), M(2,2) = cos(theta) cos(psi),
  //   M(1,0) = sin(phi) cos(theta), M(0,0) = cos(phi) cos(theta).
  const Mat3 M = R.transpose();
  Euler e;
  const double s = std::max(-1.0, std::min(1.0, -M(2, 0)));
  e.theta = std::asin(s) / kDeg;
  if (std::abs(s) < 1.0 - 1e-12) {
    e.phi = std::atan2(M(1, 0), M(0, 0)) / kDeg;
    e.psi = std::atan2(M(2, 1), M(2, 2)) / kDeg;
  } else {
    // Gimbal lock: only phi - psi (theta = +90) or phi + psi (theta = -90) is defined.
    e.psi = 0.0;
    e.phi = std::atan2(-M(0, 1), M(1, 1)) / kDeg;
  }
  return e;
}

Euler euler_from_genfire_zyz(double phi, double theta, double psi) {
  const Mat3 R = (rot_z(phi) * rot_y(theta) * rot_z(psi)).transpose();
  return euler_from_rotation(R);
}

ViewGeometry ViewGeometry::from_euler(const Euler& e, Vec2 shift) {
  ViewGeometry g;
  g.R = rotation_from_euler(e);
  g.shift = shift;
  return g;
}

ViewGeometry ViewGeometry::from_tilt(double theta_deg, Vec2 shift) {
  return from_euler(Euler{0.0, theta_deg, 0.0}, shift);
}

bool ViewGeometry::is_single_axis(double tol_deg) const {
  // A pure y rotation leaves the y axis fixed: R(1,1) = 1 and the y row/column are unit vectors.
  const double tol = 1.0 - std::cos(tol_deg * kDeg) + 1e-12;
  return std::abs(R(1, 1) - 1.0) <= tol && std::abs(R(0, 1)) <= std::sin(tol_deg * kDeg) + 1e-12 &&
         std::abs(R(2, 1)) <= std::sin(tol_deg * kDeg) + 1e-12;
}

}  // namespace aet
