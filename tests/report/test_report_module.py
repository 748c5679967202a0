"""Unit tests of the report module (python/aet_report) that need no run folder: the frame the
images are drawn in (atoms centred on voxel n // 2 land on their peaks), the class boundaries read
from the tracer's decision, and the XYZ reader."""
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))

from aet_report import figures  # noqa: E402
from aet_report.run_folder import Atoms, class_boundaries, read_xyz  # noqa: E402


class Frame(unittest.TestCase):
    def blob_volume(self, shape, peak, voxel):
        """A Gaussian at voxel `peak` = (ix, iy, iz) of a (z, y, x) array."""
        z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
        ix, iy, iz = peak
        return np.exp(-((x - ix) ** 2 + (y - iy) ** 2 + (z - iz) ** 2) / 2.0)

    def test_atom_centred_on_n_half_lands_on_its_peak(self):
        # Odd and even sizes: the centre is n // 2 for both (not (n - 1) / 2).
        for shape in [(12, 11, 10), (9, 14, 13)]:
            nz, ny, nx = shape
            voxel = 0.4
            peak = (nx // 2 + 2, ny // 2 - 3, nz // 2 + 1)
            data = self.blob_volume(shape, peak, voxel)
            position = np.array([(peak[0] - nx // 2) * voxel, (peak[1] - ny // 2) * voxel,
                                 (peak[2] - nz // 2) * voxel])
            for k, n in enumerate((nx, ny, nz)):
                self.assertAlmostEqual(float(figures.to_index(position[k], n, voxel)), peak[k])
                self.assertAlmostEqual(float(figures.coordinate(peak[k], n, voxel)), position[k])
            atoms = Atoms(["Pt"], position[np.newaxis], {}, {})
            # The overlay's slices go through the atom nearest the origin: through this one.
            at = figures.overlay_planes(atoms, shape, voxel)
            self.assertEqual(at, peak)
            slices = figures.central_slices(data, at)
            # Each slice's brightest pixel, mapped through the imshow extent, is the atom's
            # in-plane position (pixel centres at coordinate(i)).
            for (name, image, _, _, (nh, nv)), (ah, av) in zip(slices, [(0, 1), (0, 2), (1, 2)]):
                row, col = np.unravel_index(np.argmax(image), image.shape)
                h0, h1, v0, v1 = figures.extent(nh, nv, voxel)
                self.assertAlmostEqual(h0 + (col + 0.5) * (h1 - h0) / nh, position[ah], msg=name)
                self.assertAlmostEqual(v0 + (row + 0.5) * (v1 - v0) / nv, position[av], msg=name)
            # And the atom is the one drawn on each of them.
            for axis in range(3):
                plane = float(figures.coordinate(at[axis], shape[2 - axis], voxel))
                self.assertEqual(list(figures.slab_atoms(atoms, axis, plane)), [0])

    def test_orthoslices_go_through_the_origin(self):
        data = np.arange(7 * 6 * 5, dtype=float).reshape(7, 6, 5)
        xy, xz, yz = figures.central_slices(data)
        np.testing.assert_array_equal(xy[1], data[3])
        np.testing.assert_array_equal(xz[1], data[:, 3, :])
        np.testing.assert_array_equal(yz[1], data[:, :, 2])

    def test_scale_bar_lengths(self):
        self.assertEqual(figures.nice_length(42.7), 10.0)
        self.assertEqual(figures.nice_length(9.0), 2.0)
        self.assertEqual(figures.nice_length(100.0), 20.0)


class Classes(unittest.TestCase):
    def test_non_atom_cut_and_species_midpoints(self):
        how = ("kmeans 3 classes, lowest = non-atoms below 5.3582 (widest gap; k-means midpoint "
               "6.1) (centres 1.06617 12 21.6267)")
        cut, between = class_boundaries(how)
        self.assertAlmostEqual(cut, 5.3582)
        self.assertEqual(len(between), 1)
        self.assertAlmostEqual(between[0], 0.5 * (12 + 21.6267))

    def test_no_non_atom_class(self):
        cut, between = class_boundaries(
            "kmeans 2 classes, no separate non-atom class (centres 0.002 0.019)")
        self.assertIsNone(cut)
        self.assertAlmostEqual(between[0], 0.0105)
        self.assertEqual(class_boundaries("kmeans 1 classes, no separate non-atom class "
                                          "(centres 0.0190768)"), (None, []))

    def test_no_centres(self):
        self.assertIsNone(class_boundaries("no peaks"))


class Xyz(unittest.TestCase):
    def test_extended_xyz_columns_and_info(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "a.xyz")
            with open(path, "w") as f:
                f.write('2\nProperties=species:S:1:pos:R:3:intensity:R:1 trace_classes="kmeans 1 '
                        'classes (centres 3)" seed=4\nFe 1 2 3 0.5\nPt -1 -2 -3.5 1.5\n')
            a = read_xyz(path)
        self.assertEqual(a.species, ["Fe", "Pt"])
        np.testing.assert_array_equal(a.positions, [[1, 2, 3], [-1, -2, -3.5]])
        np.testing.assert_array_equal(a.properties["intensity"], [0.5, 1.5])
        self.assertEqual(a.info["trace_classes"], "kmeans 1 classes (centres 3)")


class Trust(unittest.TestCase):
    def test_overlay_gains_a_row_coloured_by_the_position_sd(self):
        from aet_report.run_folder import Volume
        vol = Volume(np.random.default_rng(0).random((10, 10, 10)), 0.5)
        atoms = Atoms(["Pt", "Pt"], np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]]), {}, {})

        def size(png_bytes):  # PNG width and height from the IHDR chunk
            return (int.from_bytes(png_bytes[16:20], "big"), int.from_bytes(png_bytes[20:24], "big"))

        w1, h1 = size(figures.atom_overlay(vol, atoms))
        w2, h2 = size(figures.atom_overlay(vol, atoms, np.array([0.8, 1.6])))
        self.assertEqual(w1, w2)
        self.assertGreater(h2, 1.8 * h1)


if __name__ == "__main__":
    unittest.main()
