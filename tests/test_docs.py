"""The README's links to the documentation, and the checks of `make docs-check` (no browser)."""

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _check_site():
    spec = importlib.util.spec_from_file_location("check_site", REPO / "docs" / "check_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_site = _check_site()


def test_readme_links_point_to_files_the_site_lists():
    readme = (REPO / "README.md").read_text()
    nav = (REPO / "mkdocs.yml").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)\)", readme)
    assert any(link.startswith("docs/tutorials/") for link in links)
    for link in links:
        assert (REPO / link).is_file(), f"README links to {link}, which does not exist"
        if link != "docs/README.md":
            assert link.removeprefix("docs/") in nav, f"{link} is not in mkdocs.yml's nav"


GOOD_PAGE = """<html><head><title>r2dn</title></head><body><h1>r2dn</h1>
<img src="plot.svg"><pre><code>print(1)</code></pre>
<svg><path d="M0 0L1 1"/></svg></body></html>"""


@pytest.fixture
def site(tmp_path):
    (tmp_path / "plot.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><path/></svg>')
    (tmp_path / "blank.png").write_bytes(b"")
    server, url = check_site.serve(tmp_path)
    yield url
    server.shutdown()


def test_a_good_page_passes(site):
    assert check_site.check_page(GOOD_PAGE, site) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("<title>r2dn</title>", "<title> </title>"), "the page has no title"),
        (("<h1>r2dn</h1>", ""), "the page has no <h1> heading"),
        (("plot.svg", "missing.png"), "image missing.png: it does not load"),
        (("plot.svg", "blank.png"), "image blank.png: the file is empty"),
        (("print(1)", "  "), "code block 1 of 1 is empty"),
        (('<path d="M0 0L1 1"/>', ""), "inline SVG 1 draws nothing"),
    ],
)
def test_a_broken_page_fails_with_the_reason(site, change, problem):
    problems = check_site.check_page(GOOD_PAGE.replace(*change), site)
    assert len(problems) == 1 and problems[0].startswith(problem), problems
