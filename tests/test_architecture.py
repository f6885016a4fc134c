"""The package's shape: imports run one way (app → solvers → pdes → the rest), with no cycles,
counting imports inside functions too (they hide a cycle from Python, not from a reader)."""
from __future__ import annotations

import ast
import pathlib
import re
from typing import Dict, List, Set

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dinf"
# Each layer may import the layers after it, never those before it. "export" is the command
# python -m dinf.export: an entry point above the run plumbing, as train.py is.
LAYERS = ["export", "app", "solvers", "pdes", "report", "equations", "geometry", "fields"]


def _module(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path, modules: Set[str]) -> Set[str]:
    """The dinf modules ``path`` imports anywhere in its body (a ``from pkg import name`` counts
    as ``pkg.name`` where that is a module)."""
    tree = ast.parse(path.read_text())
    found: Set[str] = set()
    package = _module(path) if path.name == "__init__.py" else _module(path).rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
    return {m for m in found if m in modules and m != _module(path)}


def _graph() -> Dict[str, Set[str]]:
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}
    return {m: _imports(p, set(files)) for m, p in files.items()}


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else len(LAYERS)


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_imports_run_downward():
    """export → app → solvers → pdes → report → equations → geometry → fields, then the core modules
    (jet, errors, linear_system): none imports a layer above its own."""
    upward = [f"{m} imports {d}" for m, deps in _graph().items() for d in deps if _layer(d) < _layer(m)]
    assert upward == []


def test_core_does_not_import_the_command_line():
    assert [m for m, deps in _graph().items() if "dinf.app.cli" in deps and not m.startswith("dinf.app")] == []


def test_no_references_to_files_outside_the_repository():
    """Comments cite files a reader can open: no 'SPEC §n' (the paper's notes live outside)."""
    hits = [str(p.relative_to(ROOT)) for p in list(PACKAGE.rglob("*.py")) + list((ROOT / "conf").rglob("*.yaml"))
            if re.search(r"SPEC §", p.read_text())]
    assert hits == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
