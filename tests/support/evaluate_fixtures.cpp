// Atom models for the evaluation tests (evaluate_fixtures.hpp).
#include "support/evaluate_fixtures.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace aet::test {

AtomModel blob(std::size_t n) {
  struct Site {
    double score;
    Vec3 p;
  };
  std::vector<Site> sites;
  const int m = 12 + static_cast<int>(std::cbrt(static_cast<double>(n)));
  for (int i = -m; i <= m; ++i)
    for (int j = -m; j <= m; ++j)
      for (int k = -m; k <= m; ++k) {
        if ((i + j + k) % 2 != 0) continue;
        const Vec3 p = Vec3(i, j, k) * (kA / 2);
        const Vec3 q = p - Vec3(0.9, 0.45, 0.3);
        const double s = std::pow(q.x() / 1.4, 2) + std::pow(q.y() / 1.15, 2) +
                         std::pow(q.z() / 0.9, 2) + 0.15 * q.x() * q.y() +
                         0.05 * q.x() * q.y() * q.z() / (1.0 + q.norm());
        sites.push_back({s, p});
      }
  std::stable_sort(sites.begin(), sites.end(),
                   [](const Site& a, const Site& b) { return a.score < b.score; });
  AtomModel model;
  for (std::size_t a = 0; a < n; ++a) model.add(a % 7 == 3 ? "Ni" : "Pt", sites[a].p);
  return model;
}

AtomModel mapped(const AtomModel& in, const Mat3& M, const Vec3& shift) {
  AtomModel out = in;
  for (auto& p : out.positions) p = M * p + shift;
  return out;
}

Mat3 rows(const Vec3& a, const Vec3& b, const Vec3& c) {
  Mat3 m;
  m.row(0) = a.transpose();
  m.row(1) = b.transpose();
  m.row(2) = c.transpose();
  return m;
}

}  // namespace aet::test
