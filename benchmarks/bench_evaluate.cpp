// Evaluation speed on a particle of real size: a ~29,000-atom fcc ellipsoid scored against itself
// rotated (an axis permutation and 2 degrees), shifted and with 2 % of the atoms missing -- the
// case tests/test_evaluate.cpp (Evaluate.LargeModelRegisters) checks for correctness.
// Usage: bench_evaluate [--repeat N] [--json FILE]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "aet/analysis/evaluate.hpp"
#include "aet/core/parallel.hpp"
#include "aet/core/progress.hpp"

using namespace aet;

namespace {

// fcc Pt (a = 3.92 A) inside an ellipsoid of semi-axes 60, 48, 36 A: unequal axes, so exactly
// one axis permutation registers it.
AtomModel ellipsoid() {
  const double a = 3.92, r[3] = {60, 48, 36};
  const double basis[4][3] = {{0, 0, 0}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5}};
  AtomModel m;
  const int n = static_cast<int>(std::ceil(r[0] / a)) + 1;
  for (int i = -n; i <= n; ++i)
    for (int j = -n; j <= n; ++j)
      for (int k = -n; k <= n; ++k)
        for (const auto& b : basis) {
          const Vec3 p((i + b[0]) * a, (j + b[1]) * a, (k + b[2]) * a);
          const double q = p.x() * p.x() / (r[0] * r[0]) + p.y() * p.y() / (r[1] * r[1]) +
                           p.z() * p.z() / (r[2] * r[2]);
          if (q <= 1) m.add("Pt", p);
        }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  int repeat = 3;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = std::atoi(argv[++i]);
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
  }
  set_verbosity(Verbosity::quiet);
  const AtomModel truth = ellipsoid();
  const double t = 2.0 * M_PI / 180;
  Mat3 ry;
  ry << std::cos(t), 0, std::sin(t), 0, 1, 0, -std::sin(t), 0, std::cos(t);
  Mat3 perm;
  perm << 0, 0, 1, 0, -1, 0, 1, 0, 0;
  const Mat3 rot = ry * perm;
  AtomModel traced;
  for (std::size_t i = 0; i < truth.size(); ++i)
    if (i % 50 != 0) traced.add("Pt", rot * truth.positions[i] + Vec3(25.0, -3.0, 14.0));

  double best = 1e300;
  EvaluationResult r;
  for (int k = 0; k < repeat; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    r = evaluate(traced, truth);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, s);
  }
  std::ostringstream js;
  js << "{\n  \"benchmark\": \"evaluate\",\n  \"cpu_threads\": " << num_threads()
     << ",\n  \"truth_atoms\": " << truth.size() << ",\n  \"traced_atoms\": " << traced.size()
     << ",\n  \"matched\": " << r.matched << ",\n  \"permutation\": \"" << r.permutation
     << "\",\n  \"seconds_best_of_" << repeat << "\": " << best << "\n}\n";
  std::fputs(js.str().c_str(), stdout);
  if (!json_path.empty()) std::ofstream(json_path) << js.str();
  return r.matched == traced.size() ? 0 : 1;
}
