"""Config checks shared by the multi-resolution grid fields."""
from __future__ import annotations

from dinf.errors import check


def check_grid(in_dim: int, resolution: int, levels: int, features: int) -> None:
    """Raise ``ConfigError`` unless every level ``s`` has a whole ``resolution / 2^s`` cells."""
    check(in_dim >= 1, "in_dim", f"must be >= 1, got {in_dim}")
    check(levels >= 1, "levels", f"must be >= 1, got {levels}")
    check(features >= 1, "features", f"must be >= 1, got {features}")
    step = 2 ** (levels - 1)
    check(
        resolution >= step and resolution % step == 0,
        "resolution",
        f"{resolution} is not divisible by 2^(levels-1) = {step} "
        f"(levels={levels}); use a multiple of {step}",
    )
