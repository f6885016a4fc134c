"""Run ``train.py`` for KS with a stop-gap for order ≥ 3 jets in Gauss–Newton's loss.

    python experiments/ks_windows.py pde=ks solver=gauss_newton solver.windows=5 ...

``dinf.linear_system.jet_entries`` (2026-12-06) concatenates value, gradient and Hessian only, so a
residual that reads u_xxxx (16 entries a channel in 2D) fails in Gauss–Newton's first loss with
``ValueError: the system needs 16 jet entries, the jet has 7``. This wrapper appends ``jet.higher``
(the layout ``dinf.jet.entry_count`` documents: value, grad, Hessian row-major, higher_axes) and
then runs ``train.py`` with the same arguments. It patches nothing on disk.
"""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dinf.linear_system as ls  # noqa: E402


def jet_entries(jet, count):
    n, c = jet.value.shape
    parts = [jet.value.unsqueeze(-1)]
    if jet.grad is not None:
        parts.append(jet.grad)
        if jet.hess is not None:
            parts.append(jet.hess.reshape(n, c, -1))
            if getattr(jet, "higher", None) is not None:
                parts.append(jet.higher)
    out = torch.cat(parts, -1)
    if out.shape[-1] < count:
        raise ValueError(f"the system needs {count} jet entries, the jet has {out.shape[-1]}")
    return out[..., :count]


ls.jet_entries = jet_entries

if __name__ == "__main__":
    sys.argv[0] = str(ROOT / "train.py")
    runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
