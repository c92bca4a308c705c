"""Memory and load time of a large forest: mlfast.load against joblib.load.

Builds (once; the file is kept in _work/) a RandomForestClassifier of 500
fully grown trees with over a million nodes in total -- 200,000 rows of 20
features with 30% of the labels flipped, each tree grown on a bootstrap
sample of 8,000 rows (``max_samples``) so that the fit takes about a minute on
two cores -- saves it with ``joblib.dump`` and measures, each in a fresh
process so that nothing is shared or cached between them:

* ``mlfast.load`` wall time (cold: the first load in a process, and warm:
  the median of further loads);
* the peak RSS (``ru_maxrss``) of a process that imports mlfast and loads the
  file, against one that imports joblib (and so scikit-learn, when the pickle
  names it) and loads it, each beside the peak of the same imports alone;
* ``Model.nbytes`` and the node count, the file's size, and a check that the
  two loaded models agree on a few thousand rows.

Usage: ``python benchmarks/forest_memory.py [--quick] [--work DIR] [--json]``
(--quick: 20 small trees, checks that the script runs and measures nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIME = Path("/usr/bin/time")
ROOT = HERE.parent

FULL = dict(n_rows=200_000, n_features=20, flip_y=0.3, n_estimators=500, max_samples=8_000, seed=0)
QUICK = dict(n_rows=5_000, n_features=20, flip_y=0.3, n_estimators=20, max_samples=1_000, seed=0)

# Each child prints one JSON line with its own peak RSS: VmHWM of
# /proc/self/status, the high-water mark of the process's own address space.
# (getrusage's ru_maxrss would not do: Linux carries the parent's peak over
# fork and exec, so every child of this large process would report at least
# the parent's size.)  /usr/bin/time -v, when present, measures the same
# from outside as a cross-check.
_CHILD = {
    "mlfast-import": """
        import mlfast
    """,
    "mlfast-load": """
        import mlfast
        t = time.perf_counter()
        model = mlfast.load(PATH)
        out["load_s"] = time.perf_counter() - t
        out["nbytes"] = model.nbytes
        warm = []
        for _ in range(5):
            t = time.perf_counter()
            mlfast.load(PATH)
            warm.append(time.perf_counter() - t)
        out["warm_load_s"] = sorted(warm)
    """,
    "mlfast-load-once": """
        import mlfast
        t = time.perf_counter()
        model = mlfast.load(PATH)
        out["load_s"] = time.perf_counter() - t
    """,
    # where the peak goes: Python/numpy allocations traced during the load,
    # and what RSS remains once glibc gives freed heap back (malloc_trim)
    "mlfast-load-traced": """
        import ctypes, gc, tracemalloc
        import mlfast
        tracemalloc.start()
        model = mlfast.load(PATH)
        gc.collect()
        live, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["traced_live"], out["traced_peak"] = live, peak
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                out["rss_trimmed_kib"] = int(line.split()[1])
    """,
    "joblib-import": """
        import joblib
    """,
    "joblib-import-sklearn": """
        import joblib, sklearn.ensemble
    """,
    "joblib-load": """
        import joblib
        t = time.perf_counter()
        import sklearn.ensemble  # what unpickling the file would import anyway
        out["import_sklearn_s"] = time.perf_counter() - t
        t = time.perf_counter()
        model = joblib.load(PATH)
        out["load_s"] = time.perf_counter() - t
    """,
}


def run_child(kind: str, path: Path) -> dict:
    code = (
        "import json, sys, time\n"
        f"PATH = {str(path)!r}\nout = {{}}\n"
        + textwrap.dedent(_CHILD[kind])
        + "for line in open('/proc/self/status'):\n"
        "    if line.startswith('VmHWM:'):\n"
        "        out['maxrss_kib'] = int(line.split()[1])\n"
        "import gc; gc.collect()\n"
        "for line in open('/proc/self/status'):\n"
        "    if line.startswith('VmRSS:'):\n"
        "        out['rss_after_kib'] = int(line.split()[1])\n"
        "print(json.dumps(out))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-c", code]
    if TIME.exists():
        command = [str(TIME), "-v"] + command
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=str(ROOT), check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{done.stderr}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for line in done.stderr.splitlines():
        if "Maximum resident set size" in line:
            out["time_v_maxrss_kib"] = int(line.rsplit(":", 1)[1])
    return out


def build(path: Path, params: dict) -> dict:
    """Fits and saves the forest unless a file with the same parameters is
    already there; returns its description."""
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("params") == params:
            return meta
    import joblib
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(
        params["n_rows"],
        params["n_features"],
        n_informative=10,
        flip_y=params["flip_y"],
        random_state=params["seed"],
    )
    X = X.astype(np.float32)
    forest = RandomForestClassifier(
        n_estimators=params["n_estimators"],
        max_samples=params["max_samples"],
        n_jobs=2,
        random_state=params["seed"],
    )
    t = time.perf_counter()
    forest.fit(X, y)
    fit_s = time.perf_counter() - t
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(forest, path)
    nodes = [e.tree_.node_count for e in forest.estimators_]
    sk_bytes = sum(
        e.tree_.__getstate__()["nodes"].nbytes + e.tree_.value.nbytes for e in forest.estimators_
    )
    meta = dict(
        params=params,
        fit_s=fit_s,
        n_nodes=int(sum(nodes)),
        max_depth=int(max(e.tree_.max_depth for e in forest.estimators_)),
        sklearn_tree_bytes=int(sk_bytes),
    )
    meta_path.write_text(json.dumps(meta))
    return meta


def check_answers(path: Path) -> str:
    """mlfast's predict_proba against scikit-learn's on fresh rows."""
    import joblib
    import numpy as np

    import mlfast

    rng = np.random.default_rng(1)
    forest = joblib.load(path)
    model = mlfast.load(path)
    X = rng.normal(size=(5_000, forest.n_features_in_)) * 2
    same = np.array_equal(model.predict(X), forest.predict(X))
    close = np.allclose(model.predict_proba(X), forest.predict_proba(X), rtol=1e-12, atol=1e-12)

    def best(fn) -> float:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            fn(X)
            times.append(time.perf_counter() - t)
        return min(times)

    fast, slow = best(model.predict_proba), best(forest.predict_proba)
    return (
        f"answers on 5,000 rows: predict equal={same}, predict_proba allclose(1e-12)="
        f"{close}; predict_proba best of 3: {fast * 1e3:.1f} ms (mlfast, "
        f"{mlfast.get_num_threads()} threads) vs {slow * 1e3:.1f} ms (sklearn, n_jobs=None)"
    )


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small forest: checks the script")
    p.add_argument("--work", type=Path, default=HERE / "_work" / "forest_memory")
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    p.add_argument("--repeats", type=int, default=3, help="fresh processes per measurement")
    args = p.parse_args()
    params = QUICK if args.quick else FULL
    path = args.work / ("rf-quick.joblib" if args.quick else "rf500.joblib")
    meta = build(path, params)

    runs = {
        k: [run_child(k, path) for _ in range(args.repeats)]
        for k in (
            "mlfast-import",
            "mlfast-load",
            "mlfast-load-once",
            "mlfast-load-traced",
            "joblib-import",
            "joblib-import-sklearn",
            "joblib-load",
        )
    }
    rss = {k: statistics.median(r["maxrss_kib"] for r in v) for k, v in runs.items()}
    outside = {
        k: statistics.median(r.get("time_v_maxrss_kib", 0) for r in v) for k, v in runs.items()
    }
    after = {k: statistics.median(r["rss_after_kib"] for r in v) for k, v in runs.items()}
    cold = [r["load_s"] for r in runs["mlfast-load"] + runs["mlfast-load-once"]]
    warm = [t for r in runs["mlfast-load"] for t in r["warm_load_s"]]
    joblib_s = [r["load_s"] for r in runs["joblib-load"]]
    sklearn_import_s = [r["import_sklearn_s"] for r in runs["joblib-load"]]
    nbytes = runs["mlfast-load"][0]["nbytes"]

    fig = dict(
        n_trees=params["n_estimators"],
        n_nodes=meta["n_nodes"],
        max_depth=meta["max_depth"],
        fit_s=round(meta["fit_s"], 1),
        file_bytes=path.stat().st_size,
        model_nbytes=nbytes,
        sklearn_tree_bytes=meta["sklearn_tree_bytes"],
        mlfast_load_cold_s=statistics.median(cold),
        mlfast_load_warm_s=statistics.median(warm),
        joblib_load_s=statistics.median(joblib_s),
        sklearn_import_s=statistics.median(sklearn_import_s),
        rss_mlfast_import_kib=rss["mlfast-import"],
        rss_mlfast_load_kib=rss["mlfast-load-once"],
        rss_joblib_import_kib=rss["joblib-import"],
        rss_joblib_sklearn_import_kib=rss["joblib-import-sklearn"],
        rss_joblib_load_kib=rss["joblib-load"],
        time_v_maxrss_kib=outside,
        rss_after_load_kib=after,
    )
    print(
        f"forest: RandomForestClassifier, {fig['n_trees']} trees, {fig['n_nodes']:,} nodes "
        f"(max depth {fig['max_depth']}), {params['n_rows']:,} rows x "
        f"{params['n_features']} features, max_samples={params['max_samples']}, "
        f"fit {fig['fit_s']} s"
    )
    print(f"file (joblib.dump, uncompressed): {fig['file_bytes'] / 2**20:.1f} MiB")
    print(
        f"Model.nbytes: {nbytes / 2**20:.1f} MiB ({nbytes / fig['n_nodes']:.1f} B a node); "
        f"scikit-learn's node and value arrays: {fig['sklearn_tree_bytes'] / 2**20:.1f} MiB"
    )
    print(
        f"mlfast.load: cold {fig['mlfast_load_cold_s'] * 1e3:.0f} ms (median of "
        f"{len(cold)} fresh processes, min {min(cold) * 1e3:.0f}, max {max(cold) * 1e3:.0f}); "
        f"warm {fig['mlfast_load_warm_s'] * 1e3:.0f} ms; target < 1000 ms"
    )
    print(
        f"joblib.load: {fig['joblib_load_s'] * 1e3:.0f} ms (median of {len(joblib_s)}), "
        f"after importing sklearn.ensemble ({fig['sklearn_import_s'] * 1e3:.0f} ms)"
    )
    print(
        "peak RSS, VmHWM, median of fresh processes [/usr/bin/time -v]; then the RSS "
        "the process keeps once loaded:"
    )

    def row(label, key, base=None):
        extra = f" (+{mib(rss[key] - rss[base])})" if base else ""
        print(
            f"  {label:34s}{mib(rss[key]):>11s} [{mib(outside[key])}]{extra:15s}"
            f"  kept {mib(after[key])}"
        )

    row("import mlfast", "mlfast-import")
    row("import mlfast + mlfast.load", "mlfast-load-once", "mlfast-import")
    row("import joblib", "joblib-import")
    row("import joblib, sklearn.ensemble", "joblib-import-sklearn")
    row("import joblib + joblib.load", "joblib-load", "joblib-import-sklearn")
    traced = runs["mlfast-load-traced"][0]
    print(
        f"  mlfast.load under tracemalloc: peak {traced['traced_peak'] / 2**20:.1f} MiB of "
        f"Python/numpy allocations, {traced['traced_live'] / 2**20:.1f} MiB live after; "
        f"RSS after malloc_trim(0) {mib(traced['rss_trimmed_kib'])}"
    )
    fig["mlfast_traced_peak_bytes"] = traced["traced_peak"]
    fig["mlfast_rss_trimmed_kib"] = traced["rss_trimmed_kib"]
    print(
        f"  ratio joblib/mlfast (whole process) {rss['joblib-load'] / rss['mlfast-load-once']:.2f}"
    )
    print(check_answers(path))
    if args.json:
        print(json.dumps(fig))


if __name__ == "__main__":
    main()
