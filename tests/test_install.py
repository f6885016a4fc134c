"""The install the README promises is the one CI makes, and the torch it gives is that build."""
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _quickstart() -> list:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart\s+```bash\n(.*?)```", readme, re.S)
    assert block, "README has no Quickstart bash block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def _normal(command: str) -> str:
    return " ".join(w for w in command.split() if w != "-q")


def test_quickstart_installs_cpu_torch_from_pytorchs_index():
    lines = _quickstart()
    install = next(line for line in lines if "pip install torch" in line)
    assert "--index-url https://download.pytorch.org/whl/cpu" in install
    assert re.search(r"torch==[\d.]+", install), "pin the build CI tests"


def test_ci_runs_the_readme_commands():
    ci = [_normal(line) for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    for line in _quickstart():
        if line.startswith(("python3 -m venv", "pip install", "pytest")):
            assert _normal(line) in ci, f"README's {line!r} is not what .ci/run runs"


def test_ci_installs_nothing_beyond_the_readme_but_test_only_extras():
    """CI tests what a new user gets: any pip install that is not the README's brings only the
    test-only extras (Triton for the GPU kernel's interpreter tests)."""
    readme = {_normal(line) for line in _quickstart()}
    for line in (ROOT / ".ci" / "run").read_text().splitlines():
        line = _normal(line.strip())
        if line.startswith("pip install") and line not in readme:
            assert line == 'pip install -e ".[triton]"', f".ci/run installs {line!r} beyond the README"


def test_the_readme_install_brings_every_documented_feature():
    """PARDISO (x86-64), scikit-fem and gmsh are main dependencies, not extras; the dev extra
    brings the documentation tooling that .ci/run builds with."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=;\[ ]", dep, maxsplit=1)[0] for dep in project["dependencies"]]
    for name in ("pypardiso", "scikit-fem", "gmsh"):
        assert name in names, f"{name} is not in the main dependencies"
    pardiso = next(dep for dep in project["dependencies"] if dep.startswith("pypardiso"))
    assert "platform_machine == 'x86_64'" in pardiso, "PARDISO exists on x86-64 only: keep the marker"
    extras = project["optional-dependencies"]
    assert {"dev", "triton", "pardiso", "fem"} <= set(extras), "old extras' names must keep working"
    dev = " ".join(extras["dev"])
    assert "pytest" in dev and "mkdocs-material" in dev and "mkdocstrings[python]" in dev


@pytest.mark.skipif(os.environ.get("DINF_EXPECT_TORCH") != "cpu", reason="set by .ci/run")
def test_installed_torch_is_the_cpu_build():
    import torch

    assert torch.version.cuda is None and torch.__version__.endswith("+cpu"), torch.__version__


def test_a_missing_package_stops_in_one_line_naming_its_install(monkeypatch):
    """A documented command whose package cannot be imported (gmsh without libGLU, a trimmed
    environment) stops before any work with the pip install that brings it."""
    import importlib

    import pytest

    from dinf.app.run import build
    from dinf.errors import ConfigError
    from tests.helpers import compose_cfg

    real = importlib.import_module

    def fake(name, *args):
        if name == "skfem":
            raise ImportError("No module named 'skfem'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(ConfigError) as info:
        build(compose_cfg(["pde=poisson2d_c", "solver=fem"]))
    message = str(info.value)
    assert message.startswith("solver: ") and "pip install scikit-fem" in message and "\n" not in message
