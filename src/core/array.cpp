#include "aet/core/array.hpp"

#include <cmath>
#include <limits>

namespace aet {

ArrayStats compute_stats(const Array3& a) {
  ArrayStats s;
  if (a.empty()) return s;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0.0;
  for (float v : a.vector()) {
    lo = std::min(lo, static_cast<double>(v));
    hi = std::max(hi, static_cast<double>(v));
    sum += v;
  }
  const double mean = sum / static_cast<double>(a.size());
  double ss = 0.0;
  for (float v : a.vector()) ss += (v - mean) * (v - mean);
  s.min = lo;
  s.max = hi;
  s.mean = mean;
  s.rms = std::sqrt(ss / static_cast<double>(a.size()));
  return s;
}

}  // namespace aet
