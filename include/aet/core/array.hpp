// Dense 3D float arrays with a physical voxel size: volumes and view stacks.
// Indexing is (x, y, z) with x fastest in memory, as in MRC. A view stack is an Array3
// whose z axis is the view index (nz = number of views).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "aet/core/error.hpp"

namespace aet {

// Voxel (or pixel) spacing in Angstrom along x, y, z. For a stack, z is meaningless and is
// conventionally set equal to x.
struct VoxelSize {
  double x = 1.0, y = 1.0, z = 1.0;
  bool isotropic() const { return x == y && y == z; }
};

// Multiplies sizes with an overflow check; every allocation size goes through here.
inline std::size_t checked_product(std::int64_t a, std::int64_t b, std::int64_t c) {
  if (a <= 0 || b <= 0 || c <= 0) throw InputError("array dimensions must be positive");
  const unsigned __int128 n = static_cast<unsigned __int128>(a) * b * c;
  if (n > static_cast<unsigned __int128>(PTRDIFF_MAX / sizeof(float)))
    throw InputError("array dimensions overflow: " + std::to_string(a) + " x " + std::to_string(b) +
                     " x " + std::to_string(c));
  return static_cast<std::size_t>(n);
}

class Array3 {
 public:
  Array3() = default;
  Array3(std::int64_t nx, std::int64_t ny, std::int64_t nz, float fill = 0.0f)
      : nx_(nx), ny_(ny), nz_(nz), data_(checked_product(nx, ny, nz), fill) {}

  std::int64_t nx() const { return nx_; }
  std::int64_t ny() const { return ny_; }
  std::int64_t nz() const { return nz_; }
  std::size_t size() const { return data_.size(); }
  bool empty() const { return data_.empty(); }

  // 64-bit linear index; x fastest.
  std::size_t index(std::int64_t x, std::int64_t y, std::int64_t z) const {
    return static_cast<std::size_t>((z * ny_ + y) * nx_ + x);
  }
  float& operator()(std::int64_t x, std::int64_t y, std::int64_t z) {
    return data_[index(x, y, z)];
  }
  float operator()(std::int64_t x, std::int64_t y, std::int64_t z) const {
    return data_[index(x, y, z)];
  }

  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  std::vector<float>& vector() { return data_; }
  const std::vector<float>& vector() const { return data_; }

  // Pointer to slice z (a whole view of a stack).
  float* slice(std::int64_t z) { return data_.data() + static_cast<std::size_t>(z) * nx_ * ny_; }
  const float* slice(std::int64_t z) const {
    return data_.data() + static_cast<std::size_t>(z) * nx_ * ny_;
  }

  VoxelSize voxel_size;          // Angstrom
  double origin[3] = {0, 0, 0};  // MRC origin field, carried through unchanged (Angstrom)

 private:
  std::int64_t nx_ = 0, ny_ = 0, nz_ = 0;
  std::vector<float> data_;
};

// Rotation centre of an axis of n samples: index n // 2 (0-based), per docs/design.md.
inline double centre_index(std::int64_t n) {
  return static_cast<double>(n / 2);
}

// "NX x NY x NZ", for messages.
std::string dims_text(const Array3& a);

struct ArrayStats {
  double min = 0, max = 0, mean = 0, rms = 0;  // rms = standard deviation from the mean (MRC)
};
ArrayStats compute_stats(const Array3& a);

// Pearson correlation of two arrays of the same size (NaN when either is constant).
double correlation(const Array3& a, const Array3& b);

}  // namespace aet
