"""Check the built HTML pages in headless Chromium: does anything run wider than its column?

It also checks each page's text for words that only make sense inside this repository (papers by
their number in the project's reading list, its folder of papers, commit hashes, issue names).

Run from the repository root after building the documentation (``doc/_build/html``)::

    python doc/check_layout.py                 # every page at 1,400 px
    python doc/check_layout.py --width 1920 --pages index.html benchmarks.html

Each page is loaded in an iframe of the given width; a page fails when the page itself scrolls
sideways, or when an element of the article ends right of the article's column without being
inside a box that scrolls on its own (a wide table scrolls within the column, and passes). Code
and output boxes that scroll are listed too. Needs ``chromium`` on the PATH; prints one line per
page and exits with 1 when a page fails.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "_build" / "html"
JARGON = re.compile(r"\b[Pp]aper 00\d\b|shared/paper[s]|foundation issue|\bcommits? [0-9a-f]{7,40}\b")

MEASURE = r"""
function measure(frame) {
  const doc = frame.contentDocument, win = frame.contentWindow;
  const article = doc.querySelector(".bd-article") || doc.body;
  const right = article.getBoundingClientRect().right + 1;
  const scrolls = el => {
    for (let a = el.parentElement; a && a !== article; a = a.parentElement) {
      const o = win.getComputedStyle(a).overflowX;
      if (o === "auto" || o === "scroll" || o === "hidden") return true;
    }
    return false;
  };
  const wide = [], scrolling = [];
  for (const el of article.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > right && !scrolls(el))
      wide.push(el.tagName.toLowerCase() + "." + (el.className || "").toString().split(" ")[0]
                + " +" + Math.round(r.right - right) + "px");
    if ((el.tagName === "PRE" || el.classList.contains("pst-scrollable-table-container"))
        && el.scrollWidth > el.clientWidth + 1)
      scrolling.push(el.tagName.toLowerCase() + " +" + (el.scrollWidth - el.clientWidth) + "px");
  }
  const page = doc.documentElement.scrollWidth > doc.documentElement.clientWidth + 1;
  return {page_scrolls: page, column: Math.round(article.getBoundingClientRect().width),
          wide: wide.slice(0, 5), n_wide: wide.length, scrolling: scrolling};
}
"""


def harness(pages: list[Path], width: int) -> str:
    frames = "\n".join(f'<iframe src="{p.as_uri()}" width="{width}" height="1200"></iframe>' for p in pages)
    names = json.dumps([str(p.relative_to(ROOT)) for p in pages])
    return f"""<!doctype html><html><body>{frames}
<pre id="out"></pre>
<script>{MEASURE}
window.addEventListener("load", () => {{
  const names = {names}, rows = [];
  document.querySelectorAll("iframe").forEach((f, k) => {{
    try {{ rows.push([names[k], measure(f)]); }} catch (e) {{ rows.push([names[k], {{error: String(e)}}]); }}
  }});
  document.getElementById("out").textContent = "RESULT" + JSON.stringify(rows) + "END";
}});
</script></body></html>"""


def run(pages: list[Path], width: int, chromium: str) -> list:
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "harness.html"
        page.write_text(harness(pages, width), encoding="utf-8")
        out = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
             f"--window-size={width + 100},1400", "--run-all-compositor-stages-before-draw",
             "--virtual-time-budget=60000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=600).stdout
    found = re.search(r'<pre id="out">RESULT(.*?)END</pre>', out, re.S)
    if not found:
        raise RuntimeError("chromium returned no measurement")
    return json.loads(html.unescape(found.group(1)))


def jargon(page: Path) -> list[str]:
    """Internal words in the page's text (scripts, styles and tags removed)."""
    text = re.sub(r"<script.*?</script>|<style.*?</style>", "", page.read_text(encoding="utf-8"), flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return sorted({m.group(0) for m in JARGON.finditer(text)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--pages", nargs="*", help="pages relative to doc/_build/html (default: all)")
    parser.add_argument("--batch", type=int, default=12, help="pages per Chromium run")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        sys.exit("chromium not found")
    pages = ([ROOT / p for p in args.pages] if args.pages else
             sorted(p for p in ROOT.rglob("*.html") if not p.relative_to(ROOT).parts[0].startswith("_")))
    failed = 0
    for start in range(0, len(pages), args.batch):
        for name, result in run(pages[start:start + args.batch], args.width, chromium):
            words = jargon(ROOT / name)
            if words:
                result["jargon"] = words
            bad = "error" in result or result["page_scrolls"] or result["n_wide"] or words
            failed += bool(bad)
            print(("FAIL " if bad else "ok   ") + name, json.dumps(result))
    print(f"{len(pages) - failed} of {len(pages)} pages within their column at {args.width} px "
          "and free of internal jargon")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
