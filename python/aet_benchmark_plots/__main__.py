"""python3 -m aet_benchmark_plots RESULTS.csv OUTDIR (see the package docstring)."""
import csv
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# The column each x axis reads and how it is labelled.
SWEEPS = [
    ("accuracy_vs_tilt_range.png", "tilt_range", "tilt range (degrees, narrowest first)", False),
    ("accuracy_vs_dose.png", "dose", "dose (electrons per A^2 per view)", True),
    ("accuracy_vs_views.png", "views", "number of views", False),
]


def number(text):
    return float(text) if text not in ("", None) else float("nan")


def read_rows(path):
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["status"] == "ok"]
    if not rows:
        sys.exit(f"{path}: no row with status ok: nothing to plot")
    return rows


def range_label(row):
    """A tilt range as the case names write it ("-72:+66"), so asymmetric ranges stay apart."""
    return f"{number(row['tilt_start']):+g}:{number(row['tilt_stop']):+g}"


def range_order(rows):
    """The tilt ranges of the rows, narrowest first (then by start)."""
    spans = {}
    for r in rows:
        spans[range_label(r)] = (number(r["tilt_span"]), number(r["tilt_start"]))
    return sorted(spans, key=lambda k: spans[k])


def x_value(row, x_key):
    return range_label(row) if x_key == "tilt_range" else number(row[x_key])


def mean_by(rows, method, x_key, y_key):
    """(x, mean y) over the rows of `method`, in x order; NaN values left out. For tilt ranges x
    is the position of the range among the sweep's, narrowest first."""
    order = range_order(rows) if x_key == "tilt_range" else None
    groups = defaultdict(list)
    for r in rows:
        if r["method"] != method:
            continue
        y = number(r[y_key])
        if y == y:
            x = x_value(r, x_key)
            groups[order.index(x) if order else x].append(y)
    xs = sorted(groups)
    return xs, [sum(groups[x]) / len(groups[x]) for x in xs]


def label_ranges(ax, rows, x_key):
    if x_key == "tilt_range":
        order = range_order(rows)
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels(order, rotation=30, fontsize=8)


def methods_of(rows):
    seen = []
    for r in rows:
        if r["method"] not in seen:
            seen.append(r["method"])
    return seen


def accuracy_plot(rows, x_key, x_label, log_x, path):
    fig, (ax_rmsd, ax_recall) = plt.subplots(1, 2, figsize=(10, 4))
    for method in methods_of(rows):
        xs, ys = mean_by(rows, method, x_key, "rmsd_pm")
        ax_rmsd.plot(xs, ys, "o-", label=method)
        xs, ys = mean_by(rows, method, x_key, "recall")
        ax_recall.plot(xs, [100 * y for y in ys], "o-", label=method)
    ax_rmsd.set_ylabel("RMSD of the final model (pm)")
    ax_recall.set_ylabel("recall (%)")
    for ax in (ax_rmsd, ax_recall):
        ax.set_xlabel(x_label)
        label_ranges(ax, rows, x_key)
        if log_x:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    ax_rmsd.legend(fontsize=8)
    fig.suptitle("mean over the sweep's other settings (particles, doses, views, seeds)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def axis_plot(rows, path):
    methods = methods_of(rows)
    fig, axes = plt.subplots(1, len(methods), figsize=(4 * len(methods), 3.8), squeeze=False,
                             sharey=True)
    for ax, method in zip(axes[0], methods):
        for axis, style in (("x", "s-"), ("y", "^-"), ("z", "o-")):
            xs, ys = mean_by(rows, method, "tilt_range", f"rmsd_{axis}_pm")
            ax.plot(xs, ys, style, label=axis)
        ax.set_title(method, fontsize=10)
        ax.set_xlabel("tilt range (degrees, narrowest first)")
        label_ranges(ax, rows, "tilt_range")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("RMSD along the axis (pm)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: python3 -m aet_benchmark_plots RESULTS.csv OUTDIR")
    rows = read_rows(argv[1])
    os.makedirs(argv[2], exist_ok=True)
    for name, x_key, x_label, log_x in SWEEPS:
        accuracy_plot(rows, x_key, x_label, log_x, os.path.join(argv[2], name))
    axis_plot(rows, os.path.join(argv[2], "rmsd_per_axis.png"))


if __name__ == "__main__":
    main(sys.argv)
