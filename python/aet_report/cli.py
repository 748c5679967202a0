"""Command line of the report module. Exit codes as aet's: 0 written, 2 bad input or a missing
dependency (the message names the file or the package), 1 an internal failure."""
import argparse
import os
import sys
import time


class ReportInputError(Exception):
    """Bad input: not a run folder, an unreadable file (the message names it)."""


def _check_dependencies():
    missing = []
    for module, package in (("numpy", "python3-numpy"), ("matplotlib", "python3-matplotlib"),
                            ("mrcfile", "python3-mrcfile")):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise ReportInputError(
            "the report needs Python packages that %s cannot import; on Debian: "
            "apt-get install %s (or set AET_PYTHON to a Python that has them)"
            % (sys.executable, " ".join(missing)))


def main(argv):
    parser = argparse.ArgumentParser(prog="aet report",
                                     description="Write report.html for an aet pipeline run.")
    parser.add_argument("dir", help="the run folder (aet pipeline --out DIR)")
    parser.add_argument("--out", help="the HTML file (default: DIR/report.html)")
    args = parser.parse_args(argv)
    try:
        _check_dependencies()
        # Imported only now: a missing dependency is reported as such, not as a traceback.
        from aet_report.html_report import write_report
        start = time.monotonic()
        out = args.out or os.path.join(args.dir, "report.html")
        size = write_report(args.dir, out)
        print("aet report: wrote %s (%.1f MB, %.1f s)" % (out, size / 1e6, time.monotonic() - start),
              file=sys.stderr)
        return 0
    except ReportInputError as e:
        print("aet report: error: %s" % e, file=sys.stderr)
        return 2
