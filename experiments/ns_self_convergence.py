"""NS2d-C: ∂∞-Grid's Gauss–Newton solutions at 64² and 96² against each other and against
PINNacle's file (lid_driven_a4.dat), pooled L2RE at the file's nodes, everywhere and below the
lid's strip (y < 0.9). If the two agree far better than either agrees with the file, the
remaining error against the file is not resolution.

    python experiments/ns_self_convergence.py        # about 6 minutes on 2 cores
"""
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from hydra import compose, initialize_config_dir  # noqa: E402

from dinf.pdes.reference_data import l2re  # noqa: E402
from dinf.app.run import build  # noqa: E402


def run(ov):
    """Solve with ``ov`` on top of ``pde=ns2d_c`` (its best settings: Gauss–Newton): the problem, prediction
    and file values at the file's nodes."""
    with initialize_config_dir(config_dir=str(ROOT / 'conf'), version_base='1.3'):
        cfg = compose('config', overrides=['pde=ns2d_c', 'solver=gauss_newton', '~logger'] + ov)
    problem, field, gn = build(cfg)
    gen = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    for i in range(gn.max_solves or int(cfg.trainer.max_steps)):
        info = gn.solve(field, problem, gen)
        if info.get('converged'): break
    pred = problem.predict(field, problem.eval_x).numpy()
    ref = problem.reference.points_and_values()[1].numpy()
    print(ov, i + 1, 'solves', time.perf_counter() - t, 's', problem.evaluate(field), flush=True)
    return problem, pred, ref


p, a, ref = run([])
_, b, _ = run(['pde.resolution=96', 'solver.points=147456'])
names = ['u', 'v', 'p']
d = lambda x, y: l2re({n: x[:, i] for i, n in enumerate(names)}, {n: y[:, i] for i, n in enumerate(names)})
print('64 vs 96:', d(a, b)); print('64 vs file:', d(a, ref)); print('96 vs file:', d(b, ref))
x = p.eval_x.numpy(); far = x[:, 1] < 0.9
dd = lambda x_, y_: l2re({n: x_[far, i] for i, n in enumerate(names)}, {n: y_[far, i] for i, n in enumerate(names)})
print('y<0.9: 64 vs 96', dd(a, b), '96 vs file', dd(b, ref))
