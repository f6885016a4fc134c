"""Helpers of ``experiments/bench.py``: curve arithmetic, ratios, memory, machine info, tables.

Everything here works on plain histories (``[{"step", "train_time_s", <metric>: value}]``, as in
``metrics.json``), so it is testable on hand-made curves.
"""
from __future__ import annotations

import contextlib
import ctypes
import datetime
import logging
import math
import os
import platform
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch

from dinf.app.run import jsonable  # noqa: F401  (re-exported: bench.py writes bench.json with it)

History = Sequence[Dict[str, Any]]
LABELS = {"dinf": "∂∞-Grid", "dinf-ref": "reference-style", "siren": "SIREN",
          "linear_grid": "linear grid", "dinf-lsq": "least squares / Gauss–Newton"}


# --- curves ---------------------------------------------------------------------------------
def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def at_least_as_good(value: float, target: float, mode: str) -> bool:
    return value >= target if mode == "max" else value <= target


def first_time(history: History, metric: str, mode: str, target: float) -> Optional[float]:
    """Training time of the first validation at least as good as ``target`` (None: never)."""
    for h in history:
        if _finite(h.get(metric)) and at_least_as_good(h[metric], target, mode):
            return float(h["train_time_s"])
    return None


def best_point(history: History, metric: str, mode: str) -> Optional[Dict[str, float]]:
    """``{"value", "train_time_s", "step"}`` of the first validation with the best value."""
    best: Optional[Dict[str, Any]] = None
    for h in history:
        v = h.get(metric)
        if _finite(v) and (best is None or (v > best[metric] if mode == "max" else v < best[metric])):
            best = h
    if best is None:
        return None
    return {"value": float(best[metric]), "train_time_s": float(best["train_time_s"]), "step": best["step"]}


def value_at(history: History, metric: str, t: float) -> Optional[float]:
    """The metric at the last validation at or before training time ``t``; None when the run
    was not trained that long (its quality at ``t`` is unknown, not its final value)."""
    points = [h for h in history if _finite(h.get(metric))]
    if not points or points[-1]["train_time_s"] < t:
        return None
    at = [h for h in points if h["train_time_s"] <= t]
    return float(at[-1][metric]) if at else None


def time_ratio(num: Optional[float], den: Optional[float], num_total: Optional[float] = None,
               den_total: Optional[float] = None) -> Dict[str, Any]:
    """``num / den`` with bounds when one side never happened within its run.

    ``num_total`` / ``den_total``: the run's whole training time, used when that side is None:
    a missing numerator gives ``at_least`` = num_total / den, a missing denominator ``at_most``
    = num / den_total. Both 0 → 1 (both there from the start); only ``den`` 0 → inf.
    """
    out: Dict[str, Any] = {"value": None}
    if num is not None and den is not None:
        out["value"] = 1.0 if num <= 0 and den <= 0 else (math.inf if den <= 0 else num / den)
    elif num is None and den is not None and num_total is not None and den > 0:
        out["at_least"] = num_total / den
    elif den is None and num is not None and den_total:
        out["at_most"] = num / den_total
    return out


def reach_ratio(fast: History, slow: History, metric: str, mode: str) -> Dict[str, Any]:
    """How many times sooner ``fast`` reaches ``slow``'s best value than ``slow`` does.

    ``slow``'s training time at its best / ``fast``'s first time at least as good.
    """
    best = best_point(slow, metric, mode)
    if best is None:
        return {"value": None, "note": "no finite value in the slower run"}
    t_fast = first_time(fast, metric, mode, best["value"])
    out = time_ratio(best["train_time_s"], t_fast, den_total=_total(fast))
    out.update(target=best["value"], slow_s=best["train_time_s"], fast_s=t_fast)
    return out


def lsq_ratio(adam: History, lsq_value: Optional[float], lsq_time: Optional[float], metric: str,
              mode: str) -> Dict[str, Any]:
    """Adam's time to the solve's quality / the solve's time (> 1: the solve is faster)."""
    if not _finite(lsq_value) or not lsq_time:
        return {"value": None, "note": "no least-squares result"}
    t_adam = first_time(adam, metric, mode, lsq_value)
    out = time_ratio(t_adam, lsq_time, num_total=_total(adam))
    out.update(target=lsq_value, adam_s=t_adam, lsq_s=lsq_time)
    return out


def _total(history: History) -> Optional[float]:
    return float(history[-1]["train_time_s"]) if history else None


# --- memory -----------------------------------------------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))


def _reset_hwm() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak memory above the start while the block runs, in MiB (``self.mib``).

    CUDA: ``torch.cuda.max_memory_allocated`` after a reset (what the tensors need). CPU: the
    resident set's high-water mark (``VmHWM``, reset on entry) minus the RSS at entry; this
    includes allocator slack and Python objects. Where the mark cannot be reset, a thread polls
    the RSS instead (it can miss short peaks, and it wakes on a core the run wants).
    """

    def __init__(self, cuda: bool, poll_s: float = 0.01):
        self.cuda, self.poll_s, self.mib = cuda, poll_s, math.nan
        self.kind = "CUDA max_memory_allocated" if cuda else "peak RSS growth"
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "PeakMemory":
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
            return self
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand back what earlier runs freed
        except (OSError, AttributeError):
            pass
        self._start = self._peak = _status_kib("VmRSS") * 1024
        if not _reset_hwm():
            self._done = threading.Event()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._done.is_set():
            self._peak = max(self._peak, _status_kib("VmRSS") * 1024)
            time.sleep(self.poll_s)

    def __exit__(self, *exc: Any) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        elif self._thread is not None:
            self._done.set()
            self._thread.join()
            peak = max(self._peak, _status_kib("VmRSS") * 1024)
        else:
            peak = _status_kib("VmHWM") * 1024
        self.mib = max(0, peak - self._start) / 2**20


def load_average() -> Optional[float]:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# --- machine ----------------------------------------------------------------------------------
def machine_info(device: str, argv: Sequence[str]) -> Dict[str, Any]:
    """What a reader needs to compare two bench.json files."""
    cpu = platform.processor()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                   if l.startswith("model name")) or cpu
    except (OSError, StopIteration):
        pass
    info: Dict[str, Any] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name] + list(argv)),
        "python": platform.python_version(), "torch": torch.__version__,
        "device": device, "device_name": torch.cuda.get_device_name(0) if device == "cuda" else cpu,
        "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "load_average_at_start": load_average(), "host": platform.node(),
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS",
                                                "NUMBA_THREADING_LAYER", "CUDA_VISIBLE_DEVICES")},
    }
    try:
        import pytorch_lightning as pl
        info["lightning"] = pl.__version__
        root = Path(__file__).resolve().parents[1]
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        info["git"] = rev + ("+dirty" if dirty else "") if rev else None
    except (ImportError, OSError, subprocess.SubprocessError):
        pass
    return info


@contextlib.contextmanager
def settings(threads: Optional[int]) -> Iterator[None]:
    """Torch threads and a quieter Lightning for the block, restored after (tests run in-process)."""
    old = torch.get_num_threads()
    loggers = [logging.getLogger(n) for n in ("pytorch_lightning", "lightning.pytorch")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*configure_optimizers.*returned `None`.*")  # the solve
        try:
            if threads:
                torch.set_num_threads(threads)
            for lg in loggers:
                lg.setLevel(logging.WARNING)
            yield
        finally:
            torch.set_num_threads(old)
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


# --- tables -----------------------------------------------------------------------------------
def fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return "∞" if math.isinf(v) else f"{v:.{digits}g}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def fmt_ratio(r: Optional[Dict[str, Any]]) -> str:
    if not r:
        return "–"
    if r.get("value") is not None:
        return f"{fmt(r['value'], 3)}×"
    if "at_least" in r:
        return f"> {fmt(r['at_least'], 3)}×"
    if "at_most" in r:
        return f"< {fmt(r['at_most'], 3)}×"
    return "–"


def md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |" for r in rows]
    return "\n".join(lines)


def problem_table(rows: List[Dict[str, Any]], targets: Sequence[float], budgets: Sequence[float],
                  metric: str, mode: str, device: Optional[str] = None) -> str:
    """One problem's Markdown table; time-budget columns no run reached are left out, and a run
    on another device than ``device`` says so."""
    sym = "≥" if mode == "max" else "≤"
    shown = [t for t in budgets if any(r.get("at_budget", {}).get(tkey(t)) is not None for r in rows)]
    cols = (["method", "s/it", "steps", "train s", "peak MiB", "params", f"final {metric}", f"best {metric}"]
            + [f"→ {sym} {fmt(t)} (s)" for t in targets] + [f"@ {fmt(t)} s" for t in shown] + ["status"])
    body = []
    for r in rows:
        ttt = r.get("time_to_target", {})
        where = f" ({r['device']})" if device and r.get("device", device) != device else ""
        body.append([r["method"] + where, r.get("s_per_it"), r.get("steps"), r.get("train_time_s"),
                     r.get("peak_mem_mib"), r.get("params"), r.get("final"), r.get("best")]
                    + [ttt.get(tkey(t)) for t in targets]
                    + [r.get("at_budget", {}).get(tkey(t)) for t in shown] + [r.get("status", "")])
    return md_table(cols, body)


def tkey(x: float) -> str:
    """The key of a target or time point in ``time_to_target`` / ``at_budget``: 30.0 -> "30"."""
    return f"{x:g}"




# --- ratios and the report -------------------------------------------------------------------
def ratios(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One problem's comparisons against ∂∞-Grid (Adam); missing runs give no entry."""
    by = {r["method"]: r for r in rows if r.get("status") == "ok"}
    d = by.get("dinf")
    if d is None:
        return {}
    out: Dict[str, Any] = {"speed": {}, "reach": {}}
    for other in ("dinf-ref", "siren", "linear_grid"):
        if other in by and d["s_per_it"] and by[other]["s_per_it"]:
            out["speed"][other] = {"value": by[other]["s_per_it"] / d["s_per_it"]}
        if other in by and other != "dinf-ref":
            out["reach"][other] = reach_ratio(d["history"], by[other]["history"], d["metric"], d["mode"])
    if "dinf-lsq" in by:
        q = by["dinf-lsq"]
        out["lsq"] = lsq_ratio(d["history"], q["final"], q["train_time_s"], d["metric"], d["mode"])
    return out


def ratio_lines(r: Dict[str, Any], metric: str) -> List[str]:
    lines = []
    speed = ", ".join(f"{LABELS[k]} {fmt_ratio(v)}" for k, v in r.get("speed", {}).items())
    if speed:
        lines.append(f"- Seconds per iteration relative to ∂∞-Grid (> 1: ∂∞-Grid is faster): {speed}.")
    for k, v in r.get("reach", {}).items():
        head = f"- {LABELS[k]}'s best {metric}, {fmt(v.get('target'))}, came at {fmt(v.get('slow_s'), 3)} s"
        if v.get("fast_s") is None:
            lines.append(f"{head}; ∂∞-Grid did not reach it in its run ({fmt_ratio(v)}).")
        elif v["fast_s"] <= 0:
            lines.append(f"{head}; ∂∞-Grid's initial field is already that good ({fmt_ratio(v)}).")
        else:
            lines.append(f"{head}; ∂∞-Grid reaches it at {fmt(v['fast_s'], 3)} s: {fmt_ratio(v)} sooner.")
    if "lsq" in r:
        v = r["lsq"]
        adam = (f"∂∞-Grid-Adam gets there at {fmt(v.get('adam_s'), 3)} s" if v.get("adam_s") is not None
                else "∂∞-Grid-Adam does not get there in its run")
        lines.append(f"- Least squares: {metric} {fmt(v.get('target'))} in {fmt(v.get('lsq_s'), 3)} s "
                     f"(assembly included); {adam}: {fmt_ratio(v)} (> 1: the solve is faster).")
    return lines


def report(result: Dict[str, Any]) -> str:
    """``bench.md``: the setting, then per problem its table, ratios and failures."""
    m = result["machine"]
    env = ", ".join(f"{k}={v}" for k, v in m.get("env", {}).items() if v is not None)
    md = [f"# Benchmark ({result['mode']})", "",
          f"`{m['command']}` — {m['date']}, {m['device_name']} ({m['device']}), torch {m['torch']}, "
          f"{m['torch_threads']} threads, load average at start {m['load_average_at_start']}, "
          f"git {m.get('git')}{', ' + env if env else ''}.",
          f"Budgets (wall s): {result['budgets']}; reference-style: {result['ref_steps']} steps.", ""]
    for name in dict.fromkeys(r["problem"] for r in result["rows"]):
        rows = [r for r in result["rows"] if r["problem"] == name]
        p = result["problems"].get(name, {"metric": "metric", "mode": "max", "targets": []})
        md += [f"## {name} ({p['metric']}, {'higher' if p['mode'] == 'max' else 'lower'} is better)", "",
               problem_table(rows, p["targets"], result["time_points"], p["metric"], p["mode"], m["device"]), ""]
        md += ratio_lines(result["ratios"].get(name, {}), p["metric"])
        md += [f"- {r['method']} failed: " + " ".join(str(r.get("error")).split())
               for r in rows if r.get("status") != "ok"] + [""]
    kinds = sorted({r["mem_kind"] for r in result["rows"] if "mem_kind" in r})
    md += ["s/it: training time / steps (the solve's time for least squares). → target: training "
           "time to the first validation at least that good. @ t s: the metric at the last validation "
           "at or before t s of training." + (f" Peak MiB: {', '.join(kinds)}." if kinds else "")]
    return "\n".join(md) + "\n"
