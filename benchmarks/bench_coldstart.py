"""Cold start and memory: ``import + load`` in a fresh Python process, per
engine and model, with the process's peak RSS.

    python benchmarks/bench_coldstart.py            # writes benchmarks/results/coldstart.json
    python benchmarks/bench_coldstart.py --quick

Each run is a new interpreter (``python -c``) that times, with
``time.perf_counter``, the engine's import and the model's load:

    mlfast         import mlfast;      mlfast.load(f)
    joblib         import joblib;      joblib.load(f)          (imports scikit-learn as it unpickles)
    ONNX Runtime   import onnxruntime; onnxruntime.InferenceSession(f.onnx)

then one prediction (reported apart, as "first predict").  Peak RSS is the
child's high-water mark (``VmHWM`` in /proc/self/status) read right after the load (and again after the first
prediction).  "process" is the parent's wall time for the whole child,
interpreter start and exit included.  One untimed run per engine warms the
page cache first; then the engines take turns, and the median of the runs is
reported with min and max.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from typing import Dict, List

import _common
import bench_models

CHILD = r"""
import time
t0 = time.perf_counter()
{import_line}
t1 = time.perf_counter()
{load_line}
t2 = time.perf_counter()
def peak_rss_kib():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child
    # of a big parent would report the parent's size
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
rss_load = peak_rss_kib()
import numpy as np
row = np.array([[{row}]], dtype={dtype})
{predict_line}
t3 = time.perf_counter()
rss_predict = peak_rss_kib()
import json, sys
print("COLDSTART " + json.dumps({{"import": t1 - t0, "load": t2 - t1, "first_predict": t3 - t2,
                                  "peak_rss_kib_load": rss_load,
                                  "peak_rss_kib_predict": rss_predict, "answer": str(answer)}}))
"""

ENGINES = {
    "joblib + scikit-learn": dict(
        import_line="import joblib",
        load_line="model = joblib.load({path!r})",
        predict_line="answer = model.predict(row)[0]",
    ),
    "mlfast": dict(
        import_line="import mlfast",
        load_line="model = mlfast.load({path!r})",
        predict_line="answer = model.predict(row)[0]",
    ),
    "ONNX Runtime": dict(
        import_line="import onnxruntime",
        load_line="model = onnxruntime.InferenceSession({path!r}, providers=['CPUExecutionProvider'])",
        predict_line="answer = model.run(None, {model.get_inputs()[0].name: row})[0][0]",
    ),
}
BASELINE = "python -c pass"


def child_code(engine: str, path: str, row: List[float], dtype: str) -> str:
    e = ENGINES[engine]
    return CHILD.format(
        import_line=e["import_line"],
        load_line=e["load_line"].format(path=path),
        predict_line=e["predict_line"],
        row=", ".join(repr(v) for v in row),
        dtype=f"np.{dtype}",
    )


# Bytecode caching on in the children, as after a pip install (which compiles
# .pyc files): with PYTHONDONTWRITEBYTECODE set, an editable mlfast would be
# compiled from source in every run while scikit-learn's .pyc files exist.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_child(code: str, cwd) -> Dict[str, float]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=CHILD_ENV,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("COLDSTART ")]
    if not line:
        return {"process": wall}
    out = json.loads(line[-1][len("COLDSTART ") :])
    out["process"] = wall
    return out


def run(args) -> dict:
    import joblib

    quick = args.quick
    runs = 1 if quick else args.runs
    keys = args.models or (["iris_lr"] if quick else bench_models.KEYS)
    onnx_missing = bench_models.onnx_available()
    if onnx_missing:
        _common.log(f"ONNX Runtime skipped: {onnx_missing}")
    models = bench_models.build(args.work, quick, keys=keys, n_test=10, log=_common.log)
    cwd = args.work
    cwd.mkdir(parents=True, exist_ok=True)

    result = {
        "machine": _common.machine(),
        "config": {"quick": quick, "runs": runs, "onnx_skipped": onnx_missing},
        "engines": list(ENGINES),
        "models": [],
    }

    # an empty interpreter, for scale
    base = [
        run_child(
            "import json; print('COLDSTART ' + json.dumps({'peak_rss_kib_load': int("
            "[l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1])}))",
            cwd,
        )
        for _ in range(max(1, runs))
    ]
    result["baseline"] = {
        "process": _common.stats([b["process"] for b in base]),
        "peak_rss_kib": _common.stats([b["peak_rss_kib_load"] for b in base]),
    }

    for m in models:
        row = m.X_test[0].tolist()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = str(joblib.load(m.path).predict(m.X_test[:1])[0])
        codes = {
            "joblib + scikit-learn": child_code(
                "joblib + scikit-learn", str(m.path), row, "float64"
            ),
            "mlfast": child_code("mlfast", str(m.path), row, "float64"),
        }
        onnx_info = None
        if not onnx_missing:
            onnx_info = bench_models.onnx_graph(m, args.work, log=_common.log)
            if onnx_info["path"] is not None:
                codes["ONNX Runtime"] = child_code(
                    "ONNX Runtime", str(onnx_info["path"]), row, onnx_info["dtype"]
                )
        if not quick:
            for code in codes.values():  # warm the page cache and .pyc files
                run_child(code, cwd)
        samples: Dict[str, List[dict]] = {name: [] for name in codes}
        names = list(codes)
        for r in range(runs):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                samples[name].append(run_child(codes[name], cwd))
        entry = {
            "key": m.key,
            "title": m.title,
            "file": m.path.name,
            "file_bytes": m.path.stat().st_size,
            "onnx": (
                {"dtype": onnx_info["dtype"], "file_bytes": onnx_info["path"].stat().st_size}
                if onnx_info and onnx_info["path"]
                else None
            ),
            "engines": {},
        }
        for name, runs_ in samples.items():
            stats = {
                k: _common.stats([s[k] for s in runs_])
                for k in (
                    "import",
                    "load",
                    "first_predict",
                    "process",
                    "peak_rss_kib_load",
                    "peak_rss_kib_predict",
                )
            }
            stats["import_load"] = _common.stats([s["import"] + s["load"] for s in runs_])
            stats["answers_agree"] = all(s["answer"] == expected for s in runs_)
            entry["engines"][name] = stats
            _common.log(
                f"  {m.key:8s} {name:22s} import+load "
                f"{_common.fmt_seconds(stats['import_load']['median'])}  peak RSS "
                f"{stats['peak_rss_kib_load']['median'] / 1024:.1f} MiB  "
                f"(process {_common.fmt_seconds(stats['process']['median'])})"
            )
        result["models"].append(entry)
    result["machine"]["loadavg_end"] = list(os.getloadavg())
    return result


def main(argv=None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument(
        "--runs", type=int, default=7, help="timed runs per engine and model (default 7)"
    )
    p.add_argument(
        "--models",
        type=lambda s: s.split(","),
        default=None,
        help=f"comma-separated subset of {','.join(bench_models.KEYS)}",
    )
    args = p.parse_args(argv)
    result = run(args)
    path = args.out / "coldstart.json"
    _common.write_json(path, result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
