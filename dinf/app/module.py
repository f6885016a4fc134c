"""The generic LightningModule: one field, one problem, one solver (``dinf.solvers``).

A gradient solver: sample → ``field.jet`` → ``problem.loss`` → optimizer step. Any other solver:
one ``solver.solve`` per training step. Validation calls ``problem.evaluate`` with gradients
enabled (problems may need derivatives). Training time excludes validation, so time-to-target
measures the solver, not the metric.
"""
from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Optional

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from dinf.errors import NonFiniteLossError  # noqa: F401 - raised here, imported from here by callers
from dinf.fields.interpolant import Interpolant
from dinf.fields.warped import sample_for
from dinf.pdes.base import Problem
from dinf.solvers.base import GradientSolver, Solver


class FieldModule(pl.LightningModule):
    """Fits ``field`` to ``problem`` with ``solver``.

    ``history`` collects ``{"step", "train_time_s", **metrics}`` at every validation.
    """

    def __init__(self, field: nn.Module, problem: Problem, solver: Solver, seed: int = 0):
        super().__init__()
        self.field = field
        self.problem = problem
        self.solver = solver
        self.gradient = isinstance(solver, GradientSolver)
        self.solves = 0
        self.automatic_optimization = False
        self.generator = torch.Generator().manual_seed(seed)
        self.history: List[Dict[str, float]] = []
        self.time_to_target: Dict[str, Optional[Dict[str, float]]] = {
            _target_key(name, t, problem.metric_modes[name]): None
            for name, ts in problem.targets.items()
            for t in ts
        }
        self.warmup_s = 0.0
        self.first_loss: Optional[float] = None
        self.last_loss: Optional[float] = None
        self._train_start = 0.0
        self._val_time = 0.0
        self._val_start = 0.0
        self._resumed_time = 0.0
        self.seed = seed

    # --- data: the problem samples its own points; the loader only counts steps ------------
    def train_dataloader(self) -> DataLoader:
        steps = self.trainer.max_steps if self.trainer.max_steps > 0 else 10**9
        return DataLoader(range(steps), batch_size=None, shuffle=False)

    def val_dataloader(self) -> DataLoader:
        return DataLoader([0], batch_size=None)

    def configure_optimizers(self):
        if not self.gradient:
            return None
        # A problem's unknown parameters (dinf.pdes.inferred) train with the field.
        opt = self.solver.optim([*self.field.parameters(), *self.problem.parameters()])
        if self.solver.scheduler is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": self.solver.scheduler(opt), "interval": "step"}}

    # --- training -----------------------------------------------------------------------
    def training_time(self) -> float:
        return time.perf_counter() - self._train_start - self._val_time

    def on_train_start(self) -> None:
        self.warmup_s = self._warm_up()
        if self.trainer.world_size > 1:  # each rank draws its own points (a resumed one too)
            rank, step = self.trainer.global_rank, self.trainer.global_step
            self.generator.manual_seed(self.seed + 1000003 * rank + 7919 * step)
        # A resumed run's clock starts at the training time its checkpoint had reached.
        self._train_start = time.perf_counter() - self._resumed_time
        self._val_time = 0.0
        if self.history and not self.gradient:
            self.solver.resume()  # a resumed Gauss–Newton run goes on from its checkpoint's field
        if not self.history:  # the starting point of every curve
            self.record(self.evaluate(), train_time=0.0)
            self._val_time = time.perf_counter() - self._train_start

    # --- checkpoints: what a resumed run needs beyond the field and the optimizer -------------
    def on_save_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        checkpoint["dinf"] = {
            "generator": self.generator.get_state(),
            "history": self.history,
            "time_to_target": self.time_to_target,
            "train_time_s": self.history[-1]["train_time_s"] if self.history else 0.0,
            "first_loss": self.first_loss,
            "last_loss": self.last_loss,
            "solves": self.solves,
            "solver": self.solver.state(),
        }

    def on_load_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        state = checkpoint["dinf"]
        self.generator.set_state(state["generator"])
        self.history = list(state["history"])
        self.time_to_target = dict(state["time_to_target"])
        self._resumed_time = float(state["train_time_s"])
        self.first_loss, self.last_loss = state["first_loss"], state["last_loss"]
        self.solves = int(state["solves"])
        self.solver.load_state(state.get("solver") or {})

    def _warm_up(self) -> float:
        """One jet and backward on a few points, so one-time work (the fused kernel's and, for
        solves, the normal matrix's compilation on a fresh machine) is not counted as training
        time. Returns its seconds."""
        start = time.perf_counter()
        self.solver.warm_up()  # the solves' normal matrices and sparse backend; a classical solver's libraries
        if isinstance(self.field, Interpolant):  # a classical solver's field has no jets to warm up
            return time.perf_counter() - start
        sample = self.problem.sample(8, torch.Generator().manual_seed(0))
        with torch.enable_grad():
            jet = self.field.jet(sample.x, self.problem.jet_order)
            self.problem.loss(jet, sample)["loss"].backward()
        self.field.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    def training_step(self, batch: Any, batch_idx: int) -> None:
        if not self.gradient:
            return self._solve_step()
        opt = self.optimizers()
        sample = self.solver.batch(self.field, self.problem, self.problem.batch_size, self.generator, self.global_step)
        terms: Dict[str, torch.Tensor] = {}

        def closure() -> torch.Tensor:
            opt.zero_grad(set_to_none=True)
            jet = self.field.jet(sample.x, self.problem.jet_order)
            terms.update(self.problem.loss(jet, sample))
            loss = terms["loss"]
            if not torch.isfinite(loss):
                bad = {k: float(v.detach()) for k, v in terms.items()}
                raise NonFiniteLossError(
                    f"non-finite loss at step {self.global_step}: {bad}; "
                    "training stopped (try a smaller model.lr)"
                )
            self.manual_backward(loss)
            return loss

        opt.step(closure=closure)
        sched = self.lr_schedulers()
        if sched is not None:
            sched.step()
        self.last_loss = float(terms["loss"].detach())
        if self.first_loss is None:
            self.first_loss = self.last_loss
        if not self._logs_now():
            return
        logs = {f"train/{k}": v.detach() for k, v in terms.items()}
        logs["train/lr"] = opt.param_groups[0]["lr"]
        logs["train/time_s"] = self.training_time()
        self.log_dict(logs, on_step=True, on_epoch=False, prog_bar=False, batch_size=1)
        self.log("loss", terms["loss"].detach(), prog_bar=True, logger=False, batch_size=1)

    def _logs_now(self) -> bool:
        """Whether this step's losses go to the loggers: every ``log_every_n_steps`` and the
        last. Lightning drops the others anyway, but only after ``log_dict`` has cost ~3 ms."""
        every = max(self.trainer.log_every_n_steps, 1)
        done = self.global_step  # optimizer steps taken, this one included
        return done <= 1 or done % every == 0 or done >= self.trainer.max_steps > 0

    def _solve_step(self) -> None:
        if self.solves == 0 and self.solver.warm_start_steps > 0:
            self._warm_start(self.solver.warm_start_steps, self.solver.warm_start_lr)
        info = self.solver.solve(self.field, self.problem, self.generator)
        self.solves += 1
        self.last_loss = info["loss"]
        if self.first_loss is None:
            self.first_loss = info["loss_zero"]
        prefix = self.solver.prefix
        logs = {f"train/{prefix}_{k}": float(v) for k, v in info.items() if k != "loss" and not isinstance(v, str)}
        logs["train/loss"] = info["loss"]
        logs["train/time_s"] = self.training_time()
        self.log_dict(logs, on_step=True, on_epoch=False, prog_bar=False, batch_size=1)
        if info.get("converged"):  # a Gauss–Newton run that stopped improving ends here
            self.trainer.should_stop = True

    def _warm_start(self, steps: int, lr: float) -> None:
        """``steps`` Adam steps on the problem's batches before the first solve, which then
        starts from their field. They are part of the first training step, so training time
        counts them; a run resumed after its first solve does not repeat them."""
        start = time.perf_counter()
        opt = torch.optim.Adam([*self.field.parameters(), *self.problem.parameters()], lr=lr)
        for step in range(steps):
            sample = sample_for(self.field, self.problem, self.problem.batch_size, self.generator)
            opt.zero_grad(set_to_none=True)
            loss = self.problem.loss(self.field.jet(sample.x, self.problem.jet_order), sample)["loss"]
            if not torch.isfinite(loss):
                raise NonFiniteLossError(f"non-finite loss at warm-start step {step}: {float(loss)}; "
                                         "training stopped (try a smaller model.lr)")
            loss.backward()
            opt.step()
        self.field.zero_grad(set_to_none=True)
        self.problem.zero_grad(set_to_none=True)
        self.solver.warm_started()  # the first solve reads the field Adam left
        self.log_dict({"train/warm_start_steps": float(steps), "train/warm_start_loss": float(loss.detach()),
                       "train/warm_start_s": time.perf_counter() - start}, on_step=True, on_epoch=False, batch_size=1)

    @property
    def steps(self) -> int:
        """Optimizer steps taken (solves for a solving solver)."""
        return int(self.global_step) if self.gradient else self.solves

    # --- validation ---------------------------------------------------------------------
    def evaluate(self) -> Dict[str, float]:
        """The problem's metrics of the field now (gradients enabled, eval mode)."""
        was_training = self.field.training
        self.field.eval()
        with torch.enable_grad():
            metrics = self.problem.evaluate(self.field)
        self.field.train(was_training)
        return {k: float(v) for k, v in metrics.items()}

    def on_validation_start(self) -> None:
        self._val_start = time.perf_counter()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        metrics = self.evaluate()
        # A classical refinement sequence solves afresh each time: its point is that solve's time.
        own = not self.gradient and self.solver.independent_solves
        self.record(metrics, float(self.solver.info["time_s"]) if own else self.training_time())
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, prog_bar=True, batch_size=1)

    def on_validation_end(self) -> None:
        self._val_time += time.perf_counter() - self._val_start

    def record(self, metrics: Dict[str, float], train_time: float) -> None:
        """Append to ``history`` and mark thresholds reached for the first time."""
        entry = {"step": self.steps, "train_time_s": train_time, **metrics}
        self.history.append(entry)
        for name, ts in self.problem.targets.items():
            mode = self.problem.metric_modes[name]
            value = metrics.get(name, math.nan)
            for t in ts:
                key = _target_key(name, t, mode)
                hit = value >= t if mode == "max" else value <= t
                if self.time_to_target[key] is None and hit:
                    self.time_to_target[key] = {"seconds": train_time, "step": entry["step"]}


def _target_key(name: str, threshold: float, mode: str) -> str:
    return f"{name}{'>=' if mode == 'max' else '<='}{threshold:g}"
