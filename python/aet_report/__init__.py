"""The run report of aet: one self-contained report.html for an `aet pipeline` run folder.

`python3 -m aet_report DIR [--out FILE]` (what `aet report DIR` and `aet pipeline` run) reads the
folder's files (docs/formats.md) and writes the report, figures made with matplotlib and embedded
as base64 PNG. docs/report.md lists what it holds.
"""
