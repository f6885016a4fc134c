"""Cloth: Adam (experiment=cloth_paper) against projected Newton (experiment=cloth_newton), back
to back in one process, with the energy on the evaluation grid (64² cell centres, what train.py
reports) and on a fine rule (6 × 6 Gauss–Legendre points per cell, 36 864 points) that the
solves' points cannot fool.

    python experiments/cloth_newton.py            # both, as configured
    python experiments/cloth_newton.py --threads 1

Times are main-thread CPU seconds (``time.thread_time``) with ``--threads 1`` (then they do not
depend on what else the machine runs), wall seconds otherwise; the energy is evaluated outside
them. Adam is evaluated every ``--every`` steps for its time to ``--target``.
"""
from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: its default); 1 also pins MKL, numba")
    ap.add_argument("--target", type=float, default=-2.67)
    ap.add_argument("--adam-steps", type=int, default=None, help="default: experiment=cloth_paper's")
    ap.add_argument("--solves", type=int, default=None, help="default: experiment=cloth_newton's")
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads == 1:  # before torch, MKL and numba start their pools
        for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ[key] = "1"
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    adam(args, clock)
    newton(args, clock)


def _build(experiment: str, seed: int):
    import pytorch_lightning as pl
    import torch
    from hydra import compose, initialize_config_dir

    from dinf.app.run import build

    conf = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}", f"seed={seed}", "~logger"])
    pl.seed_everything(seed, verbose=False)
    problem, field, _ = build(cfg)
    sample = problem.sample(8, torch.Generator().manual_seed(0))
    field.jet(sample.x, problem.jet_order)  # compile the fused kernel outside the clock
    return cfg, problem, field


def fine_energy(problem, field) -> float:
    """The energy by 6 × 6 Gauss–Legendre points in every cell of the field."""
    import torch

    from dinf.jet import Jet
    from dinf.solvers.newton import cell_quadrature

    x, w, _ = cell_quadrature(field, 6)
    with torch.no_grad():
        jet = field.jet(x.to(next(field.parameters()).dtype), problem.jet_order)
        jet = Jet(jet.value.double(), jet.grad.double(), jet.hess.double())
        return float((problem.energy_measure * w * problem.energy_density(jet, x)).sum())


def adam(args, clock) -> None:
    import torch
    from hydra.utils import instantiate

    from dinf.fields.warped import sample_for

    cfg, problem, field = _build("cloth_paper", args.seed)
    opt = instantiate(cfg.solver.optim)(field.parameters())
    sched = instantiate(cfg.solver.scheduler)(opt)
    gen = torch.Generator().manual_seed(args.seed)
    steps = args.adam_steps or int(cfg.trainer.max_steps)
    spent, reached = 0.0, None
    for step in range(1, steps + 1):
        t = clock()
        batch = sample_for(field, problem, problem.batch_size, gen)
        opt.zero_grad(set_to_none=True)
        problem.loss(field.jet(batch.x, problem.jet_order), batch)["loss"].backward()
        opt.step()
        sched.step()
        spent += clock() - t
        if reached is None and (step % args.every == 0 or step == steps):
            if problem.evaluate(field)["energy"] <= args.target:
                reached = (step, spent)
    energy = problem.evaluate(field)["energy"]
    print(f"Adam: {steps} steps, {spent:.2f} s; energy {energy:.4f} (fine {fine_energy(problem, field):.4f}); "
          f"{args.target}: " + (f"step {reached[0]}, {reached[1]:.2f} s" if reached else "not reached"), flush=True)


def newton(args, clock) -> None:
    import torch
    from hydra.utils import instantiate

    from dinf.solvers.linalg import gram, sparse_solve
    from dinf.fields.warped import sample_for

    cfg, problem, field = _build("cloth_newton", args.seed)
    solver = instantiate(cfg.solver)
    gram.warm_up()
    sparse_solve.warm_up(solver.backend)
    gen = torch.Generator().manual_seed(args.seed)
    spent, reached = 0.0, None
    t = clock()
    if solver.warm_start_steps:  # as dinf.app.module.Solver._warm_start
        opt = torch.optim.Adam(field.parameters(), lr=solver.warm_start_lr)
        for _ in range(solver.warm_start_steps):
            batch = sample_for(field, problem, problem.batch_size, gen)
            opt.zero_grad(set_to_none=True)
            problem.loss(field.jet(batch.x, problem.jet_order), batch)["loss"].backward()
            opt.step()
        solver.cold_start = False
    spent += clock() - t
    energy = problem.evaluate(field)["energy"]
    print(f"Newton: {solver.warm_start_steps} Adam steps, {spent:.2f} s; energy {energy:.4f}")
    for k in range(1, (args.solves or int(cfg.trainer.max_steps)) + 1):
        t = clock()
        info = solver.solve(field, problem, gen)
        spent += clock() - t
        energy = problem.evaluate(field)["energy"]
        if reached is None and energy <= args.target:
            reached = (k, spent)
        print(f"  solve {k}: {spent:.2f} s; energy {energy:.4f} (fine {fine_energy(problem, field):.4f}, on its "
              f"{info['points']} points {info['loss']:.4f}), step {info['step']:g}", flush=True)
        if info["converged"]:
            break
    print(f"Newton: {args.target}: " + (f"solve {reached[0]}, {reached[1]:.2f} s" if reached else "not reached"))


if __name__ == "__main__":
    main()
