"""The documentation site: its API pages name modules that exist, the README's and the pages'
links resolve, every results table says when, where and how it was measured, and the site builds
with mkdocs --strict (as .ci/run does)."""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_api_pages_name_modules_that_exist():
    for page in sorted((DOCS / "api").glob("*.md")):
        for name in re.findall(r"^::: ([\w.]+)", page.read_text(), re.M):
            path = ROOT / Path(*name.split("."))
            assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), (
                f"{page.relative_to(ROOT)} documents {name}, which is not a module: rename or drop it")


def test_every_page_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.rglob("*.md"):
        assert str(page.relative_to(DOCS)) in nav, f"{page.relative_to(ROOT)} is not in mkdocs.yml's nav"


def test_readme_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150, "the README stays an overview; details go to docs/"
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


def test_every_results_table_is_dated_with_machine_and_commit():
    """A table on a results page is preceded by a line saying when it was measured, on what and
    at which commit, and by the command that regenerates it."""
    for page in sorted((DOCS / "results").glob("*.md")):
        if page.name == "index.md":
            continue
        text = page.read_text()
        lines = text.splitlines()
        starts = [i for i, line in enumerate(lines)
                  if line.lstrip().startswith("|") and (i == 0 or not lines[i - 1].lstrip().startswith("|"))]
        for i in starts:
            before = "\n".join(lines[max(0, i - 30):i])
            heading = before.rfind("*Measured")
            assert heading >= 0, f"{page.name}: the table at line {i + 1} has no 'Measured' header"
            header = before[heading:]
            assert re.search(r"20\d\d-\d\d-\d\d", header), f"{page.name}:{i + 1}: no date"
            assert "CPU cores" in header, f"{page.name}:{i + 1}: no machine"
            assert re.search(r"commits? `[0-9a-f]{7}`", header), f"{page.name}:{i + 1}: no commit"
            table = "\n".join(lines[i:i + 40])  # or the rows are the commands themselves
            assert re.search(r"`(python|bash)\s", header + table), f"{page.name}:{i + 1}: no command"


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="the dev extra brings mkdocs")
def test_site_builds_strictly(tmp_path):
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "api" / "fields" / "index.html").is_file()
