"""What the benchmark scripts share: paths, arguments, the machine's
description and the timing loop.  Benchmark code only; mlfast never imports it.

Timing rules, for every script: engines are timed round-robin inside each
repeat (so a burst of load from a neighbour hits them all alike), each repeat
runs a loop long enough to swamp the clock's resolution, and what is reported
is the median over repeats with the min and max beside it.  Ratios are
computed from the medians of the same run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
WORK = HERE / "_work"

# Set on some processors because older OpenBLAS builds misbehave there; they
# slow a current numpy.  run_all.py unsets both for the benchmark processes and
# passes what it found in MLFAST_BENCH_OPENBLAS_FOUND so the report can say so.
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
FOUND_ENV = "MLFAST_BENCH_OPENBLAS_FOUND"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny models and sizes: checks the script runs, measures nothing useful",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help=f"results folder (default {RESULTS})")
    p.add_argument(
        "--work", type=Path, default=WORK, help=f"model files and other scratch (default {WORK})"
    )
    return p


def ncpu() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> Optional[str]:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def versions() -> Dict[str, Optional[str]]:
    out = {"python": platform.python_version()}
    for dist in (
        "numpy",
        "scikit-learn",
        "joblib",
        "mlfast",
        "onnxruntime",
        "skl2onnx",
        "onnx",
        "fastapi",
        "flask",
        "uvicorn",
        "gunicorn",
        "matplotlib",
    ):
        out[dist] = _version(dist)
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
        out["wrk"] = (
            (wrk.stdout + wrk.stderr).split()[1] if (wrk.stdout + wrk.stderr).split() else None
        )
    except (OSError, subprocess.SubprocessError, IndexError):
        out["wrk"] = None
    return out


def blas() -> List[Dict[str, object]]:
    """Which OpenBLAS kernel each loaded BLAS runs (threadpoolctl)."""
    try:
        import numpy  # noqa: F401  (loads numpy's OpenBLAS)
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    rows = []
    for info in threadpool_info():
        rows.append(
            {
                k: info.get(k)
                for k in (
                    "internal_api",
                    "prefix",
                    "version",
                    "architecture",
                    "num_threads",
                    "filepath",
                )
            }
        )
    return rows


def git_revision() -> Optional[str]:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return rev + ("+uncommitted changes" if dirty else "") if rev else None
    except (OSError, subprocess.SubprocessError):
        return None


def openblas_env() -> Dict[str, object]:
    found = os.environ.get(FOUND_ENV)
    return {
        "found": json.loads(found) if found else {v: os.environ.get(v) for v in OPENBLAS_VARS},
        "in_benchmark": {v: os.environ.get(v) for v in OPENBLAS_VARS},
    }


def machine() -> Dict[str, object]:
    return {
        "cpu": cpu_model(),
        "cpus": ncpu(),
        "platform": platform.platform(),
        "versions": versions(),
        "blas": blas(),
        "openblas_env": openblas_env(),
        "mlfast_revision": git_revision(),
        "loadavg_start": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default) + "\n")
    tmp.replace(path)


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def stats(samples: Sequence[float]) -> Dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


# -- timing ------------------------------------------------------------------

Case = Tuple[Callable[[], None], Callable[[], object]]  # (setup, call)


def _loop(call: Callable[[], object], number: int) -> float:
    """Seconds per call over ``number`` calls, with the GC off (as timeit)."""
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            call()
        return (time.perf_counter() - start) / number
    finally:
        if gc_was_on:
            gc.enable()


def _calibrate(call: Callable[[], object], target: float) -> int:
    number = 1
    while True:
        elapsed = _loop(call, number) * number
        if elapsed >= target / 5 or number >= 1_000_000:
            break
        number *= 5
    return max(1, min(1_000_000, int(number * target / max(elapsed, 1e-9))))


def measure(cases: Dict[str, Case], repeats: int, target: float) -> Dict[str, Dict[str, float]]:
    """Seconds per call for each case: median, min and max over ``repeats``.

    Each case's setup runs before its loop (e.g. mlfast.set_num_threads); the
    cases take turns within a repeat, the order rotating from one repeat to
    the next.
    """
    numbers = {}
    for name, (setup, call) in cases.items():
        setup()
        call()  # warm: first-call allocations, lazy imports
        numbers[name] = _calibrate(call, target)
    samples: Dict[str, List[float]] = {name: [] for name in cases}
    names = list(cases)
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            setup, call = cases[name]
            setup()
            samples[name].append(_loop(call, numbers[name]))
    return {name: dict(stats(s), calls_per_repeat=numbers[name]) for name, s in samples.items()}


def fmt_seconds(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs" if seconds < 1e-4 else f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def log(*parts: object) -> None:
    print(*parts, flush=True, file=sys.stderr)
