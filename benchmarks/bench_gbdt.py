"""mlfast beside XGBoost's and LightGBM's own predict, on the same model.

One model a library (XGBoost, LightGBM, CatBoost): 500 trees of depth 6 on 50 features (binary), fitted
here with a fixed seed and saved by ``joblib.dump`` as a user saves it.
Every engine answers from that one fit, in the same run, timed round-robin
(``_common.measure``): a single row (the serving call) and batches of
10,000 and 100,000 rows, with the thread count set alike (``--threads``).

    xgboost    XGBClassifier.predict_proba (its inplace_predict)
    lightgbm   LGBMClassifier.predict_proba
    catboost   CatBoostClassifier.predict_proba (500 oblivious trees of depth 6)
    mlfast     mlfast.load(the same file).predict_proba
    treelite   the model compiled to C by tl2cgen (treelite's code
               generator), when tl2cgen installs
    lleaves    LightGBM's model compiled by lleaves (LLVM), when it installs

Also the cold start: a fresh interpreter importing the library and
unpickling the file, against one importing mlfast and loading it.

Results go to results/gbdt.json; the table is printed.  Medians and ratios
come from the same run.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

N_FEATURES = 50


def data(n: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    w = rng.normal(size=N_FEATURES)
    y = (X @ w + rng.normal(size=n) > 0).astype(int)
    X[rng.random(X.shape) < 0.02] = np.nan
    return X, y


def fit(library: str, n_trees: int, depth: int, work: Path) -> Tuple[object, Path]:
    import joblib

    X, y = data(20_000, 0)
    if library == "xgboost":
        import xgboost as xgb

        est = xgb.XGBClassifier(
            n_estimators=n_trees, max_depth=depth, n_jobs=1, tree_method="hist", random_state=0
        )
    elif library == "lightgbm":
        import lightgbm as lgb

        est = lgb.LGBMClassifier(
            n_estimators=n_trees,
            max_depth=depth,
            num_leaves=2**depth,
            n_jobs=1,
            random_state=0,
            verbose=-1,
        )
    else:
        import catboost as cb

        est = cb.CatBoostClassifier(
            iterations=n_trees,
            depth=depth,
            thread_count=1,
            random_seed=0,
            verbose=0,
            allow_writing_files=False,
        )
    est.fit(X, y)
    path = work / f"{library}_{n_trees}x{depth}.joblib"
    joblib.dump(est, path)
    return est, path


def rivals(library: str, est, work: Path, threads: int) -> Dict[str, Callable]:
    """Compiled rivals of this model, by name: a function of X, or nothing
    when the tool does not install."""
    out: Dict[str, Callable] = {}
    if library == "catboost":
        return out
    try:
        import tl2cgen
        import treelite

        if library == "xgboost":
            model = treelite.frontend.from_xgboost(est.get_booster())
        else:
            path = work / "lgb_model.txt"
            est.booster_.save_model(path)
            model = treelite.frontend.load_lightgbm_model(str(path))
        lib = work / f"treelite_{library}.so"
        tl2cgen.export_lib(
            model, toolchain="gcc", libpath=str(lib), params={"parallel_comp": 8}, nthread=threads
        )
        predictor = tl2cgen.Predictor(str(lib), nthread=threads)
        out["treelite"] = lambda X: predictor.predict(tl2cgen.DMatrix(X))
    except Exception as exc:  # a rival that fails to install or compile is left out
        _common.log(f"treelite (tl2cgen): {type(exc).__name__}: {str(exc)[:200]}")
    if library == "lightgbm":
        try:
            import lleaves

            path = work / "lgb_model.txt"
            est.booster_.save_model(path)
            model = lleaves.Model(model_file=str(path))
            model.compile(cache=str(work / "lleaves.o"))
            out["lleaves"] = lambda X: model.predict(X, n_jobs=threads)
        except Exception as exc:
            _common.log(f"lleaves: {type(exc).__name__}: {str(exc)[:200]}")
    return out


def cold_start(library: str, path: Path) -> Dict[str, Dict[str, float]]:
    """A fresh interpreter: import and load, best of a few."""
    scripts = {
        library: f"import joblib, {library}; m = joblib.load({str(path)!r})",
        "mlfast": f"import mlfast; m = mlfast.load({str(path)!r})",
    }
    samples: Dict[str, list] = {k: [] for k in scripts}
    for _ in range(5):
        for name, code in scripts.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            samples[name].append(time.perf_counter() - start)
    return {k: _common.stats(v) for k, v in samples.items()}


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="threads for every engine")
    p.add_argument("--library", choices=["xgboost", "lightgbm", "catboost", "all"], default="all")
    args = p.parse_args()
    import mlfast

    n_trees, depth = (20, 3) if args.quick else (500, 6)
    sizes = (1, 100) if args.quick else (1, 10_000, 100_000)
    repeats, target = (3, 0.02) if args.quick else (5, 0.3)
    args.work.mkdir(parents=True, exist_ok=True)
    mlfast.set_num_threads(args.threads)
    results: Dict[str, object] = {
        "machine": _common.machine(),
        "trees": n_trees,
        "depth": depth,
        "features": N_FEATURES,
        "threads": args.threads,
        "libraries": {},
    }
    libraries = ["xgboost", "lightgbm", "catboost"] if args.library == "all" else [args.library]
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        for library in libraries:
            est, path = fit(library, n_trees, depth, args.work)
            if library != "catboost":  # CatBoost's predict takes thread_count
                est.set_params(n_jobs=args.threads)
            model = mlfast.load(path)
            X, _ = data(max(sizes), 1)
            check = X[:1000]
            ours, theirs = model.predict_proba(check), est.predict_proba(check)
            exact = bool(np.array_equal(ours, theirs))
            worst = float(np.max(np.abs(ours - theirs)))
            engines: Dict[str, Callable] = {
                library: (
                    est.predict_proba
                    if library != "catboost"
                    else (lambda X, est=est: est.predict_proba(X, thread_count=args.threads))
                ),
                "mlfast": model.predict_proba,
            }
            engines.update(rivals(library, est, Path(scratch), args.threads))
            table: Dict[str, object] = {
                "bit_equal_1000_rows": exact,
                "max_abs_difference": worst,
                "sizes": {},
            }
            for n in sizes:
                Xn = np.ascontiguousarray(X[:n])
                cases = {
                    name: ((lambda: None), (lambda f=f, Xn=Xn: f(Xn)))
                    for name, f in engines.items()
                }
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    timed = _common.measure(cases, repeats, target)
                table["sizes"][n] = timed
                base = timed["mlfast"]["median"]
                line = "  ".join(
                    f"{name} {_common.fmt_seconds(t['median'])} ({t['median'] / base:.2f}x)"
                    for name, t in timed.items()
                )
                print(f"{library} {n_trees}x{depth}, {n} rows: {line}", flush=True)
            if not args.quick:
                table["cold_start"] = cold_start(library, path)
                cs = table["cold_start"]
                print(
                    f"{library} cold start: import+load {library} "
                    f"{_common.fmt_seconds(cs[library]['median'])}, mlfast "
                    f"{_common.fmt_seconds(cs['mlfast']['median'])} "
                    f"({cs[library]['median'] / cs['mlfast']['median']:.1f}x)",
                    flush=True,
                )
            results["libraries"][library] = table
    _common.write_json(args.out / "gbdt.json", results)


if __name__ == "__main__":
    main()
