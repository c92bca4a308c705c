"""What every differential (parity) suite checks, written once.

scikit-learn is the oracle.  A check calls a method of the fitted estimator
and the same method of the ``mlfast.Model`` made from it, and compares:

* labels and other non-float answers exactly, with the same dtype;
* floats with the same shape and dtype, within ``rtol=atol=1e-12``, or bit
  for bit (``exact=True``; NaN equals NaN), or -- for float32 answers of a
  suite that asks for it (linear models: scikit-learn's float32 BLAS product
  and mlfast's kernel may sum in another order) -- within ``float32_rtol``
  relative to the answer's scale;
* multi-output answers (lists of arrays) output by output;
* a method scikit-learn lacks must be absent from the Model too, and calling
  it an ``AttributeError``.

Every failure message says where: ``where(estimator=..., variant=...)``
joins the parts a suite passes (bottleneck's style), e.g.::

    predict_proba: estimator=LogisticRegression | options=solver='saga' |
    labels=str/3 | variant=joblib | layout=fortran | rows=7 | input=ndarray ...

The second half of the module makes the data the suites fit on: generated
classification and regression rows with fresh rows to predict (plus a few
far outside the training range and a row of zeros), label kinds, missing
values, and the histogram-boosting and isolation-forest data of the tree
suite.  Every generator takes its seed: the same call gives the same rows.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression

import mlfast
from support.variants import describe_input

#: every method a Model may have, in the order the checks call them
METHODS: Tuple[str, ...] = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "score_samples",
    "transform",
)
RTOL = ATOL = 1e-12
#: float32 answers of linear models (``float32_rtol=F32_RTOL``): one float32
#: rounding is ~6e-8 relative; 1e-6 relative to the answer's scale leaves room
#: for a few of them (another summation order) and nothing more
F32_RTOL = 1e-6
#: the methods whose answers go through exp: numpy's vectorised exp and the C
#: library's may differ in the last bit, so ``exact="but exp"`` checks these
#: within 1e-12 and every other method bit for bit
THROUGH_EXP = ("predict_proba", "predict_log_proba")
N_FEATURES = 6


# -- messages --------------------------------------------------------------------------


def where(**parts: Any) -> str:
    """'estimator=... | options=... | variant=...' for failure messages
    (parts that are None are left out)."""
    return " | ".join(f"{k}={v}" for k, v in parts.items() if v is not None)


def opts(**kw: Any) -> str:
    """Keyword arguments as a failure message shows them: "C=0.5, solver='saga'"."""
    return ", ".join(f"{k}={v!r}" for k, v in kw.items()) or "defaults"


# -- calling scikit-learn and mlfast ---------------------------------------------------------


def fit(est: Any, X: Any, y: Any = None, **kw: Any) -> Any:
    """Fits quietly: convergence, deprecation and data-conversion warnings of
    scikit-learn's fit are not under test.  Returns the estimator."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y, **kw) if y is not None else est.fit(X, **kw)


def quietly(fn: Any, *args: Any, **kw: Any) -> Any:
    """Calls fn without warnings: divide-by-zero in log(proba), overflow in
    scikit-learn's float32 cast, feature names (the warnings have their own
    tests, which compare mlfast's with scikit-learn's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return fn(*args, **kw)


def dense(a: Any) -> Any:
    """scikit-learn's sparse answers (RandomTreesEmbedding, OneHotEncoder) as
    the dense array mlfast returns."""
    return a.toarray() if hasattr(a, "toarray") else a


# -- comparing answers -------------------------------------------------------------------------


def assert_same_output(
    got: Any,
    expected: Any,
    msg: str,
    exact: bool = False,
    rtol: float = RTOL,
    atol: float = ATOL,
    float32_rtol: Optional[float] = None,
) -> None:
    """mlfast's answer ``got`` is scikit-learn's ``expected``: a list output by
    output (multi-output predict_proba, classes_); an array with the same
    type, shape and dtype, labels equal, floats within rtol/atol, or bit for
    bit when ``exact``.  ``float32_rtol``: float32 answers are compared at
    that precision, relative to the answer's scale (see F32_RTOL); None
    compares them like float64."""
    if isinstance(expected, list):
        assert isinstance(got, list), f"mlfast returned {type(got).__name__}, not a list: {msg}"
        assert len(got) == len(expected), f"{len(got)} outputs != sklearn's {len(expected)}: {msg}"
        for k, (g, e) in enumerate(zip(got, expected)):
            assert_same_output(g, e, f"output {k}: {msg}", exact, rtol, atol, float32_rtol)
        return
    assert isinstance(got, np.ndarray), f"mlfast returned {type(got).__name__}: {msg}"
    assert got.shape == expected.shape, f"shape {got.shape} != sklearn's {expected.shape}: {msg}"
    assert got.dtype == expected.dtype, f"dtype {got.dtype} != sklearn's {expected.dtype}: {msg}"
    if expected.dtype.kind != "f" or exact:
        np.testing.assert_array_equal(got, expected, err_msg=msg, strict=True)
    elif expected.dtype == np.float32 and float32_rtol is not None:
        finite = np.abs(expected[np.isfinite(expected)])
        scale = max(1.0, float(finite.max(initial=0.0)))
        np.testing.assert_allclose(
            got, expected, rtol=float32_rtol, atol=float32_rtol * scale, err_msg=msg
        )
    else:
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=msg)


def _bitwise(exact: Any, method: str) -> bool:
    """exact: True, False, or "but exp" (every method but THROUGH_EXP)."""
    if exact not in (True, False, "but exp"):
        raise ValueError(f"exact={exact!r}: expected True, False or 'but exp'")
    return exact is True or (exact == "but exp" and method not in THROUGH_EXP)


def check_methods(
    model: Any,
    est: Any,
    X_fast: Any,
    X_ref: Any = None,
    context: str = "",
    absent: bool = True,
    exact: Any = False,
    **tolerance: Any,
) -> None:
    """Every method of METHODS: the Model has exactly the methods scikit-learn
    has, and gives the same answers on ``X_fast`` as scikit-learn on
    ``X_ref`` (default: the same input).

    The methods scikit-learn lacks are checked last (check_absent_methods),
    so that a method mlfast has in excess does not hide a wrong answer;
    ``absent=False`` leaves them out: a test that checks several batches
    checks them once, last.  ``exact``: True, False or "but exp" (see
    THROUGH_EXP).  ``tolerance``: rtol, atol, float32_rtol of
    assert_same_output."""
    X_ref = X_fast if X_ref is None else X_ref
    context = f"{context} | input={describe_input(X_fast)}"
    for method in METHODS:
        if hasattr(est, method):
            assert hasattr(model, method), f"mlfast lacks {method}, sklearn has it: {context}"
            expected = dense(quietly(getattr(est, method), X_ref))
            got = quietly(getattr(model, method), X_fast)
            assert_same_output(
                got, expected, f"{method}: {context}", exact=_bitwise(exact, method), **tolerance
            )
    if absent:
        check_absent_methods(model, est, X_fast, context)


def check_absent_methods(model: Any, est: Any, X_fast: Any, context: str = "") -> None:
    """A method scikit-learn lacks is absent from the Model, and calling it
    raises AttributeError."""
    for method in METHODS:
        if not hasattr(est, method):
            assert not hasattr(model, method), (
                f"mlfast has {method} but sklearn does not: {context}"
            )
            with pytest.raises(AttributeError):
                getattr(model, method)(X_fast)


def check_same_or_same_error(
    model: Any, est: Any, X_fast: Any, X_ref: Any = None, context: str = "", **tolerance: Any
) -> None:
    """Where scikit-learn answers, the same answers; where it raises, the
    same exception type and text."""
    X_ref = X_fast if X_ref is None else X_ref
    for method in METHODS:
        if not hasattr(est, method):
            continue
        ctx = f"{method}: {context} | input={describe_input(X_fast)}"
        try:
            expected = dense(quietly(getattr(est, method), X_ref))
        except Exception as exc:  # noqa: BLE001 - any sklearn error is the oracle
            try:
                got = quietly(getattr(model, method), X_fast)
            except Exception as mine:  # noqa: BLE001
                assert isinstance(mine, type(exc)), (
                    f"{type(mine).__name__} != sklearn's {type(exc).__name__}: {ctx}\n"
                    f"mlfast:  {str(mine)!r}\nsklearn: {str(exc)!r}"
                )
                assert str(mine) == str(exc), (
                    f"message differs: {ctx}\nmlfast:  {str(mine)!r}\nsklearn: {str(exc)!r}"
                )
            else:
                pytest.fail(
                    f"mlfast answered where sklearn raised "
                    f"{type(exc).__name__}({str(exc)!r}): {ctx}\n"
                    f"mlfast's answer: {got!r}"[:2000]
                )
        else:
            try:
                got = quietly(getattr(model, method), X_fast)
            except Exception as exc:  # noqa: BLE001
                pytest.fail(
                    f"mlfast raised {type(exc).__name__}({str(exc)!r}) where sklearn answers: {ctx}"
                )
            assert_same_output(got, expected, f"sklearn accepts it: {ctx}", **tolerance)


def check_across_threads(
    model: Any,
    est: Any,
    rows: Any,
    methods: Any,
    context: str = "",
    threads: Tuple[int, ...] = (1, 4),
    **tolerance: Any,
) -> None:
    """A large batch, split across mlfast's threads: with the current number
    of threads and each of ``threads``, every method gives the same answer
    bit for bit, and that answer is scikit-learn's."""
    before = mlfast.get_num_threads()
    try:
        answers: dict = {}
        for n in (before, *threads):
            mlfast.set_num_threads(n)
            ctx = where(context=context or None, input=describe_input(rows), threads=n)
            for method in methods:
                got = getattr(model, method)(rows)
                if method in answers:
                    np.testing.assert_array_equal(
                        got, answers[method], strict=True, err_msg=f"{method} threads: {ctx}"
                    )
                else:
                    answers[method] = got
                    assert_same_output(
                        got,
                        dense(quietly(getattr(est, method), rows)),
                        f"{method}: {ctx}",
                        **tolerance,
                    )
    finally:
        mlfast.set_num_threads(before)


def final_estimator(est: Any) -> Any:
    """The last step of a Pipeline (of nested Pipelines), else est itself."""
    from sklearn.pipeline import Pipeline

    while isinstance(est, Pipeline):
        est = est.steps[-1][1]
    return est


def check_attributes(model: Any, est: Any, context: str = "") -> None:
    """n_features_in_, feature_names_in_ and classes_ as scikit-learn's.

    classes_: a Model has it exactly when scikit-learn's estimator has it
    (a Pipeline has it when its last step has it) and that estimator is a
    classifier: an outlier detector (IsolationForest) predicts -1 and 1
    without classes_ whatever its scikit-learn says; a list of arrays for
    multi-output classifiers."""
    from sklearn.base import is_outlier_detector

    assert model.n_features_in_ == est.n_features_in_, (
        f"n_features_in_ {model.n_features_in_} != {est.n_features_in_}: {context}"
    )
    if hasattr(est, "feature_names_in_"):
        assert hasattr(model, "feature_names_in_"), f"no feature_names_in_: {context}"
        assert_same_output(
            np.asarray(model.feature_names_in_),
            est.feature_names_in_,
            f"feature_names_in_: {context}",
        )
    else:
        assert not hasattr(model, "feature_names_in_"), f"feature_names_in_: {context}"
    if hasattr(est, "classes_") and not is_outlier_detector(final_estimator(est)):
        assert hasattr(model, "classes_"), f"no classes_: {context}"
        assert_same_output(model.classes_, est.classes_, f"classes_: {context}")
    else:
        assert not hasattr(model, "classes_"), f"classes_ on a non-classifier: {context}"


# -- cases ----------------------------------------------------------------------------------


@dataclass
class Case:
    """An estimator to fit, with the options to print when it fails."""

    name: str
    make: Callable[[], Any]
    options: str = "defaults"
    sample_weight: bool = False
    n_classes: tuple = (2, 3)
    data: Dict[str, Any] = field(default_factory=dict)  # the data generator's options
    check: Optional[Callable[[Any], None]] = None  # asserts about the fitted estimator

    @property
    def id(self) -> str:
        weights = ", sample_weight" if self.sample_weight else ""
        data = f"; data: {opts(**self.data)}" if self.data else ""
        return f"{self.name}[{self.options}{weights}{data}]"


def sample_weights(n: int) -> np.ndarray:
    return np.random.default_rng(7).uniform(0.1, 3.0, n)


def fit_case(case: Case, X: Any, y: Any) -> Any:
    """case.make() fitted quietly (with sample_weights when the case says),
    then case.check of the fitted estimator."""
    kw = {"sample_weight": sample_weights(len(X))} if case.sample_weight else {}
    est = fit(quietly(case.make), X, y, **kw)
    if case.check is not None:
        case.check(est)
    return est


# -- data ----------------------------------------------------------------------------------


def add_extreme_rows(X: np.ndarray, factor: float = 30.0) -> np.ndarray:
    """Fresh rows plus a few far outside the training range (saturated
    probabilities, clipped scalers, every tree's outermost leaves) and a row
    of zeros."""
    return np.vstack([X, factor * X[:3], -factor * X[3:5], np.zeros((1, X.shape[1]))])


def with_missing(X: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """A copy of X with about ``rate`` of its values NaN."""
    X = X.copy()
    X[np.random.default_rng(seed).random(X.shape) < rate] = np.nan
    return X


LABEL_NAMES = np.array(["no", "yes", "maybe", "unknown"])  # widths 2..7: '<U7'


def relabel(y: np.ndarray, kind: str) -> np.ndarray:
    """Integer labels 0..k-1 as the label kind under test."""
    if kind == "int":
        return y.astype(np.int64)
    if kind == "int32":
        return y.astype(np.int32)
    if kind == "negative-int":
        return (2 * y - 1).astype(np.int64)  # -1, 1, 3, ...
    if kind == "float":
        return y * 2.0 - 1.0  # -1.0, 1.0, 3.0 (float64 classes_)
    if kind == "str":
        return LABEL_NAMES[y]  # '<U7' (np.str_ items)
    if kind == "object":
        return np.array([str(v) for v in LABEL_NAMES[y]], dtype=object)
    if kind == "bool":
        assert y.max() <= 1
        return y.astype(bool)
    raise ValueError(kind)


def classification_data(
    n_classes: int = 2,
    labels: str = "int",
    seed: int = 0,
    n_fit: int = 150,
    n_new: int = 40,
    flip_y: float = 0.01,
    missing: float = 0.0,
    extreme: float = 30.0,
):
    """X, y to fit and fresh rows (with add_extreme_rows(factor=extreme)).
    ``flip_y``: the share of noisy labels (more makes fully grown trees
    deeper); ``missing``: the share of NaN in both X and the fresh rows."""
    X, y = make_classification(
        n_samples=n_fit + n_new,
        n_features=N_FEATURES,
        n_informative=4,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        class_sep=1.0,
        flip_y=flip_y,
        random_state=seed,
    )
    return _split(X, relabel(y, labels), n_fit, extreme, missing, seed)


def regression_data(
    n_targets: int = 1,
    seed: int = 0,
    n_fit: int = 120,
    n_new: int = 40,
    positive: bool = False,
    missing: float = 0.0,
    extreme: float = 30.0,
):
    """X, y to fit and fresh rows, as classification_data; ``positive``: y > 0
    (poisson, gamma)."""
    X, y = make_regression(
        n_samples=n_fit + n_new,
        n_features=N_FEATURES,
        n_informative=4,
        n_targets=n_targets,
        noise=5.0,
        bias=3.0,
        random_state=seed,
    )
    if positive:
        y = np.exp(y / (2 * np.std(y)))
    return _split(X, y, n_fit, extreme, missing, seed)


def _split(X: np.ndarray, y: np.ndarray, n_fit: int, extreme: float, missing: float, seed: int):
    """The first n_fit rows to fit; the rest, with extreme rows, to predict."""
    X_new = add_extreme_rows(X[n_fit:], extreme)
    X = X[:n_fit]
    if missing:
        X = with_missing(X, missing, seed)
        X_new = with_missing(X_new, missing, seed + 1)
    return X, y[:n_fit], X_new


#: categorical columns of hgb_data: col 0 has categories 0..7, col 1 has
#: negative and large ones (scikit-learn >= 1.4 ordinal-encodes them)
CAT_COLUMNS = (0, 1)
CAT0_VALUES = np.arange(8.0)
CAT1_VALUES = np.array([-3.0, -1.0, 2.0, 5.0, 300.0, 1000.0])


def hgb_data(
    task: str = "binary",
    seed: int = 0,
    categorical: bool = False,
    missing: float = 0.0,
    n_fit: int = 400,
    n_new: int = 60,
):
    """Data for histogram boosting: enough rows for min_samples_leaf=20,
    optionally two categorical columns (CAT_COLUMNS) and NaN anywhere.
    ``task``: binary, multiclass, positive (y > 0) or regression."""
    rng = np.random.default_rng(seed)
    n = n_fit + n_new
    X = rng.normal(size=(n, N_FEATURES))
    score = X[:, 2] + 0.7 * X[:, 3] - 0.5 * X[:, 4] ** 2
    if categorical:
        X[:, 0] = rng.choice(CAT0_VALUES, n)
        X[:, 1] = rng.choice(CAT1_VALUES, n)
        score += np.where(np.isin(X[:, 0], [1, 4, 6]), 1.5, -0.5)
        score += np.where(X[:, 1] > 3, 1.0, -1.0)
    score += rng.normal(0, 0.5, n)
    if task == "binary":
        y = (score > np.median(score)).astype(np.int64)
    elif task == "multiclass":
        y = np.digitize(score, np.quantile(score, [0.33, 0.66])).astype(np.int64)
    elif task == "positive":
        y = np.exp(score / (2 * np.std(score)))
    else:
        y = 3.0 * score + 1.0
    if missing:
        X = with_missing(X, missing, seed)
    X_new = X[n_fit:].copy()
    X_new[:3] *= 40.0 if not categorical else 1.0
    return X[:n_fit], y[:n_fit], X_new


def isolation_data(seed: int = 50, n_fit: int = 300, missing: float = 0.0):
    """Rows for an outlier detector (ten of them outliers) and fresh rows."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_fit, N_FEATURES))
    X[:10] += rng.choice([-6.0, 6.0], size=(10, N_FEATURES))  # outliers
    X_new = add_extreme_rows(rng.normal(size=(40, N_FEATURES)), factor=5.0)
    if missing:
        X_new = with_missing(X_new, missing, seed)
    return X, X_new
