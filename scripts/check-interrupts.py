#!/usr/bin/python3
"""Stops the demo pipeline with SIGKILL, SIGTERM and SIGINT at spread-out points and checks what
a user relies on (docs/hardening.md, "Stopped runs"):

  - no output under a final name but complete ones: the run's --out holds nothing but, after
    SIGKILL, the hidden staging folder of the dead run;
  - after SIGTERM or SIGINT nothing is left of the run (exit 143 / 130, one line saying where it
    stopped) and no temporary file in the checkpoint folder;
  - the same command run again with the same --checkpoint finishes (removing a killed run's
    leftovers) with outputs identical to those of a run that was never stopped: atoms, volumes,
    metrics, analysis and result file, every number to the last bit.

    scripts/check-interrupts.py [--points N] [--signals KILL,TERM,INT] [--work DIR] [-- ARGS]

ARGS go to `aet pipeline` (default: none, the demo particle). Exit status 0 when every check
passed, 1 otherwise; a summary table at the end (one line per stop).
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import h5py
import mrcfile
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXIT = {"KILL": -signal.SIGKILL, "TERM": 143, "INT": 130}

# Metrics that differ between any two runs (clock, process, paths) or that say a run resumed.
VOLATILE = {"seconds", "command_line", "command", "resumed", "out", "checkpoint", "threads",
            "date", "started", "finished", "host", "hostname", "pid", "wall_seconds", "time",
            "timestamp", "created", "output_dir", "log"}


class Run:
    """aet pipeline ARGS in the background, its output lines (with their times) kept as they come
    and written to LOG."""

    def __init__(self, aet, args, log_path):
        self.t0 = time.monotonic()
        self.lines = []  # (seconds since the start, line)
        # A process started in the background by a shell ignores SIGINT; reset it for the child.
        self.p = subprocess.Popen([aet, "pipeline"] + args, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, errors="replace",
                                  preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.log = open(log_path, "w")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append((time.monotonic() - self.t0, line.rstrip("\n")))
            self.log.write(line)

    def wait(self):
        rc = self.p.wait()
        self.reader.join()
        self.log.close()
        return rc, time.monotonic() - self.t0


def run(aet, args, log_path):
    r = Run(aet, args, log_path)
    rc, seconds = r.wait()
    return rc, seconds, r.lines


def volatile(key):
    k = key.lower()
    return k in VOLATILE or k.endswith("_seconds") or k.endswith("_path") or "time" in k


def diff_json(a, b, where, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if volatile(k):
                continue
            if k not in a or k not in b:
                out.append(f"{where}.{k}: only in one")
            else:
                diff_json(a[k], b[k], f"{where}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: {len(a)} against {len(b)} entries")
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                diff_json(x, y, f"{where}[{i}]", out)
    elif a != b:
        out.append(f"{where}: {str(a)[:60]} against {str(b)[:60]}")


def xyz_atoms(path):
    with open(path) as f:
        lines = f.read().split("\n")
    return lines[0], lines[2:]


def compare_h5(a, b, out):
    def walk(name, obj):
        other = b.get(name)
        if other is None:
            out.append(f"result.h5:{name}: only in one")
            return
        if isinstance(obj, h5py.Dataset):
            x, y = obj[()], other[()]
            if isinstance(x, np.ndarray):
                if x.shape != y.shape or not np.array_equal(x, y):
                    out.append(f"result.h5:{name}: values differ")
            elif x != y and not volatile(name.split("/")[-1]):
                out.append(f"result.h5:{name}: differs")
        for k, v in obj.attrs.items():
            if volatile(k):
                continue
            w = other.attrs.get(k)
            if isinstance(v, (str, bytes)) and ("/" in str(v) or "aet" in str(v)):
                continue  # provenance text naming paths and the command
            if not np.array_equal(np.asarray(v), np.asarray(w)):
                out.append(f"result.h5:{name}@{k}: differs")

    a.visititems(walk)


def compare(ref, got):
    """Differences between two pipeline output folders (empty: identical)."""
    out = []
    names = sorted(os.listdir(ref))
    if sorted(os.listdir(got)) != names:
        out.append(f"files {sorted(os.listdir(got))} against {names}")
        return out
    for n in names:
        a, b = os.path.join(ref, n), os.path.join(got, n)
        if n.endswith(".xyz"):
            if xyz_atoms(a)[1] != xyz_atoms(b)[1]:
                out.append(f"{n}: atom lines differ")
        elif n.endswith(".mrc"):
            with mrcfile.open(a, permissive=True) as x, mrcfile.open(b, permissive=True) as y:
                if x.data.shape != y.data.shape or not np.array_equal(x.data, y.data):
                    out.append(f"{n}: values differ")
                if x.voxel_size != y.voxel_size:
                    out.append(f"{n}: voxel size differs")
        elif n.endswith(".json"):
            with open(a) as x, open(b) as y:
                diff_json(json.load(x), json.load(y), n, out)
        elif n.endswith(".h5"):
            with h5py.File(a, "r") as x, h5py.File(b, "r") as y:
                compare_h5(x, y, out)
        elif n.endswith((".txt", ".tlt")):
            body = lambda f: [l for l in open(f).read().splitlines() if not l.startswith("#")]
            if body(a) != body(b):
                out.append(f"{n}: lines differ")
        # pipeline.log and report.html hold times and paths: their numbers are those above.
    return out


def leftovers(folder):
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for n in dirnames + filenames:
            found.append(os.path.relpath(os.path.join(dirpath, n), folder))
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--aet", default=os.path.join(ROOT, "build", "bin", "aet"))
    ap.add_argument("--points", type=int, default=10, help="stops per signal")
    ap.add_argument("--signals", default="KILL,TERM,INT")
    ap.add_argument("--work", help="folder for the runs (default: a new temporary one, removed)")
    ap.add_argument("args", nargs="*", help="arguments of aet pipeline (after --)")
    o = ap.parse_args()
    sigs = [s.strip().upper() for s in o.signals.split(",") if s.strip()]
    for s in sigs:
        if s not in EXIT:
            sys.exit(f"check-interrupts: unknown signal {s} (KILL, TERM or INT)")
    work = o.work or tempfile.mkdtemp(prefix="aet-interrupts-")
    os.makedirs(work, exist_ok=True)
    W = lambda *p: os.path.join(work, *p)

    # Two uninterrupted runs: the reference, and proof that a run is reproducible at all.
    rc, t_plain, _ = run(o.aet, o.args + ["--out", W("ref")], W("ref.log"))
    if rc != 0:
        sys.exit(f"check-interrupts: the reference run failed (exit {rc}); see {W('ref.log')}")
    # The same with checkpoints, never stopped: its outputs must be those of the plain run, and
    # its lines (a checkpointed solve reports its parts) are where the stops are anchored.
    rc, t_ref, ref_lines = run(o.aet, o.args + ["--checkpoint", W("ref2.ck"), "--out", W("ref2")],
                               W("ref2.log"))
    d = compare(W("ref"), W("ref2")) if rc == 0 and ref_lines else [f"exit {rc}"]
    print(f"reference: {t_plain:.1f} s; with checkpoints, never stopped: {t_ref:.1f} s, "
          f"{'identical outputs' if not d else 'DIFFERENT: ' + '; '.join(d[:5])}", flush=True)
    if rc != 0 or not ref_lines:
        sys.exit(f"check-interrupts: the checkpointed reference failed; see {W('ref2.log')}")
    failures = len(d)

    total = len(sigs) * o.points
    rows = []
    for j in range(total):
        sig = sigs[j % len(sigs)]
        # The stops of all signals interleaved over the reference run's time, each anchored to
        # the last line the reference had written by then (a stage or progress line), so that a
        # machine busier or quieter than during the reference stops the run in the same place.
        at = t_ref * (j + 0.5) / total
        anchor = max(i for i, (t, _) in enumerate(ref_lines) if t <= at or i == 0)
        after = max(0.0, at - ref_lines[anchor][0])
        name = f"{j + 1:02d}-{sig}"
        ck, out = W(name + ".ck"), W(name + ".out")
        args = o.args + ["--checkpoint", ck, "--out", out]
        p = Run(o.aet, args, W(name + ".stopped.log"))
        while len(p.lines) <= anchor and p.p.poll() is None:
            time.sleep(0.01)
        deadline = time.monotonic() + after
        while time.monotonic() < deadline and p.p.poll() is None:
            time.sleep(0.01)
        finished_first = p.p.poll() is not None
        if not finished_first:
            p.p.send_signal(getattr(signal, "SIG" + sig))
        rc, _ = p.wait()
        problems = []
        if finished_first:
            problems.append(f"finished before the stop (exit {rc})")
        elif rc != EXIT[sig]:
            problems.append(f"exit {rc}, expected {EXIT[sig]}")
        stopped_log = open(W(name + ".stopped.log")).read()
        where = ""
        if sig != "KILL":
            line = [l for l in stopped_log.splitlines() if "interrupted by SIG" in l]
            if not line:
                problems.append("no line saying where it stopped")
            else:
                where = line[-1].split("interrupted by SIG" + sig, 1)[-1].split(";")[0].strip()
        elif p.lines:  # SIGKILL says nothing: the run's last line tells where it was
            where = "after: " + p.lines[-1][1].strip()[:48]
        left = leftovers(out) if os.path.exists(out) else []
        staged = [f for f in left if f.startswith(".aet-partial-")]
        if sig == "KILL":
            final = [f for f in left if not f.startswith(".aet-partial-")]
            if final:
                problems.append(f"files under final names: {final[:4]}")
        elif os.path.exists(out):
            problems.append(f"left the output folder ({left[:4]})")
        tmp = [f for f in (leftovers(ck) if os.path.exists(ck) else []) if ".tmp." in f]
        if tmp and sig != "KILL":
            problems.append(f"temporary files in the checkpoint folder: {tmp[:3]}")

        rc2, t2, rerun_lines = run(o.aet, args, W(name + ".resumed.log"))
        resumed = []
        if rc2 != 0:
            problems.append(f"rerun exit {rc2}")
        else:
            with open(os.path.join(out, "metrics.json")) as f:
                resumed = json.load(f).get("resumed", [])
            # Progress inside a stage taken up again (a solve's iterations, alignment rounds).
            for _, l in rerun_lines:
                for what in ("going on from iteration ", "going on after round "):
                    if what in l:
                        n = l.split(what, 1)[1].split()[0]
                        resumed.append(("iteration " if "iteration" in what else "round ") + n)
            if any(f.startswith(".aet-partial-") for f in os.listdir(out)):
                problems.append("rerun left a staging folder")
            problems += compare(W("ref"), out)
        rows.append((name, at, where or "?", len(staged),
                     ",".join(resumed) or "-", t2, "ok" if not problems else "; ".join(problems)))
        print(f"{name} at {at:6.1f} s: {rows[-1][-1]}", flush=True)
        failures += bool(problems)
        if not problems:
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(ck, ignore_errors=True)

    print("\n| stop | signal at s (reference run) | where it stopped | staging left | taken from the "
          "checkpoint | rerun s | result |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.1f} | {r[2]} | {r[3]} | {r[4]} | {r[5]:.1f} | {r[6]} |")
    print(f"\n{total} stops, {failures} with a failed check; reference {t_ref:.1f} s")
    if not o.work and failures == 0:
        shutil.rmtree(work, ignore_errors=True)
    elif failures:
        print(f"runs kept in {work}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
