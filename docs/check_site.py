"""Look at the built site in a real browser: serve it, screenshot pages, check what they show.

    python docs/check_site.py                 # after `mkdocs build`; `make docs-check` does both

Serves ``site/`` on 127.0.0.1, loads each page in headless Chromium, writes a screenshot per
page to ``build/docs-check/`` and checks the page as the browser built it (``--dump-dom``):
it fails when a page has no title or no heading, an image does not load (the file is missing or
is not a PNG/SVG/JPEG/GIF that parses), an inline plot is empty, or a code block is empty.
Exits 1 with one line per problem; look at the screenshots as well — this catches what is
broken, not what is ugly.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

#: The home page, one API page and one tutorial, as paths under the site.
PAGES = ("index.html", "api/r2dn/index.html", "tutorials/pde_observer/index.html")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Flags for a browser with no network beyond localhost and no state kept between runs.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8")


class PageContent(HTMLParser):
    """What the checks need from a page's DOM: title, headings, images, code blocks, SVGs."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.headings = 0
        self.images: list[str] = []
        self.code_blocks: list[str] = []
        self.inline_svgs: list[int] = []  # number of drawn elements in each top-level <svg>
        self._in_title = False
        self._pre_depth = 0
        self._svg_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag == "h1":
            self.headings += 1
        elif tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        elif tag == "pre":
            if self._pre_depth == 0:
                self.code_blocks.append("")
            self._pre_depth += 1
        elif tag == "svg":
            if self._svg_depth == 0:
                self.inline_svgs.append(0)
            self._svg_depth += 1
        elif self._svg_depth and tag in ("path", "use", "text", "rect", "line", "polyline"):
            self.inline_svgs[-1] += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ("pre", "svg"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "pre" and self._pre_depth:
            self._pre_depth -= 1
        elif tag == "svg" and self._svg_depth:
            self._svg_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._pre_depth:
            self.code_blocks[-1] += data


def find_chromium() -> str:
    """The first Chromium on ``PATH``, or an error that says how to install one."""
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    raise SystemExit(
        "No Chromium found on PATH (looked for " + ", ".join(CHROMIUM_NAMES) + "). "
        "Install one, e.g. `apt-get install -y chromium`, or pass --chromium PATH."
    )


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``site`` on 127.0.0.1 (a free port) from a daemon thread; returns server and URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def chromium(binary: str, profile: Path, *args: str, timeout: float) -> str:
    """Run headless Chromium with `CHROMIUM_FLAGS` and ``args``; returns its standard output."""
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def image_problem(url: str) -> str | None:
    """Why the image at ``url`` does not load (missing, empty, unparsable); ``None`` if it does."""
    if url.startswith("data:"):
        return None if "," in url and url.split(",", 1)[1] else "an empty data: URL"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
    except (urllib.error.URLError, OSError) as error:
        return f"it does not load ({error})"
    if not body:
        return "the file is empty"
    if body.startswith(IMAGE_MAGIC):
        return None
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return "it is not a PNG, JPEG, GIF or SVG image"
    return None if root.tag.endswith("svg") and len(root) else "it is an empty SVG"


def check_page(dom: str, url: str) -> list[str]:
    """The problems of one page, from its DOM as the browser built it."""
    page = PageContent()
    page.feed(dom)
    problems = []
    if not page.title.strip():
        problems.append("the page has no title")
    if not page.headings:
        problems.append("the page has no <h1> heading")
    for src in page.images:
        if not src:
            problems.append("an <img> has no src")
        elif why := image_problem(urljoin(url, src)):
            problems.append(f"image {src}: {why}")
    problems += [
        f"code block {i + 1} of {len(page.code_blocks)} is empty"
        for i, text in enumerate(page.code_blocks)
        if not text.strip()
    ]
    problems += [
        f"inline SVG {i + 1} draws nothing" for i, drawn in enumerate(page.inline_svgs) if not drawn
    ]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=Path("site"), help="the built site")
    parser.add_argument("--out", type=Path, default=Path("build/docs-check"), help="screenshots")
    parser.add_argument("--pages", nargs="+", default=PAGES, help="paths under the site")
    parser.add_argument("--chromium", help="the browser binary (default: found on PATH)")
    parser.add_argument("--height", type=int, default=1800, help="screenshot height, pixels")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per browser run")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        raise SystemExit(f"No built site at {args.site}/index.html: run `mkdocs build` first.")
    binary = args.chromium or find_chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    server, root = serve(args.site)
    failures = 0
    try:
        with tempfile.TemporaryDirectory(prefix="r2dn-chromium-") as profile:
            for page in args.pages:
                url = urljoin(root, page)
                name = page.removesuffix("index.html").strip("/").replace("/", "_") or "home"
                shot = args.out / f"{name}.png"
                chromium(
                    binary,
                    Path(profile),
                    f"--screenshot={shot.resolve()}",
                    f"--window-size=1280,{args.height}",
                    url,
                    timeout=args.timeout,
                )
                dom = chromium(binary, Path(profile), "--dump-dom", url, timeout=args.timeout)
                problems = check_page(dom, url)
                if not shot.is_file() or shot.stat().st_size == 0:
                    problems.append("Chromium wrote no screenshot")
                failures += bool(problems)
                status = "FAIL" if problems else "ok"
                print(f"{status:4}  {page}  (screenshot {shot})")
                for problem in problems:
                    print(f"      {problem}")
    finally:
        server.shutdown()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
