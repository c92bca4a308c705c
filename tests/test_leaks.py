"""Leaks: repeating a call must not grow memory.

A C extension that forgets one ``Py_DECREF`` or ``PyMem_Free`` on some path
leaks one object per call, which a server making millions of calls turns
into an out-of-memory.  Each test repeats a call -- loading every family,
predicting with every method, refusing hostile, corrupt and truncated files,
refusing bad input -- and measures what stays allocated, two ways that are
deterministic (no RSS noise):

* ``tracemalloc``: bytes still allocated through Python's allocators
  (``PyMem_*``, ``PyObject_*``, which is all csrc/ uses except two scratch
  buffers) and numpy's array data;
* ``sys.getallocatedblocks()``: live pymalloc blocks, i.e. small objects.

A leak of one object per call shows as at least N blocks after N calls, in
every round of N calls; caches fill and stop (see ``assert_flat``).  The two plain
``malloc`` scratch buffers (threaded batches in csrc/chain.c and csrc/trees.c)
are outside both counters: ``test_large_batches_keep_rss_flat`` watches the
process's resident memory for them.  valgrind (scripts/valgrind_check.sh)
covers what none of these see.
"""

from __future__ import annotations

import gc
import io
import os
import pickle
import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

import mlfast

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
CORPUS = ROOT / "fuzz" / "corpus" / "load"


# ---- measuring -------------------------------------------------------------------------


def retained(fn, n: int, warmup: int, rounds: int):
    """[(bytes, blocks)] still allocated after each of `rounds` rounds of n
    calls of fn, compared with the start of that round."""
    gc.collect()
    # everything alive now is left out of the collections below, which then
    # take microseconds instead of a walk over all of scikit-learn and pandas
    gc.freeze()
    tracemalloc.start()
    out = []
    # warnings are off: pytest records every warning raised, which would
    # look like a leak of one record per call
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _rounds(fn, n, warmup, rounds, out)
    return out


def _rounds(fn, n, warmup, rounds, out):
    try:
        for _ in range(warmup):
            fn()
        gc.collect()
        for _ in range(rounds):
            bytes0 = tracemalloc.get_traced_memory()[0]
            blocks0 = sys.getallocatedblocks()
            for _ in range(n):
                fn()
            gc.collect()
            out.append(
                (tracemalloc.get_traced_memory()[0] - bytes0, sys.getallocatedblocks() - blocks0)
            )
    finally:
        tracemalloc.stop()
        gc.unfreeze()


def assert_flat(fn, n: int, what: str, warmup: int = 10, rounds: int = 3, calls: int = 1):
    """Fails if every one of `rounds` rounds of n calls of fn (each making
    `calls` calls into mlfast) kept at least 3/4 of a block, or 256 bytes,
    per call.

    A leak keeps at least one block (an object, a small PyMem buffer) or, for
    a buffer over pymalloc's 512 bytes, that many bytes, in *every* round.
    Caches and free lists (numpy's, CPython's) also keep memory but fill up
    and then stay: their growth shrinks from round to round (up to ~0.6 block
    per call over the first hundred loads of a tree, nothing after a few
    thousand), which is why the best round is what counts."""
    total = n * calls
    seen = retained(fn, n, warmup, rounds)
    best_bytes = min(b for b, _ in seen)
    best_blocks = min(k for _, k in seen)
    assert best_blocks < 0.75 * total + 8 and best_bytes < 256 * total + 4096, (
        f"{what}: every round of {total} calls kept memory allocated: "
        + ", ".join(f"{k} blocks/{b} bytes" for b, k in seen)
    )


def raises(exc, fn, *args):
    def call():
        try:
            fn(*args)
        except exc:
            return
        raise AssertionError(f"{fn.__name__} did not raise {exc.__name__}")

    return call


# ---- models of every family, small --------------------------------------------------------


def _families():
    pytest.importorskip("sklearn")
    import joblib
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        IsolationForest,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.RandomState(0)
    X = rng.randn(120, 12)
    y3 = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    ys = np.array(["a", "b", "c"], dtype=object)[y3]
    yr = X[:, 0] * 2 + X[:, 2]
    Xn = X.copy()
    Xn[::7, 3] = np.nan
    estimators = {
        "linear": (LogisticRegression(max_iter=300).fit(X, ys), X),
        "linear_regression": (LinearRegression().fit(X, yr), X),
        "ridge": (Ridge().fit(X, yr), X),
        "pipeline": (
            make_pipeline(
                SimpleImputer(add_indicator=True),
                StandardScaler(),
                LogisticRegression(max_iter=300),
            ).fit(Xn, y3),
            Xn,
        ),
        "tree": (DecisionTreeClassifier(max_depth=5, random_state=0).fit(X, ys), X),
        "forest": (
            RandomForestClassifier(n_estimators=4, max_depth=5, random_state=0).fit(X, y3),
            X,
        ),
        "forest_regressor": (
            RandomForestRegressor(n_estimators=4, max_depth=4, random_state=0).fit(X, yr),
            X,
        ),
        "gbc": (
            GradientBoostingClassifier(n_estimators=4, max_depth=2, random_state=0).fit(X, y3),
            X,
        ),
        "hgb": (HistGradientBoostingClassifier(max_iter=4, random_state=0).fit(Xn, y3), Xn),
        "hgb_regressor": (
            HistGradientBoostingRegressor(max_iter=4, random_state=0).fit(Xn, yr),
            Xn,
        ),
        "iforest": (IsolationForest(n_estimators=4, random_state=0).fit(X), X),
    }
    out = {}
    for name, (est, data) in estimators.items():
        buf = io.BytesIO()
        joblib.dump(est, buf)
        out[name] = (buf.getvalue(), data)
    return out


@pytest.fixture(scope="module")
def families():
    return _families()


METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
    "score_samples",
)


# ---- loading -------------------------------------------------------------------------------


def test_repeated_load_of_every_family_is_flat(families):
    for name, (data, _X) in families.items():
        assert_flat(lambda: mlfast.loads(data), 60, f"mlfast.loads({name})", warmup=200)


def test_repeated_load_of_compressed_files_is_flat(families):
    import gzip
    import lzma
    import zlib

    raw = families["pipeline"][0]
    for codec, data in (
        ("zlib", zlib.compress(raw)),
        ("gzip", gzip.compress(raw)),
        ("xz", lzma.compress(raw)),
    ):
        assert_flat(lambda: mlfast.loads(data), 60, f"mlfast.loads({codec})", warmup=20)


def test_repeated_compile_and_inspect_are_flat(families):
    data = families["forest"][0]
    assert_flat(lambda: mlfast.inspect(data), 60, "mlfast.inspect(forest)", warmup=20)
    import joblib

    est = joblib.load(io.BytesIO(data))
    assert_flat(lambda: mlfast.compile(est), 50, "mlfast.compile(forest)", warmup=300)


# ---- predicting ----------------------------------------------------------------------------


def test_repeated_predict_of_every_family_and_method_is_flat(families):
    for name, (data, X) in families.items():
        model = mlfast.loads(data)
        one = np.ascontiguousarray(X[:1])
        batch32 = np.asfortranarray(X[:50], dtype=np.float32)
        as_list = X[:3].tolist()
        methods = [m for m in METHODS if hasattr(model, m)]
        for method in methods:
            fn = getattr(model, method)
            # the first method with every kind of input, the others with one
            inputs = (("1 row", one), ("50 rows f32 F", batch32), ("list", as_list))
            for label, arg in inputs if method == methods[0] else inputs[1:2]:
                assert_flat(lambda: fn(arg), 100, f"{name}.{method}({label})", rounds=2)


def test_model_pickle_round_trip_is_flat(families):
    model = mlfast.loads(families["hgb"][0])
    assert_flat(
        lambda: pickle.loads(pickle.dumps(model)), 80, "pickle round trip of a Model", warmup=400
    )


def test_bad_input_errors_are_flat(families):
    pytest.importorskip("pandas")
    import pandas as pd

    model = mlfast.loads(families["linear"][0])
    forest = mlfast.loads(families["forest"][0])
    X = families["linear"][1][:4]
    bad = X.copy()
    bad[1, 1] = np.nan
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    cases = {
        "wrong feature count": (model.predict, X[:, :5]),
        "NaN into LogisticRegression": (model.predict_proba, bad),
        "infinity": (forest.predict, np.full((2, X.shape[1]), np.inf)),
        "3-D array": (model.predict, X[None]),
        "zero rows": (forest.predict, X[:0]),
        "strings": (model.predict, [["a"] * X.shape[1]]),
        "ragged list": (forest.predict, [[1.0] * X.shape[1], [1.0]]),
        "complex": (model.predict, X.astype(complex)),
    }
    for what, (fn, arg) in cases.items():
        assert_flat(raises(ValueError, fn, arg), 150, f"refusing {what}", rounds=2)
    # scikit-learn's TypeError for an object array of non-numbers
    assert_flat(
        raises(TypeError, model.predict, np.array([[object()] * X.shape[1]])),
        150,
        "refusing an object array",
        rounds=2,
    )
    # a DataFrame with feature names the model was not fitted with only warns
    assert_flat(lambda: forest.predict(frame), 100, "DataFrame without fitted names")


# ---- refusing files ----------------------------------------------------------------------


def test_hostile_payloads_are_refused_without_leaking(tmp_path):
    from support.hostile import payloads as P

    payloads = []
    for i, (name, build) in enumerate(P.PAYLOADS.items()):
        d = tmp_path / str(i)
        d.mkdir()
        payloads.append((name, build(P.Ctx(d / "MARKER", d)).data))

    def refuse_all():
        for _name, data in payloads:
            try:
                mlfast.loads(data)
            except mlfast.UnsafeModelError:
                pass

    assert_flat(
        refuse_all,
        5,
        f"refusing {len(payloads)} code-execution payloads",
        warmup=2,
        calls=len(payloads),
    )


def test_truncated_and_corrupt_files_are_refused_without_leaking(families):
    data = families["pipeline"][0]
    cuts = sorted(set(np.linspace(1, len(data) - 1, 60).astype(int)))
    rng = np.random.RandomState(1)
    flips = []
    for _ in range(60):
        b = bytearray(data)
        for pos in rng.randint(2, len(b), size=3):
            b[pos] ^= 1 << rng.randint(8)
        flips.append(bytes(b))
    inputs = (
        [data[:c] for c in cuts] + flips + [b"", b"\x80", b"not a pickle", b"\x1f\x8b\x08garbage"]
    )

    def load_all():
        for d in inputs:
            try:
                mlfast.loads(d)
            except (mlfast.MlfastError, ValueError):
                pass

    assert_flat(
        load_all,
        3,
        f"refusing {len(inputs)} truncated and corrupt files",
        warmup=2,
        calls=len(inputs),
    )


def test_fuzz_corpus_leaves_nothing_behind():
    """Every input of the fuzzing corpus (fuzz/corpus/load: real files,
    hostile payloads and what fuzzing found, most of them refused at some
    odd place) loaded again and again."""
    files = sorted(CORPUS.iterdir()) if CORPUS.is_dir() else []
    if not files:
        pytest.skip("no fuzz corpus")
    inputs = [f.read_bytes() for f in files]

    def load_all():
        for d in inputs:
            try:
                model = mlfast.loads(d, max_memory=64 << 20)
            except Exception:  # noqa: BLE001 - leaks are the subject here, not classes
                continue
            n = model.n_features_in_
            if isinstance(n, int) and n <= 4096:
                try:
                    next(getattr(model, m) for m in METHODS if hasattr(model, m))(np.zeros((2, n)))
                except Exception:  # noqa: BLE001
                    pass

    assert_flat(load_all, 1, f"{len(inputs)} corpus files", warmup=1, calls=len(inputs))


# ---- resident memory: what the counters above do not see -----------------------------------


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
@pytest.mark.skipif(
    os.environ.get("MLFAST_SANITIZED") == "1",
    reason="AddressSanitizer's quarantine holds freed memory: RSS grows by design",
)
def test_large_batches_keep_rss_flat(families):
    """Batches big enough for the threaded path, whose per-thread scratch
    buffers come from plain malloc (csrc/chain.c run_range, csrc/trees.c)."""
    for name in ("pipeline", "forest", "hgb"):
        data, X = families[name]
        model = mlfast.loads(data)
        big = np.repeat(X, 200, axis=0)  # 24,000 rows x 12
        for _ in range(20):
            model.predict(big)
        gc.collect()
        before = _rss()
        for _ in range(200):
            model.predict(big)
        gc.collect()
        grown = _rss() - before
        assert grown < 16 << 20, (
            f"{name}: 200 large batches grew resident memory by {grown >> 20} MiB"
        )
