// View geometry, exactly as docs/design.md defines it.
//
// Each view has a rotation R and a 2D shift. From Euler angles (phi, theta, psi) in degrees:
//   R = (Rz(phi) Ry(theta) Rx(psi))^T
// with standard right-handed active rotations. A point at centred position p (Angstrom, origin at
// the rotation centre, index n // 2 on each axis) lands at (u, v, w) = R p; the view integrates
// along w and the pixel coordinate is (u + shift_x, v + shift_y). A single-axis tilt theta (tilt
// axis along the image y axis, IMOD .tlt) is Euler (0, theta, 0), so u = x cos(theta) - z
// sin(theta).
#pragma once

#include <Eigen/Core>
#include <vector>

namespace aet {

using Mat3 = Eigen::Matrix3d;
using Vec3 = Eigen::Vector3d;
using Vec2 = Eigen::Vector2d;

// Euler angles in degrees, in the order phi, theta, psi (the 3-column angle file order).
struct Euler {
  double phi = 0, theta = 0, psi = 0;
};

// Active right-handed rotations about one axis; angle in degrees.
Mat3 rot_x(double deg);
Mat3 rot_y(double deg);
Mat3 rot_z(double deg);

// R = (Rz(phi) Ry(theta) Rx(psi))^T.
Mat3 rotation_from_euler(const Euler& e);

// Inverse of rotation_from_euler: the (phi, theta, psi) with theta in [-90, 90] that gives R.
// At the gimbal lock (|theta| = 90) psi is set to 0.
Euler euler_from_rotation(const Mat3& R);

// The proper rotation nearest to M in the Frobenius norm (orthogonal Procrustes, by SVD): the
// least-squares rotation between two sets of frames or point clouds.
Mat3 nearest_rotation(const Mat3& M);
// The rotation taking the orthonormal frame of (t1, t2) onto that of (b1, b2): t1 onto b1's
// direction, the plane of t1 and t2 onto that of b1 and b2 (template matching of bond pairs).
Mat3 frame_rotation(const Vec3& b1, const Vec3& b2, const Vec3& t1, const Vec3& t2);

// Angle of the rotation R (degrees, in [0, 180]).
double rotation_angle_deg(const Mat3& R);

// GENFIRE's ZYZ convention: R_genfire = (Rz(phi) Ry(theta) Rz(psi))^T, with the same axis and
// centre conventions as ours (checked against GENFIRE's calculate3Dprojection). Returns the
// equivalent aet Euler triple.
Euler euler_from_genfire_zyz(double phi, double theta, double psi);

struct ViewGeometry {
  Mat3 R = Mat3::Identity();
  Vec2 shift = Vec2::Zero();  // Angstrom, added to (u, v)

  static ViewGeometry from_euler(const Euler& e, Vec2 shift = Vec2::Zero());
  static ViewGeometry from_tilt(double theta_deg, Vec2 shift = Vec2::Zero());
  Euler euler() const { return euler_from_rotation(R); }
  // Position (u, v, w) of a centred point p, shift included in u and v.
  Vec3 map(const Vec3& p) const {
    Vec3 q = R * p;
    q.x() += shift.x();
    q.y() += shift.y();
    return q;
  }
  // True when this is a pure tilt about the image y axis (phi = psi = 0 within tol degrees).
  bool is_single_axis(double tol_deg = 1e-9) const;
};

using TiltGeometry = std::vector<ViewGeometry>;

}  // namespace aet
