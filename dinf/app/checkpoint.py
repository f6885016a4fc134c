"""Runs survive interruption: a checkpoint at every validation, and a run killed mid-way resumes
from it when the same command is run again.

Every run keeps ``run_state.json`` in its folder (its config key, status, W&B id, pid) and, when
``checkpoint.registry`` is set, an entry ``<registry>/<key>.json`` pointing to that folder. The key
is a hash of the resolved config, so the same command finds the folder of its interrupted run —
also when Hydra gives the new attempt a new time-stamped folder. A SLURM requeue reruns the job in
its own folder and finds the checkpoint there.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

CHECKPOINT = os.path.join("checkpoints", "last.ckpt")
STATE = "run_state.json"
POINTER = "resumed.json"


@dataclass
class RunState:
    """What a later attempt needs to continue a run."""

    key: str
    output_dir: str
    status: str = "running"  # running | completed | failed
    wandb_id: Optional[str] = None
    pid: int = 0
    host: str = ""
    attempts: int = 1

    @property
    def checkpoint(self) -> str:
        return os.path.join(self.output_dir, CHECKPOINT)

    def save(self) -> None:
        _write_json(os.path.join(self.output_dir, STATE), asdict(self))


def run_key(cfg: DictConfig) -> str:
    """A hash of everything that decides the run's result; checkpoint settings excluded."""
    data = OmegaConf.to_container(cfg, resolve=True)
    data.pop("checkpoint", None)
    data.pop("hydra", None)
    blob = json.dumps(_str_keys(data), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _str_keys(data: Any) -> Any:
    """``data`` with every mapping key a string: YAML reads a key ``true`` or ``on`` as a bool,
    which json cannot sort beside strings (the config's own check then names the key)."""
    if isinstance(data, dict):
        return {str(k): _str_keys(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_str_keys(v) for v in data]
    return data


def begin(cfg: DictConfig, output_dir: str) -> RunState:
    """The state of this run: a new one in ``output_dir``, or an interrupted one to continue.

    A run is continued when its folder holds a checkpoint, it did not complete, and the process
    that ran it is gone. ``checkpoint.resume``: ``auto`` looks in ``output_dir`` and then in the
    registry; ``false`` always starts afresh; a path continues that run folder.
    """
    key = run_key(cfg)
    node = cfg.get("checkpoint") or {}
    mode = node.get("resume", "auto")
    registry = node.get("registry")
    candidates = []
    if isinstance(mode, str) and mode not in ("auto",):
        candidates = [mode]
    elif mode:  # auto / true
        candidates = [output_dir] + ([_registered(registry, key)] if registry else [])
    for folder in filter(None, candidates):
        state = _resumable(folder, key, explicit=folder == mode)
        if state is not None:
            state.attempts += 1
            state.pid, state.host = os.getpid(), socket.gethostname()
            state.status = "running"
            if os.path.abspath(folder) != os.path.abspath(output_dir):
                os.makedirs(output_dir, exist_ok=True)
                _write_json(os.path.join(output_dir, POINTER), {"continued_in": os.path.abspath(folder)})
            log.info("resuming %s from %s (attempt %d)", folder, state.checkpoint, state.attempts)
            state.save()
            _register(registry, state)
            return state
    stale = os.path.join(output_dir, CHECKPOINT)
    if os.path.exists(stale):  # another run's (a finished one, or another config's): never ours to resume
        log.info("starting afresh in %s: removing the checkpoint a previous run left there", output_dir)
        os.remove(stale)
    state = RunState(key=key, output_dir=os.path.abspath(output_dir), pid=os.getpid(), host=socket.gethostname())
    state.save()
    _register(registry, state)
    return state


def attach(output_dir: str) -> RunState:
    """The state rank 0 wrote, for the other ranks of a multi-GPU run (which write nothing)."""
    pointer = os.path.join(output_dir, POINTER)
    if os.path.exists(pointer):
        with open(pointer) as f:
            output_dir = json.load(f)["continued_in"]
    with open(os.path.join(output_dir, STATE)) as f:
        state = RunState(**json.load(f))
    state.output_dir = os.path.abspath(output_dir)
    return state


def finish(state: RunState, status: str) -> None:
    state.status = status
    state.save()


def _resumable(folder: str, key: str, explicit: bool) -> Optional[RunState]:
    path = os.path.join(folder, STATE)
    if not os.path.exists(os.path.join(folder, CHECKPOINT)) or not os.path.exists(path):
        if explicit:
            raise FileNotFoundError(f"checkpoint.resume: no {CHECKPOINT} and {STATE} in {folder}")
        return None
    with open(path) as f:
        state = RunState(**json.load(f))
    state.output_dir = os.path.abspath(folder)
    if state.key != key and explicit:
        log.warning("checkpoint.resume: %s was run with another config; continuing it anyway", folder)
    elif state.key != key or state.status == "completed" or _alive(state):
        return None
    return state


def _alive(state: RunState) -> bool:
    """Whether the process that wrote ``state`` still runs (so it is not ours to continue)."""
    if state.host != socket.gethostname() or state.pid in (0, os.getpid()):
        return False
    try:
        os.kill(state.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _registered(registry: str, key: str) -> Optional[str]:
    path = os.path.join(registry, f"{key}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f).get("output_dir")


def _register(registry: Optional[str], state: RunState) -> None:
    if registry:
        _write_json(os.path.join(registry, f"{state.key}.json"), {"output_dir": state.output_dir})


def _write_json(path: str, data: Dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)  # a kill mid-write leaves the old file, not half a file


class CheckpointAtValidation(pl.Callback):
    """Saves ``<run>/checkpoints/last.ckpt`` after every validation, atomically.

    After validation, so the checkpoint's history already holds that validation's metrics and a
    resumed run continues exactly where the saved one stood.
    """

    def __init__(self, path: str):
        self.path = path

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = f"{self.path}.tmp"
        trainer.save_checkpoint(tmp, weights_only=False)  # every rank takes part; rank 0 writes
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
