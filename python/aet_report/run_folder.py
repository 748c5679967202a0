"""Reading an `aet pipeline` run folder (docs/formats.md): what the report draws from."""
import json
import os
import re
import shlex

import mrcfile
import numpy as np

from aet_report.cli import ReportInputError


class Volume:
    """A volume or view stack as (z, y, x) float32 with its voxel size in Angstrom."""

    def __init__(self, data, voxel):
        self.data = data
        self.voxel = voxel


class Atoms:
    """An extended XYZ model: species, positions (N x 3, Angstrom, centred on voxel n // 2),
    per-atom properties and the comment line's key=value info."""

    def __init__(self, species, positions, properties, info):
        self.species = species
        self.positions = positions
        self.properties = properties
        self.info = info


def read_mrc(path):
    try:
        with mrcfile.open(path, permissive=True) as m:
            data = np.asarray(m.data, dtype=np.float32)
            voxel = float(m.voxel_size.x)
    except (OSError, ValueError) as e:
        raise ReportInputError("%s: not a readable MRC file (%s)" % (path, e))
    if data.ndim == 2:
        data = data[np.newaxis]
    return Volume(data, voxel if voxel > 0 else 1.0)


def read_xyz(path):
    """aet's extended XYZ (Properties=species:S:1:pos:R:3:...); plain XYZ too."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
        n = int(lines[0].split()[0])
        comment = lines[1] if len(lines) > 1 else ""
        info = {}
        for token in shlex.split(comment):
            if "=" in token:
                k, v = token.split("=", 1)
                info[k] = v
        columns = [("species", "S", 1), ("pos", "R", 3)]
        if "Properties" in info:
            parts = info["Properties"].split(":")
            columns = [(parts[i], parts[i + 1], int(parts[i + 2])) for i in range(0, len(parts), 3)]
        rows = [line.split() for line in lines[2:2 + n]]
        if len(rows) != n:
            raise ValueError("%d atom lines, the count line says %d" % (len(rows), n))
        species, properties, col = [], {}, 0
        positions = np.zeros((n, 3))
        for name, kind, width in columns:
            if name == "species":
                species = [r[col] for r in rows]
            elif name == "pos":
                positions = np.array([[float(v) for v in r[col:col + 3]] for r in rows]).reshape(n, 3)
            elif kind in ("R", "I", "L") and width == 1:
                properties[name] = np.array([float(r[col]) for r in rows])
            col += width
    except (OSError, ValueError, IndexError) as e:
        raise ReportInputError("%s: not a readable XYZ file (%s)" % (path, e))
    return Atoms(species, positions, properties, info)


def read_geometry(path):
    """geometry.txt: phi theta psi shift_x shift_y per view (degrees, Angstrom)."""
    try:
        g = np.loadtxt(path, comments="#", ndmin=2)
    except (OSError, ValueError) as e:
        raise ReportInputError("%s: not a readable geometry file (%s)" % (path, e))
    if g.shape[1] != 5:
        raise ReportInputError("%s: %d columns per view, expected 5" % (path, g.shape[1]))
    return g


def effective_config(log_path):
    """The effective configuration that pipeline.log ends with (key = value lines)."""
    with open(log_path) as f:
        text = f.read()
    marker = "# effective configuration\n"
    return text.split(marker, 1)[1].strip() if marker in text else ""


def class_boundaries(how):
    """The class decision as the tracer records it ("kmeans 3 classes, lowest = non-atoms below
    5.36 (...) (centres 1.07 12.1 21.6)"): the non-atom cut (None without a non-atom class) and
    the boundaries between the species, lightest first. 1D k-means gives each atom the nearest
    centre, so a species boundary is the midpoint of two neighbouring centres. None when the text
    holds no centres."""
    m = re.search(r"\(centres ([^)]*)\)", how or "")
    if not m:
        return None
    centres = [float(v) for v in m.group(1).split()]
    cut = None
    if "lowest = non-atoms" in how:
        below = re.search(r"below ([-+0-9.eE]+)", how)
        cut = float(below.group(1)) if below else 0.5 * (centres[0] + centres[1])
        centres = centres[1:]
    species = [0.5 * (a + b) for a, b in zip(centres, centres[1:])]
    return cut, species


class RunFolder:
    """The files of one run folder, each read on first use; what is missing is noted (the report
    says so at its top) rather than fatal, except metrics.json, without which it is no run."""

    def __init__(self, path):
        if not os.path.isdir(path):
            raise ReportInputError("%s: not a directory (give an aet pipeline run folder)" % path)
        self.path = path
        self.notes = []
        metrics = self.file("metrics.json")
        if not os.path.isfile(metrics):
            raise ReportInputError("%s: missing; %s is not an aet pipeline run folder"
                                   % (metrics, path))
        try:
            with open(metrics) as f:
                self.metrics = json.load(f)
        except (OSError, ValueError) as e:
            raise ReportInputError("%s: not readable JSON (%s)" % (metrics, e))
        if not isinstance(self.metrics, dict):
            raise ReportInputError("%s: not a JSON object" % metrics)
        self._cache = {}

    def file(self, name):
        return os.path.join(self.path, name)

    def has(self, name):
        return os.path.isfile(self.file(name))

    def _load(self, name, reader, why):
        if name not in self._cache:
            value = None
            if self.has(name):
                value = reader(self.file(name))
            elif why:
                self.notes.append("%s is missing: %s" % (name, why))
            self._cache[name] = value
        return self._cache[name]

    def volume(self, name, why=None):
        return self._load(name, read_mrc, why)

    def atoms(self, name, why=None):
        return self._load(name, read_xyz, why)

    def geometry(self):
        return self._load("geometry.txt", read_geometry, "no view angles, shifts or alignment plots")

    def views(self):
        """The views reconstructed: tilts.mrc of a simulated run, else the input series named by
        metrics.json's source (as given on the command line)."""
        if self.has("tilts.mrc"):
            return self.volume("tilts.mrc")
        source = self.metrics.get("source") or ""
        if source and os.path.isfile(source):
            try:
                return read_mrc(source)
            except ReportInputError as e:
                self.notes.append("the input series could not be read (%s): no views montage" % e)
                return None
        self.notes.append("the input series %s is not readable from here: no views montage"
                          % (source or "(not recorded)"))
        return None

    def config(self):
        return effective_config(self.file("pipeline.log")) if self.has("pipeline.log") else ""
