"""Differential tests: linear models, scalers, SimpleImputer and pipelines.

scikit-learn is the oracle.  Every check fits a real estimator on generated
data (fixed seeds), saves it, loads it with mlfast and compares every method
scikit-learn has (predict, predict_proba, predict_log_proba,
decision_function, transform) on fresh rows: labels exactly and with the same
dtype, floats to rtol=atol=1e-12 with the same shape and dtype.  Methods
scikit-learn lacks must raise AttributeError in mlfast too.

A failure names the estimator, its options, the file variant, the input
layout and the batch size (bottleneck's style), e.g.::

    predict_proba: estimator=LogisticRegression | options=solver='saga' |
    labels=str/3 | variant=joblib | layout=fortran | rows=7

The checks come from ``tests/support/parity.py``, file variants and input
layouts from ``tests/support/variants.py``; every file variant, pickling,
inspect and repr run on this family's representatives in
``tests/test_parity_shared.py``.
"""

from __future__ import annotations

import concurrent.futures
import warnings
from functools import partial
from typing import Any, Callable, Dict

import numpy as np
import pandas as pd
import pytest
from sklearn import linear_model as lm
from sklearn import svm
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from support import parity
from support.parity import (
    F32_RTOL,
    METHODS,
    Case,
    add_extreme_rows,
    check_across_threads,
    check_attributes,
    classification_data,
    fit,
    fit_case,
    opts,
    quietly,
    regression_data,
    where,
)
from support.representatives import Representative
from support.variants import (
    LAYOUTS,
    describe_input,
    load_variant,
    make_layout,
)

import mlfast

N_FEATURES = parity.N_FEATURES

#: float32 answers (a float32-fitted model fed float32 rows, or a transformer
#: fed float32 rows) are compared at float32 precision: scikit-learn's float32
#: BLAS product and mlfast's kernel may sum in a different order (F32_RTOL)
check_methods = partial(parity.check_methods, float32_rtol=F32_RTOL)
assert_same_output = partial(parity.assert_same_output, float32_rtol=F32_RTOL)
check_same_or_same_error = partial(parity.check_same_or_same_error, float32_rtol=F32_RTOL)


# -- regressors -------------------------------------------------------------------

REGRESSOR_CASES = [
    Case("LinearRegression", lambda: lm.LinearRegression()),
    Case(
        "LinearRegression", lambda: lm.LinearRegression(fit_intercept=False), "fit_intercept=False"
    ),
    Case("LinearRegression", lambda: lm.LinearRegression(positive=True), "positive=True"),
    Case("LinearRegression", lambda: lm.LinearRegression(), sample_weight=True),
    Case("Ridge", lambda: lm.Ridge(alpha=2.0), "alpha=2.0"),
    Case(
        "Ridge",
        lambda: lm.Ridge(solver="svd", fit_intercept=False),
        "solver='svd', fit_intercept=False",
    ),
    Case("Ridge", lambda: lm.Ridge(solver="sag", random_state=0), "solver='sag'"),
    Case("Ridge", lambda: lm.Ridge(), sample_weight=True),
    Case("RidgeCV", lambda: lm.RidgeCV(alphas=(0.1, 1.0, 10.0)), "alphas=(0.1, 1, 10)"),
    Case("Lasso", lambda: lm.Lasso(alpha=0.5), "alpha=0.5"),
    Case("LassoCV", lambda: lm.LassoCV(cv=3, alphas=10), "cv=3, alphas=10"),
    Case("ElasticNet", lambda: lm.ElasticNet(alpha=0.5, l1_ratio=0.3), "alpha=0.5, l1_ratio=0.3"),
    Case(
        "ElasticNetCV",
        lambda: lm.ElasticNetCV(cv=3, l1_ratio=(0.2, 0.8), alphas=8),
        "cv=3, l1_ratio=(0.2, 0.8)",
    ),
    Case("SGDRegressor", lambda: lm.SGDRegressor(random_state=0), "loss='squared_error'"),
    Case("SGDRegressor", lambda: lm.SGDRegressor(loss="huber", random_state=0), "loss='huber'"),
    Case(
        "SGDRegressor",
        lambda: lm.SGDRegressor(loss="epsilon_insensitive", random_state=0),
        "loss='epsilon_insensitive'",
    ),
    Case(
        "SGDRegressor",
        lambda: lm.SGDRegressor(loss="squared_epsilon_insensitive", random_state=0),
        "loss='squared_epsilon_insensitive'",
    ),
    Case(
        "SGDRegressor",
        lambda: lm.SGDRegressor(average=True, penalty="elasticnet", random_state=0),
        "average=True, penalty='elasticnet'",
    ),
    Case("LinearSVR", lambda: svm.LinearSVR(random_state=0, max_iter=5000), "defaults"),
    Case(
        "LinearSVR",
        lambda: svm.LinearSVR(loss="squared_epsilon_insensitive", dual=False),
        "loss='squared_epsilon_insensitive', dual=False",
    ),
    Case("HuberRegressor", lambda: lm.HuberRegressor(max_iter=500)),
    Case("Lars", lambda: lm.Lars()),
    Case("LarsCV", lambda: lm.LarsCV(cv=3)),
    Case("LassoLars", lambda: lm.LassoLars(alpha=0.1), "alpha=0.1"),
    Case("LassoLarsCV", lambda: lm.LassoLarsCV(cv=3)),
    Case("LassoLarsIC", lambda: lm.LassoLarsIC(criterion="bic"), "criterion='bic'"),
    Case(
        "OrthogonalMatchingPursuit",
        lambda: lm.OrthogonalMatchingPursuit(n_nonzero_coefs=3),
        "n_nonzero_coefs=3",
    ),
    Case("OrthogonalMatchingPursuitCV", lambda: lm.OrthogonalMatchingPursuitCV(cv=3)),
    Case("BayesianRidge", lambda: lm.BayesianRidge()),
    Case("ARDRegression", lambda: lm.ARDRegression()),
    Case(
        "QuantileRegressor",
        lambda: lm.QuantileRegressor(quantile=0.7, alpha=0.01),
        "quantile=0.7, alpha=0.01",
    ),
    Case(
        "TheilSenRegressor",
        lambda: lm.TheilSenRegressor(random_state=0, max_subpopulation=200),
        "max_subpopulation=200",
    ),
    Case("PassiveAggressiveRegressor", lambda: lm.PassiveAggressiveRegressor(random_state=0)),
]


@pytest.mark.parametrize("case", REGRESSOR_CASES, ids=lambda c: c.id)
def test_regressor(case, tmp_path):
    X, y, X_new = regression_data()
    est = fit_case(case, X, y)
    model = load_variant(est, "joblib", tmp_path)
    ctx = where(estimator=case.name, options=case.options, variant="joblib")
    check_attributes(model, est, ctx)
    for rows in (X_new, X_new[:1]):
        check_methods(model, est, rows, context=f"{ctx} | layout=c-f64 | rows={len(rows)}")


def test_every_registered_regressor_is_covered():
    from mlfast._builders.linear import REGRESSORS

    multi_task = {n for n in REGRESSORS if n.startswith("MultiTask")}
    covered = {c.name for c in REGRESSOR_CASES} | {c.name for c in MULTIOUTPUT_CASES}
    missing = set(REGRESSORS) - covered
    assert not missing, f"REGRESSORS without a parity case: {sorted(missing)}"
    assert multi_task <= {c.name for c in MULTIOUTPUT_CASES}
    for name in REGRESSORS:
        assert hasattr(lm, name), f"{name} is not in sklearn.linear_model any more"


# -- multi-output regression --------------------------------------------------------

MULTIOUTPUT_CASES = [
    Case("LinearRegression", lambda: lm.LinearRegression()),
    Case("Ridge", lambda: lm.Ridge(alpha=0.5), "alpha=0.5"),
    Case("RidgeCV", lambda: lm.RidgeCV(alphas=(0.1, 1.0, 10.0)), "alphas=(0.1, 1, 10)"),
    Case("Lasso", lambda: lm.Lasso(alpha=0.3), "alpha=0.3"),
    Case("ElasticNet", lambda: lm.ElasticNet(alpha=0.3), "alpha=0.3"),
    Case("MultiTaskLasso", lambda: lm.MultiTaskLasso(alpha=0.3), "alpha=0.3"),
    Case("MultiTaskLassoCV", lambda: lm.MultiTaskLassoCV(cv=3, alphas=6), "cv=3"),
    Case(
        "MultiTaskElasticNet",
        lambda: lm.MultiTaskElasticNet(alpha=0.3, l1_ratio=0.4),
        "alpha=0.3, l1_ratio=0.4",
    ),
    Case("MultiTaskElasticNetCV", lambda: lm.MultiTaskElasticNetCV(cv=3, alphas=6), "cv=3"),
    Case("Lars", lambda: lm.Lars()),
    Case(
        "OrthogonalMatchingPursuit",
        lambda: lm.OrthogonalMatchingPursuit(n_nonzero_coefs=3),
        "n_nonzero_coefs=3",
    ),
]


@pytest.mark.parametrize("n_targets", [3, 1], ids=["y(n,3)", "y(n,1)"])
@pytest.mark.parametrize("case", MULTIOUTPUT_CASES, ids=lambda c: c.id)
def test_multioutput_regressor(case, n_targets, tmp_path):
    X, y, X_new = regression_data(n_targets=n_targets, seed=1)
    y = y.reshape(len(y), n_targets)  # y of shape (n, 1) stays 2-D
    est = fit_case(case, X, y)
    model = load_variant(est, "joblib", tmp_path)
    ctx = where(estimator=case.name, options=case.options, y=f"(n, {n_targets})", variant="joblib")
    check_attributes(model, est, ctx)
    for rows in (X_new, X_new[:1]):
        check_methods(model, est, rows, context=f"{ctx} | layout=c-f64 | rows={len(rows)}")


# -- classifiers --------------------------------------------------------------------


def _lr(**kw):
    return lambda: lm.LogisticRegression(**kw)


LR_OPTIONS = [
    dict(),
    dict(solver="liblinear"),
    dict(solver="liblinear", l1_ratio=1.0, C=0.5),  # l1
    dict(solver="liblinear", intercept_scaling=5.0),
    dict(solver="newton-cg"),
    dict(solver="newton-cholesky"),
    dict(solver="sag", max_iter=300, random_state=0),
    dict(solver="saga", max_iter=300, random_state=0),
    dict(solver="saga", l1_ratio=1.0, max_iter=300, random_state=0),  # l1
    dict(solver="saga", l1_ratio=0.5, max_iter=300, random_state=0),  # elasticnet
    dict(C=np.inf),  # no penalty
    dict(fit_intercept=False),
    dict(class_weight="balanced"),
    dict(C=0.05),
]

CLASSIFIER_CASES = [
    *[
        Case(
            "LogisticRegression",
            _lr(**kw),
            opts(**kw),
            n_classes=(2,) if kw.get("solver") == "liblinear" else (2, 3),
        )
        for kw in LR_OPTIONS
    ],
    Case("LogisticRegression", _lr(), sample_weight=True),
    Case("LogisticRegressionCV", lambda: lm.LogisticRegressionCV(Cs=3, cv=3), "Cs=3, cv=3"),
    *[
        Case(
            "SGDClassifier",
            (lambda loss=loss: lm.SGDClassifier(loss=loss, random_state=0)),
            f"loss={loss!r}",
        )
        for loss in (
            "hinge",
            "log_loss",
            "modified_huber",
            "squared_hinge",
            "perceptron",
            "squared_error",
            "huber",
            "epsilon_insensitive",
            "squared_epsilon_insensitive",
        )
    ],
    Case(
        "SGDClassifier",
        lambda: lm.SGDClassifier(
            loss="log_loss", average=True, class_weight="balanced", random_state=0
        ),
        "loss='log_loss', average=True, class_weight='balanced'",
    ),
    Case("Perceptron", lambda: lm.Perceptron(random_state=0)),
    Case("RidgeClassifier", lambda: lm.RidgeClassifier()),
    Case(
        "RidgeClassifier",
        lambda: lm.RidgeClassifier(class_weight="balanced"),
        "class_weight='balanced'",
        sample_weight=True,
    ),
    Case("RidgeClassifierCV", lambda: lm.RidgeClassifierCV(alphas=(0.1, 1.0, 10.0))),
    Case("LinearSVC", lambda: svm.LinearSVC(random_state=0)),
    Case(
        "LinearSVC",
        lambda: svm.LinearSVC(loss="hinge", dual=True, random_state=0, max_iter=5000),
        "loss='hinge', dual=True",
    ),
    Case(
        "LinearSVC",
        lambda: svm.LinearSVC(multi_class="crammer_singer", random_state=0),
        "multi_class='crammer_singer'",
        n_classes=(3,),
    ),
    Case("PassiveAggressiveClassifier", lambda: lm.PassiveAggressiveClassifier(random_state=0)),
]

_CLASSIFIER_PARAMS = [
    pytest.param(case, k, id=f"{case.id}-{k}classes")
    for case in CLASSIFIER_CASES
    for k in case.n_classes
]


@pytest.mark.parametrize("case, n_classes", _CLASSIFIER_PARAMS)
def test_classifier(case, n_classes, tmp_path):
    X, y, X_new = classification_data(n_classes, "int", seed=n_classes)
    est = fit_case(case, X, y)
    model = load_variant(est, "joblib", tmp_path)
    ctx = where(
        estimator=case.name, options=case.options, labels=f"int/{n_classes}", variant="joblib"
    )
    check_attributes(model, est, ctx)
    for rows in (X_new, X_new[:1], X_new[:4]):
        check_methods(model, est, rows, context=f"{ctx} | layout=c-f64 | rows={len(rows)}")


LABEL_CASES = [
    Case("LogisticRegression", _lr()),
    Case("LogisticRegression", _lr(solver="liblinear"), "solver='liblinear'", n_classes=(2,)),
    Case(
        "SGDClassifier",
        lambda: lm.SGDClassifier(loss="modified_huber", random_state=0),
        "loss='modified_huber'",
    ),
    Case("SGDClassifier", lambda: lm.SGDClassifier(loss="hinge", random_state=0), "loss='hinge'"),
    Case("Perceptron", lambda: lm.Perceptron(random_state=0)),
    Case("RidgeClassifier", lambda: lm.RidgeClassifier()),
    Case("RidgeClassifierCV", lambda: lm.RidgeClassifierCV()),
    Case("LinearSVC", lambda: svm.LinearSVC(random_state=0)),
    Case("LogisticRegressionCV", lambda: lm.LogisticRegressionCV(Cs=2, cv=2), "Cs=2, cv=2"),
]
LABEL_KINDS = ("int", "int32", "negative-int", "float", "str", "object", "bool")

_LABEL_PARAMS = [
    pytest.param(case, kind, k, id=f"{case.id}-{kind}-{k}classes")
    for case in LABEL_CASES
    for kind in LABEL_KINDS
    for k in case.n_classes
    if not (kind == "bool" and k > 2)
    # LogisticRegressionCV is slow to fit: a few label kinds are enough
    and not (case.name == "LogisticRegressionCV" and kind not in ("str", "object", "float"))
]


@pytest.mark.parametrize("case, labels, n_classes", _LABEL_PARAMS)
def test_classifier_labels(case, labels, n_classes, tmp_path):
    X, y, X_new = classification_data(n_classes, labels, seed=10 + n_classes)
    est = fit_case(case, X, y)
    model = load_variant(est, "joblib", tmp_path)
    ctx = where(
        estimator=case.name,
        options=case.options,
        labels=f"{labels}/{n_classes} y.dtype={y.dtype}",
        variant="joblib",
    )
    check_attributes(model, est, ctx)
    check_methods(model, est, X_new, context=f"{ctx} | layout=c-f64 | rows={len(X_new)}")


SATURATING = [
    Case("LogisticRegression", _lr()),
    Case("LogisticRegression", _lr(solver="liblinear"), "solver='liblinear'", n_classes=(2,)),
    Case(
        "SGDClassifier",
        lambda: lm.SGDClassifier(loss="log_loss", random_state=0),
        "loss='log_loss'",
    ),
    Case(
        "SGDClassifier",
        lambda: lm.SGDClassifier(loss="modified_huber", random_state=0),
        "loss='modified_huber'",
    ),
]


@pytest.mark.parametrize(
    "case, n_classes",
    [pytest.param(c, k, id=f"{c.id}-{k}classes") for c in SATURATING for k in c.n_classes],
)
def test_saturated_probabilities(case, n_classes, tmp_path):
    """Rows far from the data: probabilities of exactly 0 and 1 and their
    logarithms (-inf where sklearn's log(proba) gives it) must match too."""
    X, y, X_new = classification_data(n_classes, "int", seed=20 + n_classes)
    est = fit_case(case, X, y)
    model = load_variant(est, "joblib", tmp_path)
    ctx = where(
        estimator=case.name,
        options=case.options,
        labels=f"int/{n_classes}",
        variant="joblib",
        layout="c-f64",
    )
    for factor in (40.0, 1000.0):
        rows = factor * X_new[:8]
        check_methods(model, est, rows, context=f"{ctx} | rows={factor:g} * X[:8]")


# -- transformers -------------------------------------------------------------------


def transformer_data(
    seed: int = 3, missing: Any = np.nan, empty_column: bool = False, integer: bool = False
):
    """Rows with a constant column, some missing values and (optionally) a
    column entirely missing at fit time; fresh rows have missing values in
    other places, including that column."""
    rng = np.random.default_rng(seed)
    X = rng.normal(2.0, 3.0, size=(160, N_FEATURES))
    X[:, 2] = 4.0  # constant column: scale_ of 1
    X[:, 4] = rng.integers(0, 3, size=160)  # repeated values: ties for modes
    if integer:
        X = np.rint(X)
    mask = rng.random(X.shape) < 0.1
    X[mask] = missing
    if empty_column:
        X[:120, 5] = missing
    X_fit, X_new = X[:120], X[120:].copy()
    X_new[0, :] = missing  # a row entirely missing
    return X_fit, add_extreme_rows(X_new, factor=5.0)


TRANSFORMER_CASES = [
    Case("StandardScaler", lambda: StandardScaler()),
    Case("StandardScaler", lambda: StandardScaler(with_mean=False), "with_mean=False"),
    Case("StandardScaler", lambda: StandardScaler(with_std=False), "with_std=False"),
    Case(
        "StandardScaler",
        lambda: StandardScaler(with_mean=False, with_std=False),
        "with_mean=False, with_std=False",
    ),
    Case("StandardScaler", lambda: StandardScaler(), sample_weight=True),
    Case("MinMaxScaler", lambda: MinMaxScaler()),
    Case("MinMaxScaler", lambda: MinMaxScaler(feature_range=(-2.0, 3.0)), "feature_range=(-2, 3)"),
    Case("MinMaxScaler", lambda: MinMaxScaler(clip=True), "clip=True"),
    Case(
        "MinMaxScaler",
        lambda: MinMaxScaler(feature_range=(5, 10), clip=True),
        "feature_range=(5, 10), clip=True",
    ),
    Case("MaxAbsScaler", lambda: MaxAbsScaler()),
    Case("MaxAbsScaler", lambda: MaxAbsScaler(clip=True), "clip=True"),
    Case("RobustScaler", lambda: RobustScaler()),
    Case("RobustScaler", lambda: RobustScaler(with_centering=False), "with_centering=False"),
    Case("RobustScaler", lambda: RobustScaler(with_scaling=False), "with_scaling=False"),
    Case(
        "RobustScaler",
        lambda: RobustScaler(with_centering=False, with_scaling=False),
        "with_centering=False, with_scaling=False",
    ),
    Case(
        "RobustScaler", lambda: RobustScaler(quantile_range=(10.0, 90.0)), "quantile_range=(10, 90)"
    ),
    Case("RobustScaler", lambda: RobustScaler(unit_variance=True), "unit_variance=True"),
]

IMPUTER_CASES = [
    *[
        Case("SimpleImputer", (lambda s=s: SimpleImputer(strategy=s)), f"strategy={s!r}")
        for s in ("mean", "median", "most_frequent", "constant")
    ],
    Case(
        "SimpleImputer",
        lambda: SimpleImputer(strategy="constant", fill_value=7.5),
        "strategy='constant', fill_value=7.5",
    ),
    Case("SimpleImputer", lambda: SimpleImputer(add_indicator=True), "add_indicator=True"),
    Case(
        "SimpleImputer",
        lambda: SimpleImputer(strategy="median", add_indicator=True),
        "strategy='median', add_indicator=True",
    ),
]

# (missing value, empty column at fit time, keep_empty_features)
IMPUTER_DATA = [
    pytest.param(np.nan, False, False, id="nan"),
    pytest.param(np.nan, True, False, id="nan-empty-column"),
    pytest.param(np.nan, True, True, id="nan-empty-column-keep_empty_features"),
    pytest.param(-1.0, False, False, id="sentinel-1"),
    pytest.param(-1.0, True, False, id="sentinel-1-empty-column"),
]


@pytest.mark.parametrize("case", TRANSFORMER_CASES, ids=lambda c: c.id)
def test_scaler(case, tmp_path):
    X, X_new = transformer_data()
    est = fit_case(case, X, None)
    model = load_variant(est, "joblib", tmp_path)
    ctx = where(estimator=case.name, options=case.options, variant="joblib")
    check_attributes(model, est, ctx)
    for layout in ("c-f64", "f32", "int64"):
        lay = make_layout(np.nan_to_num(X_new) if layout == "int64" else X_new, layout)
        check_methods(
            model,
            est,
            lay.fast,
            lay.reference,
            context=f"{ctx} | layout={layout} | rows={len(X_new)}",
        )


@pytest.mark.parametrize("missing, empty_column, keep_empty", IMPUTER_DATA)
@pytest.mark.parametrize("case", IMPUTER_CASES, ids=lambda c: c.id)
def test_simple_imputer(case, missing, empty_column, keep_empty, tmp_path):
    X, X_new = transformer_data(
        missing=missing, empty_column=empty_column, integer=not np.isnan(missing)
    )
    est = case.make().set_params(missing_values=missing, keep_empty_features=keep_empty)
    est = fit(est, X)
    model = load_variant(est, "joblib", tmp_path)
    ctx = where(
        estimator=case.name,
        options=case.options,
        missing_values=missing,
        empty_column=empty_column,
        keep_empty_features=keep_empty,
        variant="joblib",
    )
    check_attributes(model, est, ctx)
    for layout in ("c-f64", "f32"):
        lay = make_layout(X_new, layout)
        check_methods(
            model,
            est,
            lay.fast,
            lay.reference,
            context=f"{ctx} | layout={layout} | rows={len(X_new)}",
        )


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
def test_simple_imputer_integer_data(strategy, tmp_path):
    """Integer data with a numeric sentinel, as in a table of counts: fitted
    and served on int64 arrays (scikit-learn keeps int dtype for
    most_frequent and constant)."""
    X, X_new = transformer_data(missing=-1.0, integer=True)
    X, X_new = X.astype(np.int64), np.rint(X_new).astype(np.int64)
    est = fit(SimpleImputer(missing_values=-1, strategy=strategy), X)
    ctx = where(
        estimator="SimpleImputer",
        options=f"missing_values=-1, strategy={strategy!r}",
        fit_dtype="int64",
        variant="joblib",
    )
    model = load_variant(est, "joblib", tmp_path)
    check_attributes(model, est, ctx)
    for layout in ("int64", "c-f64"):
        rows = X_new if layout == "int64" else X_new.astype(np.float64)
        check_methods(model, est, rows, context=f"{ctx} | layout={layout} | rows={len(rows)}")


# -- pipelines ----------------------------------------------------------------------


def _pipelines():
    """name -> (factory, data kind); data kind picks y and the rows."""
    return {
        "impute-scale-LR": (
            lambda: Pipeline(
                [
                    ("impute", SimpleImputer()),
                    ("scale", StandardScaler()),
                    ("clf", lm.LogisticRegression()),
                ]
            ),
            "clf-str-3",
        ),
        "minmax-Ridge": (lambda: Pipeline([("scale", MinMaxScaler()), ("reg", lm.Ridge())]), "reg"),
        "make_pipeline-passthrough": (
            lambda: make_pipeline(StandardScaler(), "passthrough", lm.LogisticRegression()),
            "clf-int-2",
        ),
        "None-step": (
            lambda: Pipeline(
                [
                    ("scale", RobustScaler()),
                    ("skip", None),
                    ("clf", lm.SGDClassifier(loss="log_loss", random_state=0)),
                ]
            ),
            "clf-object-3",
        ),
        "transformers-only": (
            lambda: make_pipeline(
                SimpleImputer(strategy="median", add_indicator=True),
                StandardScaler(),
                MinMaxScaler(feature_range=(-1, 1), clip=True),
            ),
            "none",
        ),
        "transformers-final-passthrough": (
            lambda: Pipeline(
                [("scale", StandardScaler()), ("maxabs", MaxAbsScaler()), ("final", "passthrough")]
            ),
            "none",
        ),
        "nested": (
            lambda: Pipeline(
                [
                    (
                        "pre",
                        Pipeline(
                            [
                                ("impute", SimpleImputer(strategy="most_frequent")),
                                ("scale", StandardScaler()),
                            ]
                        ),
                    ),
                    ("clf", lm.SGDClassifier(loss="modified_huber", random_state=0)),
                ]
            ),
            "clf-str-3",
        ),
        "nested-twice": (
            lambda: make_pipeline(
                make_pipeline(
                    make_pipeline(SimpleImputer(keep_empty_features=True)), RobustScaler()
                ),
                lm.LinearRegression(),
            ),
            "reg",
        ),
        "indicator-LR-binary": (
            lambda: make_pipeline(
                SimpleImputer(add_indicator=True),
                StandardScaler(),
                lm.LogisticRegression(solver="liblinear"),
            ),
            "clf-float-2",
        ),
        "scale-LinearSVC": (
            lambda: make_pipeline(StandardScaler(), MaxAbsScaler(), svm.LinearSVC(random_state=0)),
            "clf-int-3",
        ),
        "scale-ElasticNet-multioutput": (
            lambda: make_pipeline(StandardScaler(), lm.ElasticNet(alpha=0.1)),
            "reg-3",
        ),
    }


PIPELINES = _pipelines()


def pipeline_data(kind: str, seed: int = 5, nan: bool = True):
    """X (with NaN for imputing pipelines), y for ``kind`` and fresh rows."""
    if kind.startswith("clf"):
        _, labels, k = kind.split("-")
        X, y, X_new = classification_data(int(k), labels, seed=seed)
    else:
        n_targets = 3 if kind == "reg-3" else 1
        X, y, X_new = regression_data(n_targets=n_targets, seed=seed)
        if kind == "none":
            y = None
    if nan:
        rng = np.random.default_rng(seed)
        X = X.copy()
        X[rng.random(X.shape) < 0.08] = np.nan
        X[:, 3] = np.where(np.arange(len(X)) % 9 == 0, np.nan, X[:, 3])
        X_new = X_new.copy()
        X_new[rng.random(X_new.shape) < 0.08] = np.nan
    return X, y, X_new


def _imputes(name: str) -> bool:
    return name in (
        "impute-scale-LR",
        "transformers-only",
        "nested",
        "nested-twice",
        "indicator-LR-binary",
    )


def fit_pipeline(name: str, frame: bool = False):
    make, kind = PIPELINES[name]
    X, y, X_new = pipeline_data(kind, nan=_imputes(name))
    if frame:
        columns = [f"f{i}" for i in range(X.shape[1])]
        X = pd.DataFrame(X, columns=columns)
    return fit(make(), X, y), X_new


@pytest.mark.parametrize("frame", [False, True], ids=["ndarray", "DataFrame"])
@pytest.mark.parametrize("name", list(PIPELINES))
def test_pipeline(name, frame, tmp_path):
    est, X_new = fit_pipeline(name, frame)
    model = load_variant(est, "joblib", tmp_path)
    ctx = where(
        estimator=f"Pipeline:{name}",
        fitted_on="DataFrame" if frame else "ndarray",
        variant="joblib",
    )
    check_attributes(model, est, ctx)
    layout = "dataframe" if frame else "c-f64"
    columns = est.feature_names_in_ if frame else None
    for rows in (X_new, X_new[:1]):
        lay = make_layout(rows, layout, columns)
        check_methods(
            model,
            est,
            lay.fast,
            lay.reference,
            context=f"{ctx} | layout={layout} | rows={len(rows)}",
        )


@pytest.mark.parametrize("name", ["LogisticRegression", "Ridge", "StandardScaler", "SimpleImputer"])
def test_feature_names_in(name, tmp_path):
    """Estimators fitted on a DataFrame: feature_names_in_ (object dtype),
    answers on a DataFrame with the same columns."""
    X, y, X_new = classification_data(3, "str", seed=30)
    columns = [f"col_{i}" for i in range(X.shape[1])]
    make = {
        "LogisticRegression": lm.LogisticRegression,
        "Ridge": lm.Ridge,
        "StandardScaler": StandardScaler,
        "SimpleImputer": SimpleImputer,
    }[name]
    target = (
        None
        if name in ("StandardScaler", "SimpleImputer")
        else (y if name == "LogisticRegression" else X[:, 0] * 2.0)
    )
    est = fit(make(), pd.DataFrame(X, columns=columns), target)
    model = load_variant(est, "joblib", tmp_path)
    ctx = where(estimator=name, fitted_on="DataFrame", variant="joblib")
    check_attributes(model, est, ctx)
    assert model.feature_names_in_.dtype == object, ctx
    df = pd.DataFrame(X_new, columns=columns)
    check_methods(model, est, df, context=f"{ctx} | layout=dataframe | rows={len(df)}")


# -- float32 models -------------------------------------------------------------------

F32_CASES = [
    Case("LinearRegression", lambda: lm.LinearRegression()),
    Case("Ridge", lambda: lm.Ridge()),
    Case("Ridge", lambda: lm.Ridge(), "y(n,2)"),
    Case("LogisticRegression", _lr()),
    Case("StandardScaler", lambda: StandardScaler()),
    Case("Pipeline(StandardScaler, Ridge)", lambda: make_pipeline(StandardScaler(), lm.Ridge())),
]
F32_LAYOUTS = ("f32", "f32-fortran", "c-f64", "int32", "uint8", "bool", "f16")


@pytest.fixture(scope="module")
def float32_models(tmp_path_factory):
    """Each F32_CASES estimator fitted on float32 data, loaded, with fresh rows."""
    directory = tmp_path_factory.mktemp("float32")
    out = {}
    for case in F32_CASES:
        if case.name == "LogisticRegression":
            X, y, X_new = classification_data(3, "int", seed=40)
        else:
            X, y, X_new = regression_data(n_targets=2 if case.options == "y(n,2)" else 1, seed=40)
            y = y.astype(np.float32)
        est = fit(case.make(), X.astype(np.float32), None if case.name == "StandardScaler" else y)
        out[case.id] = (est, load_variant(est, "joblib", directory), X_new)
    return out


@pytest.mark.parametrize("layout", F32_LAYOUTS)
@pytest.mark.parametrize("case", F32_CASES, ids=lambda c: c.id)
def test_float32_fitted(case, layout, float32_models):
    """Fitted on float32 data: coef_ stays float32 where scikit-learn keeps
    it; float32 rows give float32 answers (compared at float32 precision,
    see F32_RTOL), float64 rows float64 answers, and other dtypes whatever
    NumPy's promotion with float32 parameters gives in scikit-learn."""
    est, model, X_new = float32_models[case.id]
    ctx = where(
        estimator=case.name,
        options=case.options,
        fit_dtype="float32",
        variant="joblib",
        layout=layout,
        rows=len(X_new),
    )
    check_attributes(model, est, ctx)
    lay = make_layout(X_new, layout)
    check_methods(model, est, lay.fast, lay.reference, context=ctx)


# -- representatives of the shared runs (test_parity_shared.py) -------------------------


def representatives() -> Dict[str, Callable[[], Representative]]:
    """Linear models, scalers and imputers for every file variant, pickling,
    inspect and repr: labels of several dtypes, multi-output, float32, a
    pipeline fitted on a DataFrame and one of transformers only."""

    def pipeline_frame():
        est, X_new = fit_pipeline("impute-scale-LR", frame=True)
        return Representative(
            est, pd.DataFrame(X_new, columns=est.feature_names_in_), float32_rtol=F32_RTOL
        )

    def transformers():
        return Representative(*fit_pipeline("transformers-only"), float32_rtol=F32_RTOL)

    def fitted_on(make, data, f32=False):
        def make_model():
            X, y, X_new = data()
            if f32:
                X, y, X_new = X.astype(np.float32), y.astype(np.float32), X_new.astype(np.float32)
            return Representative(fit(make(), X, y), X_new, float32_rtol=F32_RTOL)

        return make_model

    return {
        "Pipeline(SimpleImputer, StandardScaler, LR)-str-labels-DataFrame": pipeline_frame,
        "Pipeline(SimpleImputer+indicator, StandardScaler, MinMaxScaler)": transformers,
        "LogisticRegression-3classes": fitted_on(
            lm.LogisticRegression, lambda: classification_data(3, "int", seed=60)
        ),
        "LinearSVC-binary-str": fitted_on(
            lambda: svm.LinearSVC(random_state=0), lambda: classification_data(2, "str", seed=61)
        ),
        "SGDClassifier(modified_huber)-object-labels": fitted_on(
            lambda: lm.SGDClassifier(loss="modified_huber", random_state=0),
            lambda: classification_data(2, "object", seed=51),
        ),
        "Ridge-multioutput": fitted_on(
            lambda: lm.Ridge(alpha=0.5), lambda: regression_data(n_targets=3, seed=50)
        ),
        "LinearRegression-float32": fitted_on(
            lm.LinearRegression, lambda: regression_data(seed=52), f32=True
        ),
    }


# -- input layouts --------------------------------------------------------------------


def _layout_models():
    out = {}
    X, y, X_new = classification_data(3, "int", seed=60)
    out["LogisticRegression-3classes"] = (fit(lm.LogisticRegression(), X, y), X_new, None)
    X, y, X_new = classification_data(2, "str", seed=61)
    out["LinearSVC-binary-str"] = (fit(svm.LinearSVC(random_state=0), X, y), X_new, None)
    est, X_new = fit_pipeline("impute-scale-LR", frame=True)
    out["Pipeline(SimpleImputer, StandardScaler, LR)-DataFrame"] = (
        est,
        X_new,
        list(est.feature_names_in_),
    )
    est, X_new = fit_pipeline("transformers-only")
    out["Pipeline(transformers only)"] = (est, X_new, None)
    X, y, X_new = regression_data(n_targets=2, seed=62)
    out["LinearRegression-multioutput"] = (fit(lm.LinearRegression(), X, y), X_new, None)
    X, y, X_new = regression_data(seed=63)
    out["Ridge-float32-fitted"] = (
        fit(lm.Ridge(), X.astype(np.float32), y.astype(np.float32)),
        X_new,
        None,
    )
    return out


@pytest.fixture(scope="module")
def layout_models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("layouts")
    return {
        name: (est, load_variant(est, "joblib", directory), X_new, cols)
        for name, (est, X_new, cols) in _layout_models().items()
    }


LAYOUT_MODEL_NAMES = [
    "LogisticRegression-3classes",
    "LinearSVC-binary-str",
    "Pipeline(SimpleImputer, StandardScaler, LR)-DataFrame",
    "Pipeline(transformers only)",
    "LinearRegression-multioutput",
    "Ridge-float32-fitted",
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", LAYOUT_MODEL_NAMES)
def test_input_layout(name, layout, layout_models):
    est, model, X_new, columns = layout_models[name]
    if layout in ("int64", "int32", "uint8", "bool"):
        X_new = np.nan_to_num(X_new)  # NaN has no integer value
    for n_rows in (1, 3, len(X_new)):
        rows = X_new[:n_rows]
        lay = make_layout(rows, layout, columns)
        ctx = where(
            estimator=name,
            variant="joblib",
            layout=layout,
            rows=1 if layout == "row-1d" else n_rows,
        )
        check_methods(model, est, lay.fast, lay.reference, context=ctx)
        if layout == "row-1d":
            break


# -- large batches and threads --------------------------------------------------------

BIG_ROWS = 120_000


@pytest.mark.parametrize(
    "name",
    [
        "Pipeline(SimpleImputer, StandardScaler, LR)-DataFrame",
        "Pipeline(transformers only)",
        "LinearRegression-multioutput",
        "Ridge-float32-fitted",
    ],
)
@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_large_batch(name, layout_models):
    """More than 100,000 rows: the GIL-released, multi-threaded path; the
    answers equal sklearn's and do not depend on the number of threads."""
    est, model, X_new, _ = layout_models[name]
    rng = np.random.default_rng(70)
    base = np.nan_to_num(X_new) if "SimpleImputer" not in name else X_new
    rows = base[rng.integers(0, len(base), BIG_ROWS)] + rng.normal(
        0, 0.01, (BIG_ROWS, base.shape[1])
    )
    if name == "Ridge-float32-fitted":
        rows = rows.astype(np.float32)
    check_across_threads(
        model,
        est,
        rows,
        [m for m in METHODS if hasattr(est, m)],
        where(estimator=name, variant="joblib", rows=BIG_ROWS),
        float32_rtol=F32_RTOL,
    )


def test_large_batch_error_in_last_row(layout_models):
    """A NaN in the last of >100,000 rows is found and named like sklearn,
    whatever the number of threads."""
    est, model, X_new, _ = layout_models["LogisticRegression-3classes"]
    rows = np.tile(X_new, (BIG_ROWS // len(X_new) + 1, 1))[:BIG_ROWS].copy()
    rows[-1, 2] = np.nan
    with pytest.raises(ValueError) as ref:
        est.predict(rows)
    before = mlfast.get_num_threads()
    try:
        for threads in (1, 4):
            mlfast.set_num_threads(threads)
            with pytest.raises(ValueError) as got:
                model.predict(rows)
            assert str(got.value) == str(ref.value), where(threads=threads)
    finally:
        mlfast.set_num_threads(before)


def test_every_position_of_a_block_is_checked(layout_models):
    """The finiteness check scans a block with a vectorised test: a NaN or
    inf in any row of the first, a middle and the last, short block, in any
    column, is refused with scikit-learn's message; finite extremes pass."""
    est, model, X_new, _ = layout_models["LogisticRegression-3classes"]
    base = np.tile(X_new, (150 // len(X_new) + 1, 1))[:150].copy()  # 64 + 64 + 22 rows
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError) as ref:
            est.predict(np.where(np.arange(base.size).reshape(base.shape) == 0, bad, base))
        for row in (0, 1, 62, 63, 64, 100, 127, 128, 148, 149):
            for col in range(base.shape[1]):
                rows = base.copy()
                rows[row, col] = bad
                with pytest.raises(ValueError) as got:
                    model.predict(rows)
                assert str(got.value) == str(ref.value), where(bad=bad, row=row, col=col)
    extremes = base.copy()
    extremes[::7, 0] = np.finfo(np.float64).max / 1e10
    extremes[1::7, 1] = 5e-324  # the smallest subnormal
    extremes[2::7, 1] = -0.0
    extremes[3::7, 0] = -np.finfo(np.float64).max / 1e10
    assert_same_output(model.predict(extremes), est.predict(extremes), "finite extremes")


# -- input errors -------------------------------------------------------------------


def _error_models():
    out = {}
    X, y, _ = classification_data(2, "int", seed=80)
    X4 = X[:, :4]
    out["LogisticRegression"] = fit(lm.LogisticRegression(), X4, y)
    out["Pipeline(StandardScaler, LogisticRegression)"] = fit(
        make_pipeline(StandardScaler(), lm.LogisticRegression()), X4, y
    )
    out["Pipeline(SimpleImputer, StandardScaler, LR)-DataFrame"] = fit(
        make_pipeline(SimpleImputer(), StandardScaler(), lm.LogisticRegression()),
        pd.DataFrame(X4, columns=["a", "b", "c", "d"]),
        y,
    )
    out["Pipeline(SimpleImputer(missing_values=-1), Ridge)"] = fit(
        make_pipeline(SimpleImputer(missing_values=-1.0), lm.Ridge()), X4, X4[:, 0]
    )
    out["StandardScaler"] = fit(StandardScaler(), X4)
    out["Ridge"] = fit(lm.Ridge(), X4, X4[:, 1])
    return out


@pytest.fixture(scope="module")
def error_models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("errors")
    return {
        name: (est, load_variant(est, "joblib", directory)) for name, est in _error_models().items()
    }


def _bad_inputs():
    rng = np.random.default_rng(81)
    X = rng.normal(size=(5, 4))

    def with_value(value, dtype=np.float64):
        a = X.astype(dtype)
        a[2, 1] = value
        return a

    cplx = X.astype(np.complex128)
    cplx[1, 1] = 1 + 2j
    obj = X.astype(object)
    obj[1, 2] = "abc"
    return {
        "3-features": X[:, :3],
        "5-features": np.hstack([X, X[:, :1]]),
        "1d-3-features": X[0, :3],
        "0-features": np.empty((5, 0)),
        "nan": with_value(np.nan),
        "nan-float32": with_value(np.nan, np.float32),
        "inf": with_value(np.inf),
        "-inf": with_value(-np.inf),
        "inf-float32": with_value(np.inf, np.float32),
        "inf-float16": with_value(np.inf, np.float16),
        "nan-and-inf": np.where(np.arange(20).reshape(5, 4) == 3, np.inf, with_value(np.nan)),
        "zero-rows": np.empty((0, 4)),
        "3-d": X[None, :, :],
        "0-d": np.array(5.0),
        "str-array": X.astype(str),
        "bytes-array": X.astype("S8"),
        "object-with-str": obj,
        "complex": cplx,
        "ragged-list": [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]],
        "list-of-str": [["a", "b", "c", "d"]],
        "df-wrong-names": pd.DataFrame(X, columns=["a", "b", "x", "d"]),
        "df-reordered": pd.DataFrame(X, columns=["b", "a", "c", "d"]),
        "df-extra-column": pd.DataFrame(
            np.hstack([X, X[:, :1]]), columns=["a", "b", "c", "d", "e"]
        ),
        "df-missing-column": pd.DataFrame(X[:, :3], columns=["a", "b", "c"]),
    }


BAD_INPUTS = _bad_inputs()
ERROR_MODEL_NAMES = [
    "LogisticRegression",
    "Pipeline(StandardScaler, LogisticRegression)",
    "Pipeline(SimpleImputer, StandardScaler, LR)-DataFrame",
    "Pipeline(SimpleImputer(missing_values=-1), Ridge)",
    "StandardScaler",
    "Ridge",
]


@pytest.mark.parametrize("bad", list(BAD_INPUTS))
@pytest.mark.parametrize("name", ERROR_MODEL_NAMES)
def test_input_error(name, bad, error_models):
    """Same exception type and text as scikit-learn for the same input; where
    scikit-learn accepts the input (a scaler lets NaN through) the answers
    must agree instead."""
    est, model = error_models[name]
    X = BAD_INPUTS[bad]
    ref_X = X.reshape(1, -1) if bad.startswith("1d") else X  # 1-D is one row, on purpose
    ctx = where(estimator=name, input=bad, variant="joblib")
    check_same_or_same_error(model, est, X, ref_X, context=ctx)


def _same_warnings(error_models, cases):
    """The same warnings (category and text) from sklearn and mlfast."""
    for name, rows in cases:
        est, model = error_models[name]
        with warnings.catch_warnings(record=True) as ref:
            warnings.simplefilter("always")
            est.predict(rows)
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            model.predict(rows)
        ref_msgs = [(w.category, str(w.message)) for w in ref]
        got_msgs = [(w.category, str(w.message)) for w in got]
        assert got_msgs == ref_msgs, where(estimator=name, input=describe_input(rows))


def test_warns_dataframe_for_model_fitted_without_names(error_models):
    """'X has feature names, but ... was fitted without feature names'."""
    df = pd.DataFrame(np.random.default_rng(85).normal(size=(5, 4)), columns=["a", "b", "c", "d"])
    _same_warnings(
        error_models,
        [
            ("LogisticRegression", df),
            ("Pipeline(StandardScaler, LogisticRegression)", df),
            ("Ridge", df),
        ],
    )


def test_warns_array_for_model_fitted_with_names(error_models):
    """'X does not have valid feature names, but ... was fitted with feature
    names' -- for an ndarray and for nested lists."""
    X = np.random.default_rng(86).normal(size=(5, 4))
    name = "Pipeline(SimpleImputer, StandardScaler, LR)-DataFrame"
    _same_warnings(error_models, [(name, X), (name, X.tolist())])


# -- threads ---------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_concurrent_calls(layout_models):
    """A Model used from 4 threads at once answers like serial calls."""
    est, model, X_new, _ = layout_models["Pipeline(SimpleImputer, StandardScaler, LR)-DataFrame"]
    rng = np.random.default_rng(90)
    batches = [
        X_new[rng.integers(0, len(X_new), n)] for n in rng.choice([1, 2, 17, 300, 20_000], size=60)
    ]
    methods = [m for m in METHODS if hasattr(est, m)]
    serial = [[getattr(model, m)(b) for m in methods] for b in batches]

    def work(i):
        return [getattr(model, m)(batches[i]) for m in methods]

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(2):
            results = list(pool.map(work, range(len(batches))))
            for i, (got, want) in enumerate(zip(results, serial)):
                for m, g, w in zip(methods, got, want):
                    np.testing.assert_array_equal(
                        g,
                        w,
                        strict=True,
                        err_msg=where(
                            estimator="impute-scale-LR",
                            method=m,
                            batch=i,
                            rows=len(batches[i]),
                            threads=4,
                        ),
                    )
    for b, want in zip(batches[:5], serial[:5]):
        assert_same_output(want[0], quietly(est.predict, b), "serial predict vs sklearn")
