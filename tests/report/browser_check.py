"""Renders a report.html in headless Chromium (Debian's `chromium`) as a reader's browser would:
a screenshot of the page, no console message from it (the report has no scripts, so any message
is an error: a bad image, a blocked resource), and, in a copy with a small probe script added,
every image loaded and decoded (complete, naturalWidth > 0 and the width its PNG header gives).

    browser_check.py REPORT WORKDIR
Exit 0 when it passes, 77 when no Chromium is installed (the test is then skipped, saying so),
1 otherwise with each failure on a line.
"""
import base64
import os
import re
import struct
import shutil
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402

PROBE = """<script>
(function () {
  var root = document.documentElement;
  function note(key, text) { root.setAttribute(key, (root.getAttribute(key) || "") + text + ";"); }
  window.addEventListener("error", function (e) {
    note("data-errors", e.message || ("failed to load " + (e.target && e.target.id)));
  }, true);
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    root.setAttribute("data-images", String(images.length));
    images.forEach(function (img) {
      if (!img.complete || img.naturalWidth === 0) note("data-bad-images", img.id);
      else note("data-widths", img.id + "=" + img.naturalWidth);
    });
    root.setAttribute("data-loaded", "yes");
  });
})();
</script>"""


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def run(browser, args, timeout=120):
    # --no-sandbox: the tests may run as root (CI containers), where Chromium's sandbox refuses.
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
           "--v=0", "--user-data-dir=" + args[0]] + args[1:]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def main():
    report, work = sys.argv[1], sys.argv[2]
    browser = chromium()
    if browser is None:
        print("browser_check: no chromium on PATH (Debian: apt-get install chromium; "
              "scripts/setup.sh --tests installs it)")
        return 77
    os.makedirs(work, exist_ok=True)
    failures = []
    url = "file://" + os.path.abspath(report)
    shot = os.path.join(work, "screenshot.png")
    r = run(browser, [os.path.join(work, "profile1"), "--window-size=1200,4000",
                      "--screenshot=" + shot, url])
    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
    if console:
        failures.append("console messages: %s" % console)
    if not os.path.isfile(shot):
        failures.append("no screenshot (exit %d): %s" % (r.returncode, r.stderr[-2000:]))
    else:
        image = mpimg.imread(shot)
        if float(image[..., :3].std()) < 0.01:
            failures.append("the screenshot is blank")

    with open(report, encoding="utf-8") as f:
        text = f.read()
    probed = os.path.join(work, "probed.html")
    with open(probed, "w", encoding="utf-8") as f:
        f.write(text.replace("<head>", "<head>" + PROBE, 1))
    r = run(browser, [os.path.join(work, "profile2"), "--dump-dom", "--virtual-time-budget=10000",
                      "file://" + os.path.abspath(probed)])
    m = re.search(r"<html[^>]*>", r.stdout)
    attrs = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', m.group(0))) if m else {}
    expected = text.count("<img ")
    if attrs.get("data-loaded") != "yes":
        failures.append("the page did not finish loading: %s" % (m.group(0) if m else r.stderr[-2000:]))
    elif attrs.get("data-images") != str(expected):
        failures.append("%s images in the DOM, %d in the file" % (attrs.get("data-images"), expected))
    # The width each PNG's header gives (IHDR, bytes 16-19) is the width the browser must show.
    header = {i: struct.unpack(">I", base64.b64decode(d)[16:20])[0] for i, d in
              re.findall(r'<img id="([^"]+)"[^>]*src="data:image/png;base64,([^"]+)"', text)}
    shown = dict(w.split("=") for w in attrs.get("data-widths", "").split(";") if "=" in w)
    for i, width in header.items():
        if i in shown and int(shown[i]) != width:
            failures.append("%s shown %s pixels wide, its PNG is %d" % (i, shown[i], width))
    if attrs.get("data-bad-images"):
        failures.append("images that did not load: %s" % attrs["data-bad-images"])
    if attrs.get("data-errors"):
        failures.append("errors: %s" % attrs["data-errors"])
    for line in failures:
        print("browser_check: " + line)
    print("browser_check: %s images loaded (%s)" % (attrs.get("data-images"),
                                                   attrs.get("data-widths", "")))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
