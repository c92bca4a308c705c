"""In-process predict: latency at batch sizes 1 to 10,000 and throughput at
100,000 rows, for scikit-learn, ONNX Runtime (skl2onnx) and mlfast with one
thread and with all cores.

    python benchmarks/bench_inprocess.py            # writes benchmarks/results/inprocess.json
    python benchmarks/bench_inprocess.py --quick    # tiny models: checks the script runs

Before anything is timed, each engine's labels and probabilities are compared
with scikit-learn's on the test rows; mismatches are recorded, not hidden
(ONNX Runtime's float32 graphs are expected to differ a little).

What is timed is ``predict(X)`` (labels), on float64 C-ordered rows: a slice
of the test set for a batch, ``x[None, :]`` for one row.  The lesson's
``np.array(features).reshape(1, -1)`` from a Python list is timed too
("1 (list)"), its conversion included.  ONNX Runtime's float32 graphs get
the same float64 rows and pay the cast.
"""

from __future__ import annotations

import sys
import time
import warnings

import _common
import bench_models
import numpy as np

ENGINES = [
    "scikit-learn",
    "scikit-learn, OpenMP 1 thread",
    "ONNX Runtime",
    "mlfast 1 thread",
    "mlfast all cores",
]
# scikit-learn's HistGradientBoosting predicts in an OpenMP loop over all
# cores, even for one row; on a busy machine waiting for the second thread
# costs far more than the row.  Timed a second time with OpenMP limited to
# one thread, so the reading can name the fairer figure (the Voting and
# Stacking models hold a HistGradientBoosting member, so they too).
OPENMP_PREDICT = {"hgb100", "vote3", "stack3"}


class _OpenMP:
    """Limit OpenMP to one thread inside an engine's turn, and undo it."""

    def __init__(self):
        from threadpoolctl import ThreadpoolController

        self.controller = ThreadpoolController()
        self.limited = None

    def one(self):
        if self.limited is None:
            self.limited = self.controller.limit(limits=1, user_api="openmp")

    def default(self):
        if self.limited is not None:
            self.limited.restore_original_limits()
            self.limited = None


def _check(name, predict, predict_proba, X, ref_labels, ref_proba):
    """Labels and probabilities of one engine against scikit-learn's."""
    labels = np.asarray(predict(X)).ravel()
    out = {"rows": int(len(X)), "label_mismatches": int(np.sum(labels != ref_labels))}
    if predict_proba is not None and ref_proba is not None:
        proba = np.asarray(predict_proba(X), dtype=np.float64)
        out["max_abs_proba_diff"] = float(np.max(np.abs(proba - ref_proba)))
    return out


def run(args) -> dict:
    import joblib

    import mlfast

    quick = args.quick
    batches = [1, 100] if quick else [1, 10, 100, 1_000, 10_000]
    big = 500 if quick else 100_000
    repeats = {"small": 2 if quick else 15, "10000": 7, "big": 2 if quick else 5}
    target = 0.001 if quick else 0.05
    n_check = 500 if quick else 10_000
    all_cores = _common.ncpu()

    onnx_missing = bench_models.onnx_available()
    if onnx_missing:
        _common.log(f"ONNX Runtime skipped: {onnx_missing}")
    models = bench_models.build(
        args.work, quick, keys=args.models, n_test=max(big, n_check), log=_common.log
    )

    result = {
        "machine": _common.machine(),
        "config": {
            "quick": quick,
            "batches": batches,
            "throughput_rows": big,
            "repeats": repeats,
            "target_seconds_per_repeat": target,
            "check_rows": n_check,
            "all_cores": all_cores,
            "onnx_skipped": onnx_missing,
        },
        "engines": ENGINES,
        "models": [],
    }
    for m in models:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # InconsistentVersionWarning and the like
            est = joblib.load(m.path)
        fast = mlfast.load(m.path)
        openmp = _OpenMP()
        engines = {
            "scikit-learn": (openmp.default, est.predict, getattr(est, "predict_proba", None)),
        }
        if m.key in OPENMP_PREDICT:
            engines["scikit-learn, OpenMP 1 thread"] = (
                openmp.one,
                est.predict,
                getattr(est, "predict_proba", None),
            )
        onnx_info = None
        if not onnx_missing:
            onnx_info = bench_models.onnx_graph(m, args.work, log=_common.log)
            if onnx_info["path"] is not None:
                session = bench_models.OnnxEngine(onnx_info["path"], onnx_info["dtype"])
                engines["ONNX Runtime"] = (
                    openmp.default,
                    session.predict,
                    session.predict_proba if session.proba else None,
                )

        def one_thread():
            openmp.default()
            mlfast.set_num_threads(1)

        def every_core():
            openmp.default()
            mlfast.set_num_threads(all_cores)

        engines["mlfast 1 thread"] = (
            one_thread,
            fast.predict,
            getattr(fast, "predict_proba", None),
        )
        engines["mlfast all cores"] = (
            every_core,
            fast.predict,
            getattr(fast, "predict_proba", None),
        )

        # -- answers first -----------------------------------------------------
        X = m.X_test
        Xc = X[:n_check]
        ref_labels = est.predict(Xc)
        ref_proba = est.predict_proba(Xc) if hasattr(est, "predict_proba") else None
        check = {}
        for name, (setup, predict, proba) in engines.items():
            setup()
            check[name] = _check(name, predict, proba, Xc, ref_labels, ref_proba)
            # the single-row and list paths give the same label as a batch
            row_label = np.asarray(predict(X[0][None, :])).ravel()[0]
            check[name]["single_row_equal"] = bool(row_label == ref_labels[0])
            if name == "ONNX Runtime" and onnx_info["dtype"] == "float32":
                check[name]["note"] = "float32 graph: inputs and thresholds rounded to float32"
        big_ref = est.predict(X[:big])
        for name, (setup, predict, _) in engines.items():
            setup()
            check[name]["throughput_rows_label_mismatches"] = int(
                np.sum(np.asarray(predict(X[:big])).ravel() != big_ref)
            )
        for name, c in check.items():
            _common.log(
                f"  {m.key:8s} {name:29s} labels differ: {c['label_mismatches']}/{c['rows']}"
                f"  max|Δproba| {c.get('max_abs_proba_diff', float('nan')):.3g}"
            )

        # -- latency -------------------------------------------------------------
        latency = {}
        for b in batches:
            Xb = X[0][None, :] if b == 1 else X[:b]
            cases = {
                name: (setup, (lambda p=predict, x=Xb: p(x)))
                for name, (setup, predict, _) in engines.items()
            }
            reps = repeats["10000"] if b >= 10_000 else repeats["small"]
            latency[str(b)] = _common.measure(cases, reps, target)
            _report_line(m.key, f"batch {b}", latency[str(b)])
        features = X[0].tolist()
        cases = {
            name: (setup, (lambda p=predict: p(np.array(features).reshape(1, -1))))
            for name, (setup, predict, _) in engines.items()
        }
        lesson = _common.measure(cases, repeats["small"], target)
        _report_line(m.key, "1 (list)", lesson)

        Xbig = X[:big]
        cases = {
            name: (setup, (lambda p=predict: p(Xbig)))
            for name, (setup, predict, _) in engines.items()
        }
        throughput = _common.measure(cases, repeats["big"], 0.0)
        _report_line(m.key, f"batch {big}", throughput)

        result["models"].append(
            {
                "key": m.key,
                "title": m.title,
                "describe": m.describe,
                "file": m.path.name,
                "file_bytes": m.path.stat().st_size,
                "n_features": m.n_features,
                "mlfast_estimator": fast.estimator,
                "onnx": (
                    {"dtype": onnx_info["dtype"], "note": onnx_info["note"]}
                    if onnx_info
                    else {"dtype": None, "note": onnx_missing}
                ),
                "check": check,
                "latency": latency,
                "latency_list_row": lesson,
                "throughput": throughput,
                "seconds": time.perf_counter() - t0,
            }
        )
        openmp.default()
    mlfast.set_num_threads(all_cores)
    result["machine"]["loadavg_end"] = list(__import__("os").getloadavg())
    return result


def _report_line(key, what, timings):
    parts = [f"{name} {_common.fmt_seconds(t['median'])}" for name, t in timings.items()]
    _common.log(f"  {key:8s} {what:12s} " + " | ".join(parts))


def main(argv=None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument(
        "--models",
        type=lambda s: s.split(","),
        default=None,
        help=f"comma-separated subset of {','.join(bench_models.KEYS)}",
    )
    args = p.parse_args(argv)
    result = run(args)
    path = args.out / "inprocess.json"
    _common.write_json(path, result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
