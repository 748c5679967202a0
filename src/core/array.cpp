#include "aet/core/array.hpp"

#include <cmath>
#include <limits>

namespace aet {

std::string dims_text(const Array3& a) {
  return std::to_string(a.nx()) + " x " + std::to_string(a.ny()) + " x " + std::to_string(a.nz());
}

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

double correlation(const Array3& a, const Array3& b) {
  if (a.size() != b.size()) throw InternalError("correlation: arrays differ in size");
  // Two passes around the means: the one-pass formula loses precision on large, offset volumes.
  const double n = static_cast<double>(a.size());
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) ma += a.data()[i], mb += b.data()[i];
  ma /= n;
  mb /= n;
  double saa = 0, sbb = 0, sab = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double x = a.data()[i] - ma, y = b.data()[i] - mb;
    saa += x * x;
    sbb += y * y;
    sab += x * y;
  }
  return sab / std::sqrt(saa * sbb);
}

}  // namespace aet
