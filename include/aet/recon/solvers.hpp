// Tomographic reconstruction from a tilt series: RESIRE, SIRT and filtered back projection, all
// built on the matched projector pair of projector.hpp (see docs/reconstruction.md).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "aet/core/array.hpp"
#include "aet/core/device.hpp"
#include "aet/geometry/rotation.hpp"

namespace aet {

enum class Algorithm { resire, sirt, fbp, genfire };
// "resire", "sirt", "fbp" or "genfire"; throws InputError listing the names otherwise.
Algorithm parse_algorithm(const std::string& name);
const char* algorithm_name(Algorithm a);

// Apodisation of the FBP ramp filter.
enum class FbpFilter { ramp, shepp_logan, hann };
FbpFilter parse_fbp_filter(const std::string& name);  // "ramp", "shepp-logan", "hann"
const char* fbp_filter_name(FbpFilter f);

// GENFIRE (Pryor et al., Sci. Rep. 7, 10409, 2017): the views are gridded onto an oversampled 3D
// Fourier grid (each view's 2D transform is a central slice), then the volume is found by
// alternating the Fourier constraint (measured grid values where the views give them) with
// positivity and the support in real space. A random fraction of the gridded values is held out
// and R_free (their relative misfit) reported per iteration.
struct GenfireOptions {
  double oversampling = 2.0;          // Fourier grid = oversampling x the volume (per axis)
  double interpolation_radius = 0.3;  // Fourier voxels: gridding reach around each slice sample
  double rfree_fraction = 0.05;       // share of the gridded values held out for R_free
  bool resolution_extension = true;   // constrain low frequencies first, widening per iteration
};

struct ReconOptions {
  Algorithm algorithm = Algorithm::resire;
  int iterations = 50;
  // RESIRE: gradient step, normalised by the number of views and the volume depth (RESIRE's
  // dt = step / n_views / nz), stable up to about 2. SIRT: relaxation factor (stable below 2).
  double step = 1.0;
  bool positivity = true;           // iterative algorithms only; FBP stays linear
  const Array3* support = nullptr;  // optional mask, volume dims; voxels where it is 0 are forced
                                    // to 0
  // RESIRE and SIRT: the starting volume (volume dims, finite); nullptr = zeros. Projection
  // matching warm-starts each round from the previous round's volume.
  const Array3* initial = nullptr;
  // RESIRE and SIRT: FISTA momentum with a function-value restart. Several times fewer
  // iterations for the same R1 (docs/reconstruction.md); one more volume of memory.
  bool accelerate = false;
  // RESIRE, SIRT and FBP: the sub-pixel part of each view's shift is applied to the view in
  // Fourier space and only whole pixels are left to the projector, whose interpolation would
  // otherwise blur each view by its own shift phase (docs/reconstruction.md, measured). R factors
  // are then those of the resampled views. Off by default: it also makes geometries whose rays
  // meet voxel centres (tilt axis exactly on y) converge faster than others, which biases
  // comparisons between geometries (alignment). GENFIRE applies shifts as Fourier phases anyway.
  bool fourier_shift = false;
  std::int64_t nx = 0, ny = 0, nz = 0;  // volume size; 0 = nx = nz = view width, ny = view height
  // An extended object (a film, a slab wider than the field of view): the solve runs on a volume
  // as wide and high as the rays through the views reach within the volume's depth
  // (extended_object_extent), so that the material a tilted view sees beside the field of view has
  // voxels of its own instead of piling up in the field's vacuum and at its faces; `volume` is
  // then the field of view (nx x ny x nz, centred) and `full_volume` the whole solve. The support
  // and the starting volume may have either size (a field-of-view support is continued sideways
  // from its edges, a field-of-view start padded with zeros). docs/reconstruction.md.
  bool extended = false;
  FbpFilter filter = FbpFilter::ramp;
  GenfireOptions genfire;
  Device device;  // cpu by default
  // Called after each iteration with the R factors of the volume after that iteration (1-based).
  std::function<void(int iteration, double r1, double r2)> on_iteration;
};

struct ReconResult {
  Array3 volume;               // voxel size = the views' pixel size
  Array3 full_volume;          // ReconOptions::extended: the whole solved volume; empty otherwise
  std::vector<double> r1, r2;  // per iteration (FBP: one entry), of the volume after it
  std::vector<double> r_free;  // GENFIRE: per iteration; empty for the other algorithms
  double seconds = 0;
  std::uint64_t device_bytes = 0;  // peak device memory the solve held (CUDA); 0 on the CPU
  // Under MPI (docs/hpc.md): the ranks that shared the solve and how ("slab" or "view"); 1 and
  // "" for a solve in one process.
  int mpi_ranks = 1;
  std::string mpi_mode;
};

// Throws InputError for a view count that differs from the geometry's, non-finite views, a
// non-positive pixel size, iterations < 1 (iterative algorithms), step <= 0, support or initial
// volume dimensions that differ from the volume's, a non-finite initial volume, an initial volume
// for FBP or GENFIRE, or negative volume sizes.
ReconResult reconstruct(const Array3& views, const TiltGeometry& geometry, const ReconOptions& opt);

// The volume size of an extended-object solve (ReconOptions::extended): every point within the
// depth nz (voxels, centred) that some view's field of view (views_nx x views_ny pixels of `pixel`
// Angstrom, each view's shift included) sees, at least nx x ny and at most 4 nx x 4 ny (the
// steepest views reach furthest: at 63 degrees and a depth equal to the width, 4.1 widths; points
// that far out are seen by one or two views only). The result keeps the parity of nx and ny, so the
// field of view sits exactly at the centre.
struct VolumeExtent {
  std::int64_t nx = 0, ny = 0;
};
VolumeExtent extended_object_extent(const TiltGeometry& geometry, std::int64_t views_nx,
                                    std::int64_t views_ny, double pixel, std::int64_t nx,
                                    std::int64_t ny, std::int64_t nz);

// R1 = sum|b - l p| / sum|b| with l the least-squares scale (l = <b, p> / <p, p>);
// R2 = sum (b - l p)^2 / sum b^2. `scale` receives l. Throws InputError for different dims.
double r1_factor(const Array3& measured, const Array3& computed, double* scale = nullptr);
double r2_factor(const Array3& measured, const Array3& computed);
// The R1 that the views' own pixel noise leaves even for a perfect model: sum|noise| / sum|b|,
// with each pixel's noise read off the second difference along x, r = b_x - (b_{x-1} + b_{x+1}) / 2
// (var 1.5 sigma^2 for white noise; a signal smooth over a few pixels, as an atom's image is at
// the sampling AET uses, hardly enters it): E|noise| = E|r| / sqrt(1.5). Shot noise at a fraction
// of a count per pixel makes R1 of a right model exceed 1; real data that were denoised give
// about 0.04. 0 for views narrower than 3 pixels.
double noise_r1(const Array3& views);

// Filtered back projection (fbp.cpp): each view filtered along u with the (apodised) ramp, back
// projected with the matched back projector and weighted by its share of the tilt range, so the
// volume has the intensity scale of the object (voxel units, as the projector's).
Array3 filtered_back_projection(const Array3& views, const TiltGeometry& geometry, std::int64_t nx,
                                std::int64_t ny, std::int64_t nz, FbpFilter filter,
                                const Device& dev);

}  // namespace aet
