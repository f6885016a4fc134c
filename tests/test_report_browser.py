"""A real sweep's ``report.html`` in a real browser: headless Chromium (Debian's, driven by
playwright) opens it, and its tables and embedded plots must render, with no script error and
no failed request; a full-page screenshot must show something. The checker is tested against
copies of the same report spoiled on purpose, so that a pass means something.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``; .ci/run installs it) and playwright
(the dev extra). Never ``playwright install``: it downloads its own browser, from a host CI cannot
reach. Without Chromium these tests fail, saying how to install it; ``DINF_NO_BROWSER=1`` skips them."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List

import numpy as np
import pytest

from dinf.report import load_runs, tables
from dinf.report.tables import formatted
from tests.helpers import TINY

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Headless as root on a machine with no display and no network beyond the package registries:
# no sandbox (root), no GPU, and none of Chromium's own connections (updates, sync, QUIC probes),
# which the closed network refuses. playwright gives each launch a fresh profile folder.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
pytestmark = pytest.mark.skipif(os.environ.get("DINF_NO_BROWSER") == "1",
                                reason="DINF_NO_BROWSER=1: the report is not opened in a browser")


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Chromium (playwright's Browser); a missing browser fails the test in one line."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set DINF_NO_BROWSER=1 to skip)",
                    pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail('playwright is not installed: pip install -e ".[dev]" (or set DINF_NO_BROWSER=1 to skip)',
                    pytrace=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Rendered:
    problems: List[str]  # script errors, console errors, failed requests, broken pictures, hidden tables
    tables: List[List[List[str]]]  # each table's rows (the header first), each cell's text
    images: List[dict]  # alt, natural width and height of each <img>


_IMAGES = """async () => Promise.all(Array.from(document.images, async im => ({
    alt: im.alt, src: im.src.slice(0, 40), complete: im.complete, width: im.naturalWidth,
    height: im.naturalHeight, shown: im.getBoundingClientRect().width,
    decoded: await im.decode().then(() => true, () => false)})))"""
_TABLES = """() => Array.from(document.querySelectorAll("table"), t => ({
    shown: t.getBoundingClientRect().height,
    rows: Array.from(t.rows, r => Array.from(r.cells, c => c.textContent))}))"""


def render(browser, page_file: Path, screenshot: Path) -> Rendered:
    """Open ``page_file`` (file://), wait for it to load, read back its pictures and tables and take
    a full-page screenshot; ``problems`` lists what did not render."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: List[str] = []
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url[:80]} ({r.failure})"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url[:80]}") if r.status >= 400 else None)
    page.goto(page_file.resolve().as_uri(), wait_until="load")
    images = page.evaluate(_IMAGES)
    for im in images:
        if not (im["complete"] and im["decoded"] and im["width"] > 0 and im["height"] > 0):
            problems.append(f"broken picture {im['alt']!r} ({im['src']}…)")
        elif im["shown"] <= 0:
            problems.append(f"picture {im['alt']!r} takes no room on the page")
    found = page.evaluate(_TABLES)
    problems += [f"table {i} takes no room on the page" for i, t in enumerate(found) if t["shown"] <= 0]
    text = page.inner_text("body")
    problems += [f"markup shown as text: {tag}" for tag in ("<table", "<img", "<td") if tag in text]
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return Rendered(problems, [t["rows"] for t in found], images)


def _run_sweep(folder: Path) -> Path:
    """A real four-job multirun through train.py, as tests/test_sweep.py runs it (no W&B): two models,
    one job refused by its config; the callback writes the report. Returns the sweep folder."""
    sweep = folder / "sweep"
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "model=dinf,linear_grid", "kernel.eps=1.0,-1.0", *TINY,
           f"hydra.sweep.dir={sweep}"]
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (sweep / "report.html").exists(), proc.stderr[-3000:]
    return sweep


@pytest.fixture(scope="session")
def sweep(tmp_path_factory) -> Path:
    """One sweep for every test here, also across pytest-xdist's workers (they share the parent of
    their temporary folders; the first to take the lock runs it)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _run_sweep(tmp_path_factory.mktemp("browser"))
    from filelock import FileLock  # torch's dependency

    shared = tmp_path_factory.getbasetemp().parent / "report_browser"
    with FileLock(str(shared) + ".lock"):
        if not (shared / "sweep" / "report.html").exists():
            shared.mkdir(exist_ok=True)
            _run_sweep(shared)
    return shared / "sweep"


@pytest.mark.slow  # a four-job sweep through train.py (~8 s) and Chromium (~2 s)
def test_a_real_sweeps_report_renders_in_chromium(sweep, tmp_path):
    shot = tmp_path / "report.png"
    with chromium() as browser:
        page = render(browser, sweep / "report.html", shot)
    assert page.problems == []

    # The one plot: decoded at the size matplotlib drew it.
    from PIL import Image

    with Image.open(sweep / "poisson_speed_accuracy.png") as png:
        size = png.size
    assert [(im["alt"], (im["width"], im["height"])) for im in page.images] == [("poisson", size)]

    # The one table shows what dinf.report.tables formats: a row per job, the failed one with its reason.
    columns, rows = tables(load_runs(sweep))["poisson"]
    (table,) = page.tables
    assert table == [list(columns), *formatted(columns, rows)]
    assert table[0][:4] == ["run", "model", "overrides", "status"] and len(table) == 5
    cells = [dict(zip(table[0], r)) for r in table[1:]]
    assert sorted((c["model"], c["status"]) for c in cells) == [
        ("dinf", "completed"), ("dinf", "failed"), ("linear_grid", "completed"), ("linear_grid", "completed")]
    failed = next(c for c in cells if c["status"] == "failed")
    assert "eps: must be > 0" in failed["note"]
    assert all(float(c["final psnr"]) > 0 for c in cells if c["status"] == "completed")

    # The screenshot: a PNG of the whole page, not one flat colour.
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 30_000
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape[0] >= 900 and pixels.shape[1] == 1400
    assert pixels.std() > 20 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100


SPOILED = {
    # One picture's data cut: the bytes no longer start as a PNG.
    "broken picture": lambda html: html.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1),
    "script error": lambda html: html.replace("</body>", "<script>no_such_function()</script></body>"),
    "request failed": lambda html: html.replace("</head>", '<link rel="stylesheet" href="missing.css"></head>'),
    "markup shown as text": lambda html: html.replace("<table>", "&lt;table&gt;", 1),
}


@pytest.mark.slow  # the sweep of the test above (shared), and Chromium
@pytest.mark.parametrize("problem", list(SPOILED))
def test_the_checker_catches_a_spoiled_copy_of_the_report(sweep, tmp_path, problem):
    page_file = tmp_path / "report.html"
    page_file.write_text(SPOILED[problem]((sweep / "report.html").read_text()))
    with chromium() as browser:
        found = render(browser, page_file, tmp_path / "report.png").problems
    assert any(p.startswith(problem) for p in found), found
