"""Where a data file named in a config (a reference, a table, observations, a mesh) is found."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from dinf.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# After the working directory: the repository, its data/ and data/pinnacle/ (PINNacle's files, MIT,
# with their LICENSE); meshes in data/meshes/.
SEARCH_DIRS = [ROOT, os.path.join(ROOT, "data"), os.path.join(ROOT, "data", "pinnacle"),
               os.path.join(ROOT, "data", "meshes")]


def resolve_path(path: os.PathLike | str, search_dirs: Sequence[os.PathLike | str] = SEARCH_DIRS,
                 key: str = "file") -> Path:
    """An existing file: ``path`` itself if absolute, else the first of the current directory and
    ``search_dirs`` that holds it; else a one-line ``ConfigError`` under ``key``."""
    p = Path(path).expanduser()
    candidates = [p] if p.is_absolute() else [Path.cwd() / p] + [Path(d).expanduser() / p for d in search_dirs]
    for c in candidates:
        if c.is_file():
            return c
    if p.is_absolute():
        raise ConfigError(key, f"no such file {p}")
    where = ", ".join([str(Path.cwd())] + [str(d) for d in search_dirs])
    raise ConfigError(key, f"no such file {str(path)!r} (looked in {where})")
