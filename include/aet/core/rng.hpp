// A seeded random generator whose streams are identical on every platform and library version
// (std:: distributions are implementation-defined, so they are not used for reproducible data).
#pragma once

#include <cstdint>

namespace aet {

class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  std::uint64_t next_u64();              // xoshiro256**
  double uniform();                      // [0, 1)
  double uniform(double lo, double hi);  // [lo, hi)
  std::uint64_t below(std::uint64_t n);  // uniform integer in [0, n), n > 0
  double normal();                       // standard normal
  double normal(double mean, double sd) { return mean + sd * normal(); }
  std::int64_t poisson(double lambda);  // lambda >= 0
  // A new independent generator derived from this one's seed and a stream number; lets parallel
  // loops draw per-item numbers that do not depend on the thread count.
  static Rng stream(std::uint64_t seed, std::uint64_t stream_id);

 private:
  std::uint64_t s_[4];
  bool have_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace aet
