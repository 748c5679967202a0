"""Checks a report.html as a reader relies on it: every section there, the figures asked for there
and each one a PNG that decodes (matplotlib's reader, through Pillow) to a real image, the file
self-contained and under 5 MB.

    check_report.py REPORT --figures views,r1,... [--sections warnings,views,...]
Exit 0 when it passes; otherwise 1, each failure on a line.
"""
import argparse
import base64
import io
import os
import sys
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Outline(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.images, self.external = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        elif tag == "img":
            self.images.append((a.get("id"), a.get("src") or ""))
        for key in ("src", "href"):
            v = a.get(key)
            if v and not v.startswith("data:") and not v.startswith("#"):
                self.external.append(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--figures", default="")
    ap.add_argument("--sections", default="")
    ap.add_argument("--max-bytes", type=int, default=5 * 1024 * 1024)
    args = ap.parse_args()
    failures = []
    size = os.path.getsize(args.report)
    if size >= args.max_bytes:
        failures.append("%s is %d bytes, over %d" % (args.report, size, args.max_bytes))
    with open(args.report, encoding="utf-8") as f:
        text = f.read()
    outline = Outline()
    outline.feed(text)
    for s in filter(None, args.sections.split(",")):
        if s not in outline.sections:
            failures.append("section %s missing (sections: %s)" % (s, outline.sections))
    if outline.external:
        failures.append("not self-contained, refers to %s" % outline.external)
    ids = [i for i, _ in outline.images]
    for name in filter(None, args.figures.split(",")):
        if "fig-" + name not in ids:
            failures.append("figure %s missing (figures: %s)" % (name, ids))
    for fid, src in outline.images:
        prefix = "data:image/png;base64,"
        if not src.startswith(prefix):
            failures.append("%s: not an embedded PNG (%s...)" % (fid, src[:40]))
            continue
        data = base64.b64decode(src[len(prefix):], validate=True)
        if not data.startswith(PNG_SIGNATURE):
            failures.append("%s: no PNG signature" % fid)
            continue
        image = mpimg.imread(io.BytesIO(data), format="png")
        h, w = image.shape[:2]
        if w < 100 or h < 100:
            failures.append("%s: %d x %d pixels" % (fid, w, h))
        elif float(image[..., :3].std()) == 0.0:
            failures.append("%s: a blank image" % fid)
    for line in failures:
        print("check_report: " + line)
    print("check_report: %d sections, %d figures, %d bytes" % (len(outline.sections),
                                                               len(outline.images), size))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
