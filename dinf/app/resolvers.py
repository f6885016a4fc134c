"""Config resolvers: ``${device:gpu_value,cpu_value}`` sizes a default to the machine a run is on.

Registered when ``dinf.app`` is imported (``train.py`` does before Hydra composes), light on
purpose: torch is imported only when a config reads a ``device`` value under
``trainer.accelerator=auto``.
"""
from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf


def on_gpu(root: DictConfig) -> bool:
    """Whether the run trains on a GPU: ``trainer.accelerator`` if it names one, else whether
    CUDA is available."""
    accelerator = str(OmegaConf.select(root, "trainer.accelerator", default="auto"))
    if accelerator in ("cpu", "gpu", "cuda"):
        return accelerator != "cpu"
    import torch

    return torch.cuda.is_available()


def device(gpu: Any, cpu: Any, *, _root_: DictConfig) -> Any:
    """``gpu`` on a GPU run, ``cpu`` otherwise."""
    return gpu if on_gpu(_root_) else cpu


if not OmegaConf.has_resolver("device"):
    OmegaConf.register_new_resolver("device", device)
