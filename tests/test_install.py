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


@pytest.mark.skipif(os.environ.get("DINF_EXPECT_TORCH") != "cpu", reason="set by .ci/run")
def test_installed_torch_is_the_cpu_build():
    import torch

    assert torch.version.cuda is None and torch.__version__.endswith("+cpu"), torch.__version__
