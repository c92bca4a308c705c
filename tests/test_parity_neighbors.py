"""Differential tests: KNeighborsClassifier and KNeighborsRegressor.

scikit-learn is the oracle.  Each check fits a real estimator, saves it,
loads it with mlfast and compares predict and predict_proba on fresh rows
(float64 and float32 input, one row and a batch across threads): labels
equal, floats within 1e-12 with the same shape and dtype.  Every search
(the file's KD-tree and ball tree, brute force), metric (euclidean,
manhattan, chebyshev, minkowski p=1.5 and 3), weights uniform and distance,
k of 1, 5 and 12, on continuous data and on tie-heavy integer data: with
the trees, which of several equally distant points are kept is decided by
the tree's walk and scikit-learn's heap, and mlfast follows both.  With
brute force scikit-learn splits the training rows between its OpenMP
threads and merges their heaps, so among exactly equal distances the points
it keeps depend on its thread count; mlfast keeps scikit-learn's
one-thread answer, and the tie-heavy brute checks run the oracle on one
thread.  float32 rows given to a brute-force model meet float64 training
rows, which scikit-learn's ArgKmin does not take: it falls back to
euclidean_distances and argpartition, whose ties and last bits differ;
mlfast reads float32 as the float64 values they are, so brute-force checks
use float64 rows.  Hostile trees (indices outside the data, children past the node
array) are ModelFormatError.
"""

from __future__ import annotations

import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from support.variants import load_variant
from threadpoolctl import threadpool_limits

import mlfast
from mlfast.errors import ModelFormatError, UnsupportedModelError

RTOL = ATOL = 1e-12
METRICS = [dict(), dict(p=1), dict(p=3), dict(p=1.5), dict(metric="chebyshev")]


def _ids(options):
    return ",".join(f"{k}={v}" for k, v in options.items()) or "minkowski2"


def data(kind, seed=0):
    rs = np.random.RandomState(seed)
    if kind == "float":
        X = rs.randn(500, 4)
    else:
        X = rs.randint(0, 4, (500, 4)).astype(float)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    X_new = X[:60] + (0.01 * rs.randn(60, 4) if kind == "float" else 0)
    return X[60:], y[60:], X_new


def assert_same(got, expected, msg):
    assert isinstance(got, np.ndarray), f"mlfast returned {type(got).__name__}: {msg}"
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}: {msg}"
    assert got.dtype == expected.dtype, f"dtype {got.dtype} != {expected.dtype}: {msg}"
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=msg)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=msg, strict=True)


def check(model, est, X_new, context, one_thread=False):
    for method in ("predict", "predict_proba", "decision_function", "transform"):
        assert hasattr(model, method) == hasattr(est, method), f"{method}: {context}"
    brute = getattr(est, "_fit_method", None) == "brute"
    for dtype in (np.float64,) if brute else (np.float64, np.float32):
        X = X_new.astype(dtype)
        for rows in (X, X[:1], np.repeat(X, 5, axis=0)):
            for method in ("predict", "predict_proba"):
                if hasattr(est, method):
                    with (
                        warnings.catch_warnings(),
                        threadpool_limits(1 if one_thread else None, user_api="openmp"),
                    ):
                        warnings.simplefilter("ignore")
                        expected = getattr(est, method)(rows)
                    got = getattr(model, method)(rows)
                    assert_same(
                        got, expected, f"{method}: {context} | {np.dtype(dtype)} | rows={len(rows)}"
                    )


@pytest.mark.parametrize("kind", ["float", "int"])
@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree", "brute"])
@pytest.mark.parametrize("metric", METRICS, ids=_ids)
def test_kneighbors(metric, algorithm, kind, tmp_path):
    X, y, X_new = data(kind)
    for weights in ("uniform", "distance"):
        for k in (1, 5, 12):
            for est in (
                KNeighborsClassifier(
                    k, weights=weights, algorithm=algorithm, leaf_size=7, **metric
                ).fit(X, y),
                KNeighborsRegressor(
                    k, weights=weights, algorithm=algorithm, leaf_size=7, **metric
                ).fit(X, 2 * X[:, 0] + y),
            ):
                model = load_variant(est, "joblib" if k == 5 else "compile", tmp_path)
                check(
                    model,
                    est,
                    X_new,
                    f"{est!r} | {kind}",
                    one_thread=algorithm == "brute" and kind == "int",
                )


def test_auto_algorithm_string_labels_multi_target_pipeline(tmp_path):
    X, y, X_new = data("float")
    labels = np.array(["a", "b", "c"])[y]
    for est in (
        make_pipeline(StandardScaler(), KNeighborsClassifier()).fit(X, labels),
        KNeighborsRegressor(weights="distance").fit(X, np.c_[X[:, 0], y]),
        KNeighborsRegressor().fit(X, np.c_[X[:, 0], y]),
    ):
        model = pickle.loads(pickle.dumps(load_variant(est, "pickle-p2", tmp_path)))
        check(model, est, X_new, repr(est))


def test_a_row_on_a_training_point_weighs_only_its_twins():
    X, y, _ = data("int")
    est = KNeighborsClassifier(7, weights="distance").fit(X, y)
    check(mlfast.compile(est), est, X[:10], "distance weights at distance 0")


def test_unsupported():
    X, y, _ = data("float")
    for est in (
        KNeighborsClassifier(metric="cosine", algorithm="brute").fit(X, y),
        KNeighborsClassifier(weights=np.sqrt).fit(X, y),
        KNeighborsClassifier().fit(X, np.c_[y, y]),
    ):
        with pytest.raises(UnsupportedModelError):
            mlfast.compile(est)


def _tree_state(est, change):
    tree = est._tree
    state = list(tree.__getstate__())
    change(state)
    tree.__setstate__(tuple(state))
    return est


@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree"])
@pytest.mark.parametrize(
    "name,change,text",
    [
        ("idx outside", lambda s: s[1].__setitem__(3, 10_000), "idx_array[3]"),
        ("idx negative", lambda s: s[1].__setitem__(0, -1), "idx_array[0]"),
        ("node past the rows", lambda s: s[2].__setitem__(1, (0, 10_000, 1, 0.0)), "node 1"),
        (
            "inner leaf without children",
            lambda s: s[2].__setitem__(len(s[2]) - 1, (0, 3, 0, 0.0)),
            "does not fit a tree",
        ),
    ],
)
def test_lying_trees_are_model_format_errors(algorithm, name, change, text):
    X, y, _ = data("float")
    est = _tree_state(KNeighborsClassifier(algorithm=algorithm, leaf_size=5).fit(X, y), change)
    with pytest.raises(ModelFormatError, match=re.escape(text)):
        mlfast.compile(est)


def test_lying_labels_and_shapes_are_model_format_errors():
    X, y, _ = data("float")
    est = KNeighborsClassifier().fit(X, y)
    est._y = est._y + 5
    with pytest.raises(ModelFormatError, match="class indices"):
        mlfast.compile(est)
    est = KNeighborsClassifier(n_neighbors=3).fit(X, y)
    est.n_neighbors = 10_000
    with pytest.raises(ModelFormatError, match="n_neighbors"):
        mlfast.compile(est)
