"""Learning-rate schedules (picklable, so checkpoints can hold them)."""
from __future__ import annotations


class ExponentialDecay:
    """The paper's schedule: lr = lr0 · factor^(step / decay_steps), for ``LambdaLR``."""

    def __init__(self, decay_steps: float = 5000, factor: float = 0.1):
        if decay_steps <= 0 or not 0 < factor <= 1:
            raise ValueError(f"need decay_steps > 0 and 0 < factor <= 1, got {decay_steps}, {factor}")
        self.decay_steps = float(decay_steps)
        self.factor = float(factor)

    def __call__(self, step: int) -> float:
        return self.factor ** (step / self.decay_steps)
