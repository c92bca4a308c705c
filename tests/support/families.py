"""Differential checks shared by the parity tests of the decompositions,
GLMs, preprocessing, clustering and mixture families.

``check`` compares every method scikit-learn has (and refuses the ones it
lacks) on float64, float32 and integer rows, a batch and one row, and a
batch large enough to be split across mlfast's threads: labels equal with
the same dtype, floats within 1e-12 (float32 outputs to float32's
precision) with the same shape and dtype.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import pytest

METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
    "score_samples",
)
RTOL = ATOL = 1e-12
F32_RTOL = 1e-6


def quietly(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def fit(est, X, y=None):
    return quietly(est.fit, X) if y is None else quietly(est.fit, X, y)


def assert_same(got: Any, expected: Any, msg: str, rtol: float = RTOL) -> None:
    assert isinstance(got, np.ndarray), f"mlfast returned {type(got).__name__}: {msg}"
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}: {msg}"
    assert got.dtype == expected.dtype, f"dtype {got.dtype} != {expected.dtype}: {msg}"
    if expected.dtype.kind == "f":
        if expected.dtype == np.float32:
            finite = np.abs(expected[np.isfinite(expected)])
            scale = max(1.0, float(finite.max(initial=0.0)))
            np.testing.assert_allclose(
                got, expected, rtol=F32_RTOL, atol=F32_RTOL * scale, err_msg=msg
            )
        else:
            np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol, err_msg=msg)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=msg, strict=True)


def check(
    model,
    est,
    X_new: np.ndarray,
    context: str,
    dtypes: Sequence[Any] = (np.float64, np.float32, np.int64),
    methods: Sequence[str] = METHODS,
    rtol: float = RTOL,
    big: bool = True,
) -> None:
    """Every method, every input type, a batch, one row and (big) 3000 rows."""
    for method in methods:
        has = hasattr(est, method)
        assert hasattr(model, method) == has, f"{method}: sklearn has it: {has}: {context}"
    rng = np.random.RandomState(1)
    tall = X_new[rng.randint(0, len(X_new), 3000)] * (1 + 1e-3 * rng.randn(3000, 1))
    for dtype in dtypes:
        X = np.asarray(X_new).astype(dtype)
        batches = [X, X[:1]] + ([tall.astype(dtype)] if big else [])
        for rows in batches:
            for method in methods:
                if not hasattr(est, method):
                    continue
                expected = quietly(getattr(est, method), rows)
                got = quietly(getattr(model, method), rows)
                assert_same(
                    got,
                    expected,
                    f"{method}: {context} | {np.dtype(dtype)} | rows={len(rows)}",
                    rtol,
                )


def check_refuses_like(model, est, X: np.ndarray, method: str, context: str) -> None:
    """X is refused by both with a ValueError."""
    with pytest.raises(ValueError):
        quietly(getattr(est, method), X)
    with pytest.raises(ValueError):
        quietly(getattr(model, method), X)
