"""Plots of an `aet benchmark` sweep (results.csv) with matplotlib.

`python3 -m aet_benchmark_plots RESULTS.csv OUTDIR` writes, from the rows whose status is ok:
accuracy_vs_tilt_range.png (the sweep's ranges as written, narrowest first, so that an asymmetric
range stays apart from a symmetric one of the same width), accuracy_vs_dose.png and
accuracy_vs_views.png (RMSD of the final model and recall, one line per method, the mean over the
other settings), and rmsd_per_axis.png (RMSD along x, y and z against the tilt range, one panel
per method: the missing wedge stretches atoms along z). `aet benchmark` runs it after every sweep.
"""
