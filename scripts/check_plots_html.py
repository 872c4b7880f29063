"""Open the page of `dvc plots show` / `dvc plots diff` in headless Chromium and check every plot drew.

    uv run python scripts/check_plots_html.py dvc_plots/index.html --screenshot plots.png

Each plot on DVC's page is a ``<div>`` with a ``vegaEmbed(...)`` call; when Vega renders it, the
div gains a ``canvas`` (or ``svg``) of class ``marks``. The page comes from
``.dvc/plots-template.html``, which inlines the Vega libraries, so this works offline. Exits 1
(and names the missing plots) when fewer plots drew than the page declares.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Flags for a root user on a machine with no network (see Chromium's headless docs).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=15000",  # let Vega's asynchronous rendering finish
]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def run_chromium(page: Path | str, *extra: str) -> str:
    """Chromium's stdout after loading ``page`` (a file, or a URL given as a string)."""
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("error: Chromium not found (Debian/Ubuntu: apt-get install chromium)")
    target = page if isinstance(page, str) else page.resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, target],
            capture_output=True,
            text=True,
            timeout=120,
        )
    if result.returncode != 0:
        raise SystemExit(f"error: Chromium failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return result.stdout


def check(html: Path) -> tuple[list[str], list[str]]:
    """``(declared, drawn)``: ids of the plot divs on the page, and of those that Vega drew."""
    declared = re.findall(r"vegaEmbed\('#([^']+)'", html.read_text(encoding="utf-8"))
    dom = run_chromium(html, "--dump-dom")
    drawn = []
    for plot_id in declared:
        # the div's rendered content runs up to the next plot's div (or the end of the page)
        start = dom.find(f'id="{plot_id}"')
        if start < 0:
            continue
        following = [dom.find(f'id="{other}"', start + 1) for other in declared if other != plot_id]
        end = min([f for f in following if f > start] or [len(dom)])
        tags = re.findall(r"<(?:canvas|svg)\b[^>]*>", dom[start:end])
        if any('class="marks"' in tag and re.search(r'width="[1-9]', tag) for tag in tags):
            drawn.append(plot_id)
    return declared, drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html", type=Path, help="the page, e.g. dvc_plots/index.html")
    parser.add_argument("--screenshot", type=Path, help="also save a PNG of the page here")
    args = parser.parse_args()
    if not args.html.is_file():
        raise SystemExit(f"error: {args.html}: no such file (run: uv run dvc plots show)")
    declared, drawn = check(args.html)
    missing = [plot for plot in declared if plot not in drawn]
    print(f"{len(drawn)} of {len(declared)} plots drawn")
    if args.screenshot:
        run_chromium(args.html, f"--screenshot={args.screenshot.resolve()}", "--window-size=1400,2400")
        print(f"screenshot: {args.screenshot}")
    if not declared or missing:
        print(f"not drawn: {', '.join(missing) or 'no plots on the page'}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
