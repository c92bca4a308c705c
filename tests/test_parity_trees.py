"""Differential tests: decision trees, forests, gradient boosting, histogram
gradient boosting, isolation forests and pipelines ending in them.

scikit-learn is the oracle.  Every check fits a real estimator on generated
data (fixed seeds), saves it, loads it with mlfast and compares every method
scikit-learn has (predict, predict_proba, predict_log_proba,
decision_function, score_samples): labels exactly and with the same dtype,
floats to rtol=atol=1e-12 with the same shape and dtype.  Methods
scikit-learn lacks must raise AttributeError in mlfast too.

What trees add to the linear suite is *where a row goes*: scikit-learn's own
trees compare the float32-cast feature with a float64 threshold, histogram
boosting compares float64 with float64 and routes NaN, unknown, negative and
non-integer categories the missing way.  So rows are crafted from the fitted
model's thresholds -- exactly on them and one float32 and one float64 step
either side -- and from its categories.

A failure names the estimator, its options, the file variant, the input
layout and the batch size, e.g.::

    predict_proba: estimator=RandomForestClassifier | options=max_features=0.5 |
    labels=str/3 | variant=joblib | layout=fortran | rows=7

The checks come from ``tests/support/parity.py``, file variants and input
layouts from ``tests/support/variants.py``; every file variant, pickling,
inspect and repr run on this family's representatives in
``tests/test_parity_shared.py``.  The
memory and load-time figures of a large forest are measured by
``benchmarks/forest_memory.py``, not here.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Dict, List

import numpy as np
import pandas as pd
import pytest
from sklearn import ensemble, tree
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from support import parity
from support.parity import (
    CAT0_VALUES,
    CAT1_VALUES,
    CAT_COLUMNS,
    N_FEATURES,
    Case,
    check_absent_methods,
    check_across_threads,
    check_attributes,
    check_methods,
    check_same_or_same_error,
    fit,
    fit_case,
    hgb_data,
    isolation_data,
    opts,
    quietly,
    relabel,
    where,
    with_missing,
)
from support.representatives import Representative
from support.variants import (
    LAYOUTS,
    load_variant,
    make_layout,
)

import mlfast

pytestmark = pytest.mark.usefixtures("one_openmp_thread")

#: trees fit on more rows with noisier labels (so that fully grown trees are
#: deep) and predict farther out (every tree's outermost leaves)
classification_data = partial(parity.classification_data, n_fit=200, flip_y=0.05, extreme=40.0)
regression_data = partial(parity.regression_data, n_fit=200, extreme=40.0)


def not_preorder(est) -> None:
    """max_leaf_nodes grows best-first: node ids are in order of creation,
    so a left child is not always its parent's next node."""
    t = est.tree_
    internal = np.flatnonzero(t.children_left >= 0)
    assert np.any(t.children_left[internal] != internal + 1), (
        "expected a best-first tree with non-preorder node ids"
    )


def early_stopped(est) -> None:
    """n_iter_no_change: fewer iterations than allowed."""
    if hasattr(est, "max_iter"):
        assert est.n_iter_ < est.max_iter, "early stopping did not stop early"
    else:
        assert est.n_estimators_ < est.n_estimators, "early stopping did not stop early"


def run_case(case: Case, X, y, X_new, tmp_path, **ctx_parts) -> Any:
    est = fit_case(case, X, y)
    model = load_variant(est, "joblib", tmp_path)
    ctx = where(
        estimator=case.name,
        options=case.options,
        sample_weight=True if case.sample_weight else None,
        **ctx_parts,
        variant="joblib",
    )
    check_attributes(model, est, ctx)
    for rows in (X_new, X_new[:1], X_new[:4]):
        check_methods(
            model, est, rows, context=f"{ctx} | layout=c-f64 | rows={len(rows)}", absent=False
        )
    check_absent_methods(model, est, X_new, ctx)
    return est, model


# -- single trees -------------------------------------------------------------------

DTC, DTR = tree.DecisionTreeClassifier, tree.DecisionTreeRegressor
ETC1, ETR1 = tree.ExtraTreeClassifier, tree.ExtraTreeRegressor


def _c(cls, check=None, n_classes=(2, 3), sample_weight=False, data=None, **kw):
    """A Case for cls(**kw, random_state=0)."""

    def make(cls=cls, kw=kw):
        return cls(random_state=0, **kw)

    return Case(
        cls.__name__,
        make,
        opts(**kw),
        check=check,
        n_classes=n_classes,
        sample_weight=sample_weight,
        data=data or {},
    )


TREE_CLASSIFIER_CASES = [
    _c(DTC),
    _c(DTC, criterion="entropy"),
    _c(DTC, criterion="log_loss", max_depth=4),
    _c(DTC, max_depth=3),
    _c(DTC, max_leaf_nodes=9, check=not_preorder),
    _c(DTC, max_leaf_nodes=25, criterion="entropy", check=not_preorder),
    _c(DTC, min_samples_leaf=7),
    _c(DTC, class_weight="balanced"),
    _c(DTC, class_weight="balanced", sample_weight=True),
    _c(DTC, splitter="random", max_features=3),
    _c(DTC, ccp_alpha=0.01),
    _c(DTC, data=dict(missing=0.1)),
    _c(ETC1),
    _c(ETC1, criterion="entropy", min_samples_leaf=3),
    _c(ETC1, max_leaf_nodes=12, check=not_preorder),
    _c(ETC1, class_weight="balanced"),
    _c(ETC1, data=dict(missing=0.1)),
]

TREE_REGRESSOR_CASES = [
    _c(DTR),
    _c(DTR, criterion="squared_error", max_depth=5),
    _c(DTR, criterion="absolute_error", max_depth=6),
    _c(DTR, criterion="poisson", data=dict(positive=True)),
    _c(DTR, max_leaf_nodes=15, check=not_preorder),
    _c(DTR, min_samples_leaf=6),
    _c(DTR, splitter="random"),
    _c(DTR, sample_weight=True),
    _c(DTR, data=dict(missing=0.1)),
    _c(ETR1),
    _c(ETR1, max_leaf_nodes=10, check=not_preorder),
    _c(ETR1, criterion="absolute_error", min_samples_leaf=4),
    _c(ETR1, data=dict(missing=0.1)),
]


def _classifier_params(cases):
    return [
        pytest.param(case, k, id=f"{case.id}-{k}classes") for case in cases for k in case.n_classes
    ]


@pytest.mark.parametrize("case, n_classes", _classifier_params(TREE_CLASSIFIER_CASES))
def test_tree_classifier(case, n_classes, tmp_path):
    X, y, X_new = classification_data(n_classes, "int", seed=n_classes, **case.data)
    run_case(case, X, y, X_new, tmp_path, labels=f"int/{n_classes}", data=case.data or None)


@pytest.mark.parametrize("case", TREE_REGRESSOR_CASES, ids=lambda c: c.id)
def test_tree_regressor(case, tmp_path):
    X, y, X_new = regression_data(seed=4, **case.data)
    run_case(case, X, y, X_new, tmp_path, data=case.data or None)


# -- forests ---------------------------------------------------------------------------

RFC, RFR = ensemble.RandomForestClassifier, ensemble.RandomForestRegressor
ETC, ETR = ensemble.ExtraTreesClassifier, ensemble.ExtraTreesRegressor

FOREST_CLASSIFIER_CASES = [
    _c(RFC, n_estimators=1),
    _c(RFC, n_estimators=10),
    _c(RFC, n_estimators=50, max_features=None),
    _c(RFC, n_estimators=10, bootstrap=False),
    _c(RFC, n_estimators=10, max_features=0.5, criterion="entropy"),
    _c(RFC, n_estimators=10, max_features=2, max_depth=4),
    _c(RFC, n_estimators=10, max_leaf_nodes=12),
    _c(RFC, n_estimators=10, min_samples_leaf=5),
    _c(RFC, n_estimators=10, class_weight="balanced"),
    _c(RFC, n_estimators=10, class_weight="balanced_subsample"),
    _c(RFC, n_estimators=10, sample_weight=True),
    _c(RFC, n_estimators=10, max_samples=0.5),
    _c(RFC, n_estimators=10, data=dict(missing=0.1)),
    _c(ETC, n_estimators=1),
    _c(ETC, n_estimators=10),
    _c(ETC, n_estimators=50, bootstrap=True),
    _c(ETC, n_estimators=10, max_features=None, criterion="log_loss"),
    _c(ETC, n_estimators=10, class_weight="balanced"),
    _c(ETC, n_estimators=10, max_leaf_nodes=8),
    _c(ETC, n_estimators=10, data=dict(missing=0.1)),
]

FOREST_REGRESSOR_CASES = [
    _c(RFR, n_estimators=1),
    _c(RFR, n_estimators=10),
    _c(RFR, n_estimators=50, bootstrap=False, max_features=0.5),
    _c(RFR, n_estimators=10, criterion="absolute_error", max_depth=5),
    _c(RFR, n_estimators=10, criterion="squared_error", max_leaf_nodes=10),
    _c(RFR, n_estimators=10, criterion="poisson", data=dict(positive=True)),
    _c(RFR, n_estimators=10, min_samples_leaf=4, sample_weight=True),
    _c(RFR, n_estimators=10, data=dict(missing=0.1)),
    _c(ETR, n_estimators=1),
    _c(ETR, n_estimators=10),
    _c(ETR, n_estimators=50, bootstrap=True, max_features=2),
    _c(ETR, n_estimators=10, max_leaf_nodes=10),
    _c(ETR, n_estimators=10, data=dict(missing=0.1)),
]


@pytest.mark.parametrize("case, n_classes", _classifier_params(FOREST_CLASSIFIER_CASES))
def test_forest_classifier(case, n_classes, tmp_path):
    X, y, X_new = classification_data(n_classes, "int", seed=10 + n_classes, **case.data)
    run_case(case, X, y, X_new, tmp_path, labels=f"int/{n_classes}", data=case.data or None)


@pytest.mark.parametrize("case", FOREST_REGRESSOR_CASES, ids=lambda c: c.id)
def test_forest_regressor(case, tmp_path):
    X, y, X_new = regression_data(seed=14, **case.data)
    run_case(case, X, y, X_new, tmp_path, data=case.data or None)


# -- multi-output regression --------------------------------------------------------

MULTIOUTPUT_CASES = [
    _c(DTR),
    _c(DTR, max_leaf_nodes=12, check=not_preorder),
    _c(ETR1),
    _c(RFR, n_estimators=10),
    _c(RFR, n_estimators=10, data=dict(missing=0.1)),
    _c(ETR, n_estimators=10),
]


@pytest.mark.parametrize("n_targets", [3, 1], ids=["y(n,3)", "y(n,1)"])
@pytest.mark.parametrize("case", MULTIOUTPUT_CASES, ids=lambda c: c.id)
def test_multioutput_regressor(case, n_targets, tmp_path):
    X, y, X_new = regression_data(n_targets=n_targets, seed=20, **case.data)
    y = y.reshape(len(y), n_targets)  # y of shape (n, 1) stays 2-D
    run_case(case, X, y, X_new, tmp_path, y_shape=f"(n, {n_targets})", data=case.data or None)


# -- gradient boosting --------------------------------------------------------------------

GBC, GBR = ensemble.GradientBoostingClassifier, ensemble.GradientBoostingRegressor


def _gb(cls, check=None, n_classes=(2, 3), sample_weight=False, **kw):
    kw.setdefault("n_estimators", 20)
    return _c(cls, check=check, n_classes=n_classes, sample_weight=sample_weight, **kw)


GB_CLASSIFIER_CASES = [
    _gb(GBC),
    _gb(GBC, loss="exponential", n_classes=(2,)),
    _gb(GBC, init="zero"),
    _gb(GBC, loss="exponential", init="zero", n_classes=(2,)),
    _gb(GBC, subsample=0.7),
    _gb(GBC, max_leaf_nodes=6, max_depth=None),
    _gb(GBC, max_depth=1, learning_rate=0.5),
    _gb(GBC, max_features=0.5, criterion="squared_error"),
    _gb(GBC, sample_weight=True),
    _gb(GBC, n_estimators=300, n_iter_no_change=2, validation_fraction=0.2, check=early_stopped),
]

GB_REGRESSOR_CASES = [
    _gb(GBR),
    _gb(GBR, loss="absolute_error"),
    _gb(GBR, loss="huber", alpha=0.8),
    _gb(GBR, loss="quantile", alpha=0.2),
    _gb(GBR, init="zero"),
    _gb(GBR, loss="absolute_error", init="zero"),
    _gb(GBR, subsample=0.6, max_leaf_nodes=7, max_depth=None),
    _gb(GBR, sample_weight=True),
    _gb(GBR, n_estimators=300, n_iter_no_change=2, check=early_stopped),
]


@pytest.mark.parametrize("case, n_classes", _classifier_params(GB_CLASSIFIER_CASES))
def test_gradient_boosting_classifier(case, n_classes, tmp_path):
    X, y, X_new = classification_data(n_classes, "int", seed=30 + n_classes)
    run_case(case, X, y, X_new, tmp_path, labels=f"int/{n_classes}")


@pytest.mark.parametrize("case", GB_REGRESSOR_CASES, ids=lambda c: c.id)
def test_gradient_boosting_regressor(case, tmp_path):
    X, y, X_new = regression_data(seed=34)
    run_case(case, X, y, X_new, tmp_path)


# -- histogram gradient boosting ------------------------------------------------------------

HGBC, HGBR = ensemble.HistGradientBoostingClassifier, ensemble.HistGradientBoostingRegressor
CAT_MASK = [i in CAT_COLUMNS for i in range(N_FEATURES)]


def _hgb(cls, check=None, n_classes=(2, 3), sample_weight=False, data=None, **kw):
    kw.setdefault("max_iter", 15)
    return _c(cls, check=check, n_classes=n_classes, sample_weight=sample_weight, data=data, **kw)


HGB_CLASSIFIER_CASES = [
    _hgb(HGBC),
    _hgb(HGBC, data=dict(missing=0.1)),
    _hgb(HGBC, categorical_features=list(CAT_COLUMNS), data=dict(categorical=True)),
    _hgb(HGBC, categorical_features=CAT_MASK, data=dict(categorical=True)),
    _hgb(HGBC, categorical_features=list(CAT_COLUMNS), data=dict(categorical=True, missing=0.1)),
    _hgb(
        HGBC,
        early_stopping=True,
        n_iter_no_change=2,
        max_iter=300,
        validation_fraction=0.25,
        check=early_stopped,
    ),
    _hgb(HGBC, class_weight="balanced"),
    _hgb(HGBC, sample_weight=True, data=dict(missing=0.05)),
    _hgb(HGBC, max_leaf_nodes=5, max_depth=3, l2_regularization=1.0, learning_rate=0.3),
    _hgb(HGBC, max_bins=8, min_samples_leaf=5),
    _hgb(HGBC, interaction_cst=[[2, 3], [4, 5]]),
]

HGB_REGRESSOR_CASES = [
    _hgb(HGBR),
    _hgb(HGBR, loss="absolute_error"),
    _hgb(HGBR, loss="poisson", data=dict(task="positive")),
    _hgb(HGBR, loss="gamma", data=dict(task="positive")),
    _hgb(HGBR, loss="quantile", quantile=0.8),
    _hgb(HGBR, data=dict(missing=0.1)),
    _hgb(HGBR, loss="poisson", data=dict(task="positive", missing=0.1)),
    _hgb(HGBR, categorical_features=list(CAT_COLUMNS), data=dict(categorical=True)),
    _hgb(HGBR, categorical_features=CAT_MASK, data=dict(categorical=True, missing=0.1)),
    _hgb(
        HGBR,
        loss="gamma",
        categorical_features=list(CAT_COLUMNS),
        data=dict(task="positive", categorical=True),
    ),
    _hgb(HGBR, early_stopping=True, n_iter_no_change=2, max_iter=300, check=early_stopped),
    _hgb(HGBR, monotonic_cst=[0, 0, 1, 0, 0, 0], max_bins=16),
]


def _hgb_task(n_classes: int) -> str:
    return "binary" if n_classes == 2 else "multiclass"


@pytest.mark.parametrize("case, n_classes", _classifier_params(HGB_CLASSIFIER_CASES))
def test_hist_gradient_boosting_classifier(case, n_classes, tmp_path):
    X, y, X_new = hgb_data(_hgb_task(n_classes), seed=40 + n_classes, **case.data)
    run_case(case, X, y, X_new, tmp_path, labels=f"int/{n_classes}", data=case.data or None)


@pytest.mark.parametrize("case", HGB_REGRESSOR_CASES, ids=lambda c: c.id)
def test_hist_gradient_boosting_regressor(case, tmp_path):
    data = {"task": "regression", **case.data}
    X, y, X_new = hgb_data(seed=44, **data)
    run_case(case, X, y, X_new, tmp_path, data=data)


def _category_frame(X: np.ndarray, categories: bool = True) -> pd.DataFrame:
    """Columns c0..c5; c0 and c1 as pandas category dtype with numeric
    categories (the categories of the training data, so the dtype is the
    same at fit and predict time)."""
    df = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    if categories:
        df["c0"] = pd.Categorical(X[:, 0], categories=CAT0_VALUES)
        df["c1"] = pd.Categorical(X[:, 1], categories=CAT1_VALUES)
    return df


@pytest.mark.parametrize("how", ["from_dtype", "names"])
@pytest.mark.parametrize("cls", [HGBC, HGBR], ids=lambda c: c.__name__)
def test_hist_gradient_boosting_categorical_dataframe(cls, how, tmp_path):
    """categorical_features='from_dtype' with pandas category columns, and
    categorical_features given as column names."""
    task = "multiclass" if cls is HGBC else "regression"
    X, y, X_new = hgb_data(task, seed=45, categorical=True, missing=0.05)
    if how == "from_dtype":
        est = fit(cls(max_iter=15, categorical_features="from_dtype"), _category_frame(X), y)
        df_new = _category_frame(X_new)
    else:
        est = fit(
            cls(max_iter=15, categorical_features=["c0", "c1"]),
            _category_frame(X, categories=False),
            y,
        )
        df_new = _category_frame(X_new, categories=False)
    assert list(np.flatnonzero(est.is_categorical_)) == list(CAT_COLUMNS)
    model = load_variant(est, "joblib", tmp_path)
    ctx = where(
        estimator=cls.__name__,
        options=f"categorical_features={how!r}",
        variant="joblib",
        layout="DataFrame",
    )
    check_attributes(model, est, ctx)
    for rows in (df_new, df_new.iloc[:1]):
        check_methods(model, est, rows, context=f"{ctx} | rows={len(rows)}", absent=False)
    # the same rows as a float ndarray: scikit-learn warns about names and
    # answers the same
    check_methods(
        model,
        est,
        X_new,
        _category_frame(X_new, how == "from_dtype"),
        context=f"{ctx} | layout=ndarray for mlfast | rows={len(X_new)}",
        absent=False,
    )
    # values the encoder has not seen (unknown, negative, non-integer, NaN),
    # in a category column whose dtype lists them
    odd = np.array([9.0, 1.5, -1.0, -3.0, 1000.0, 2.0, np.nan, 7.0, 0.0, 255.0])
    df_odd = df_new.iloc[: len(odd)].copy()
    df_odd["c0"] = pd.Categorical(odd) if how == "from_dtype" else odd
    check_methods(model, est, df_odd, context=f"{ctx} | c0={odd.tolist()}", absent=False)
    check_absent_methods(model, est, df_new, ctx)


# -- isolation forest ---------------------------------------------------------------------

IF = ensemble.IsolationForest


def _if(**kw):
    return _c(IF, **kw)


ISOLATION_CASES = [
    _if(),
    _if(n_estimators=1),
    _if(n_estimators=10, max_samples=64),
    _if(n_estimators=10, max_samples=0.5),
    _if(n_estimators=10, max_samples="auto", contamination=0.1),
    _if(n_estimators=10, max_features=0.5),
    _if(n_estimators=10, max_features=2, bootstrap=True),
    _if(n_estimators=50, max_features=0.7, contamination=0.05, max_samples=100),
    _if(n_estimators=10, bootstrap=True, max_samples=1.0),
]


@pytest.mark.parametrize("case", ISOLATION_CASES, ids=lambda c: c.id)
def test_isolation_forest(case, tmp_path):
    X, X_new = isolation_data()
    est = fit_case(case, X, None)
    model = load_variant(est, "joblib", tmp_path)
    ctx = where(estimator=case.name, options=case.options, variant="joblib")
    check_attributes(model, est, ctx)
    for rows in (X_new, X_new[:1], X_new[:4]):
        check_methods(model, est, rows, context=f"{ctx} | layout=c-f64 | rows={len(rows)}")


# -- label kinds -------------------------------------------------------------------------

LABEL_CASES = [
    _c(DTC),
    _c(ETC1),
    _c(RFC, n_estimators=7),
    _c(ETC, n_estimators=7),
    _gb(GBC, n_estimators=10),
    _gb(GBC, n_estimators=10, loss="exponential", n_classes=(2,)),
    _hgb(HGBC, max_iter=10),
]
LABEL_KINDS = ("int", "negative-int", "float", "str", "object", "bool")

_LABEL_PARAMS = [
    pytest.param(case, kind, k, id=f"{case.id}-{kind}-{k}classes")
    for case in LABEL_CASES
    for kind in LABEL_KINDS
    for k in case.n_classes
    if not (kind == "bool" and k > 2)
]


@pytest.mark.parametrize("case, labels, n_classes", _LABEL_PARAMS)
def test_classifier_labels(case, labels, n_classes, tmp_path):
    if case.name == "HistGradientBoostingClassifier":
        X, y, X_new = hgb_data(_hgb_task(n_classes), seed=60 + n_classes)
        y = relabel(y, labels)
    else:
        X, y, X_new = classification_data(n_classes, labels, seed=60 + n_classes)
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


@pytest.mark.parametrize("case", [_c(DTC), _c(RFC, n_estimators=5)], ids=lambda c: c.id)
def test_classifier_y_column(case, tmp_path):
    """y of shape (n, 1): one output, classes_ a 1-D array."""
    X, y, X_new = classification_data(3, "str", seed=65)
    run_case(case, X, y.reshape(-1, 1), X_new, tmp_path, labels="str/3", y_shape="(n, 1)")


# -- pipelines ------------------------------------------------------------------------


def _pipelines():
    """name -> (factory, data kind)."""
    return {
        "Pipeline(SimpleImputer, StandardScaler, RandomForestClassifier)": (
            lambda: Pipeline(
                [
                    ("impute", SimpleImputer()),
                    ("scale", StandardScaler()),
                    ("forest", RFC(n_estimators=10, random_state=0)),
                ]
            ),
            "str-3-missing",
        ),
        "Pipeline(MinMaxScaler, HistGradientBoostingRegressor)": (
            lambda: Pipeline([("scale", MinMaxScaler()), ("hgb", HGBR(max_iter=15))]),
            "regression-missing",
        ),
        "Pipeline(StandardScaler, IsolationForest)": (
            lambda: Pipeline(
                [("scale", StandardScaler()), ("iforest", IF(n_estimators=20, random_state=0))]
            ),
            "isolation",
        ),
        "Pipeline(StandardScaler, GradientBoostingClassifier)": (
            lambda: Pipeline(
                [("scale", StandardScaler()), ("gb", GBC(n_estimators=10, random_state=0))]
            ),
            "int-3",
        ),
        "Pipeline(SimpleImputer+indicator, DecisionTreeRegressor)": (
            lambda: Pipeline(
                [("impute", SimpleImputer(add_indicator=True)), ("tree", DTR(random_state=0))]
            ),
            "regression-missing",
        ),
        "Pipeline(RobustScaler, ExtraTreesRegressor) multi-output": (
            lambda: Pipeline(
                [("scale", RobustScaler()), ("trees", ETR(n_estimators=5, random_state=0))]
            ),
            "regression-3",
        ),
        "Pipeline(MaxAbsScaler, DecisionTreeClassifier)": (
            lambda: Pipeline([("scale", MaxAbsScaler()), ("tree", DTC(random_state=0))]),
            "object-2",
        ),
        "Pipeline(SimpleImputer(median), HistGradientBoostingClassifier) DataFrame": (
            lambda: Pipeline(
                [("impute", SimpleImputer(strategy="median")), ("hgb", HGBC(max_iter=10))]
            ),
            "str-3-missing-frame",
        ),
        "Pipeline(StandardScaler, GradientBoostingRegressor(huber))": (
            lambda: Pipeline(
                [
                    ("scale", StandardScaler()),
                    ("gb", GBR(loss="huber", n_estimators=10, random_state=0)),
                ]
            ),
            "regression",
        ),
    }


PIPELINES = _pipelines()


def fit_pipeline(name: str):
    make, kind = PIPELINES[name]
    missing = 0.1 if "missing" in kind else 0.0
    if kind == "isolation":
        X, X_new = isolation_data(seed=70)
        return fit(make(), X), X_new
    if kind.startswith("regression"):
        X, y, X_new = regression_data(
            n_targets=3 if kind.endswith("-3") else 1, seed=71, missing=missing
        )
    else:
        labels, k = kind.split("-")[:2]
        X, y, X_new = classification_data(int(k), labels, seed=72, missing=missing)
    if kind.endswith("frame"):
        cols = [f"f{i}" for i in range(N_FEATURES)]
        X, X_new = pd.DataFrame(X, columns=cols), pd.DataFrame(X_new, columns=cols)
    return fit(make(), X, y), X_new


@pytest.mark.parametrize("name", list(PIPELINES))
def test_pipeline(name, tmp_path):
    est, X_new = fit_pipeline(name)
    model = load_variant(est, "joblib", tmp_path)
    ctx = where(estimator=name, variant="joblib")
    check_attributes(model, est, ctx)
    for rows in (X_new, X_new[:1]):
        check_methods(
            model,
            est,
            rows,
            context=f"{ctx} | layout={type(rows).__name__} | rows={len(rows)}",
            absent=False,
        )
    check_absent_methods(model, est, X_new, ctx)


# -- rows on the thresholds ------------------------------------------------------------------


def threshold_values(t: float) -> List[float]:
    """t itself, one float64 step either side, the float32 nearest to t and
    one float32 step either side of that (as float64 values)."""
    t64 = np.float64(t)
    t32 = np.float32(t)
    values = [
        t64,
        np.nextafter(t64, -np.inf),
        np.nextafter(t64, np.inf),
        t32,
        np.nextafter(t32, np.float32(-np.inf)),
        np.nextafter(t32, np.float32(np.inf)),
    ]
    return sorted({float(v) for v in values if np.isfinite(v)})


def _float32_decides(v: float, t: float) -> bool:
    """Whether rounding v to float32 changes the side of threshold t: such a
    row goes one way in scikit-learn's trees and the other in a float64
    comparison (histogram boosting's)."""
    return bool((v <= t) != (float(np.float32(v)) <= t))


def _sklearn_tree_rows(trees, X_base: np.ndarray, feature_maps=None, max_nodes: int = 40):
    """Rows that reach a split node of a scikit-learn tree with the split's
    feature set to threshold_values(threshold).  Returns (rows, hits,
    decisive): hits counts rows that still reach the node (their value is
    compared with that node's threshold), decisive those of them whose side
    depends on the float32 cast."""
    rows, hits, decisive = [], 0, 0
    for t, est in enumerate(trees):
        fmap = np.arange(X_base.shape[1]) if feature_maps is None else np.asarray(feature_maps[t])
        tr = est.tree_
        X_sub = X_base[:, fmap]
        reached = quietly(est.decision_path, X_sub).toarray().astype(bool)
        internal = np.flatnonzero(tr.children_left >= 0)[:max_nodes]
        for node in internal:
            who = np.flatnonzero(reached[:, node])
            if who.size == 0:
                continue
            base = X_base[who[0]]
            values = threshold_values(tr.threshold[node])
            crafted = np.repeat(base[None], len(values), axis=0)
            crafted[:, fmap[tr.feature[node]]] = values
            reach = quietly(est.decision_path, crafted[:, fmap]).toarray()[:, node] != 0
            hits += int(reach.sum())
            decisive += sum(
                _float32_decides(v, tr.threshold[node]) for v, r in zip(values, reach) if r
            )
            rows.append(crafted)
    return np.vstack(rows), hits, decisive


def _hgb_walk(nodes, x) -> List[int]:
    """The nodes a row visits in a numeric-only HGB predictor."""
    i, path = 0, [0]
    while not nodes["is_leaf"][i]:
        v = x[nodes["feature_idx"][i]]
        left = nodes["missing_go_to_left"][i] if np.isnan(v) else v <= nodes["num_threshold"][i]
        i = int(nodes["left"][i] if left else nodes["right"][i])
        path.append(i)
    return path


def _hgb_rows(est, X_base: np.ndarray, max_predictors: int = 6):
    """As _sklearn_tree_rows, for the numeric splits of histogram boosting
    (predictor.nodes['num_threshold']), plus +-inf on each split feature."""
    rows, hits, decisive = [], 0, 0
    for iteration in est._predictors[:max_predictors]:
        for predictor in iteration:
            nodes = predictor.nodes
            paths = [set(_hgb_walk(nodes, x)) for x in X_base]
            for node in np.flatnonzero(~nodes["is_leaf"].astype(bool)):
                assert not nodes["is_categorical"][node], "numeric splits only"
                who = [i for i, p in enumerate(paths) if node in p]
                if not who:
                    continue
                f = nodes["feature_idx"][node]
                t = nodes["num_threshold"][node]
                for v in threshold_values(t) + [np.inf, -np.inf]:
                    row = X_base[who[0]].copy()
                    row[f] = v
                    if np.isfinite(v) and node in _hgb_walk(nodes, row):
                        hits += 1
                        decisive += _float32_decides(v, t)
                    rows.append(row)
    return np.array(rows), hits, decisive


def _threshold_models():
    """name -> (estimator, crafted rows, hits, decisive): see _sklearn_tree_rows."""
    out = {}
    X, y, _ = classification_data(3, "str", seed=80)
    est = fit(DTC(random_state=0), X, y)
    out["DecisionTreeClassifier"] = (est, *_sklearn_tree_rows([est], X))
    est = fit(DTC(random_state=0, max_leaf_nodes=20), X, y)
    out["DecisionTreeClassifier(max_leaf_nodes=20)"] = (est, *_sklearn_tree_rows([est], X))
    Xm = with_missing(X, 0.1, 81)
    est = fit(DTC(random_state=0), Xm, y)
    out["DecisionTreeClassifier-trained-with-NaN"] = (est, *_sklearn_tree_rows([est], Xm))
    est = fit(ETC1(random_state=0), X, y)
    out["ExtraTreeClassifier"] = (est, *_sklearn_tree_rows([est], X))
    est = fit(RFC(n_estimators=5, random_state=0), X, y)
    out["RandomForestClassifier(5)"] = (est, *_sklearn_tree_rows(est.estimators_, X, max_nodes=15))
    Xr, yr, _ = regression_data(n_targets=2, seed=82)
    est = fit(ETR(n_estimators=5, random_state=0), Xr, yr)
    out["ExtraTreesRegressor(5) multi-output"] = (
        est,
        *_sklearn_tree_rows(est.estimators_, Xr, max_nodes=15),
    )
    est = fit(GBC(n_estimators=8, random_state=0), X, y)
    out["GradientBoostingClassifier(8) 3 classes"] = (
        est,
        *_sklearn_tree_rows(est.estimators_.ravel(), X),
    )
    est = fit(GBR(n_estimators=8, loss="huber", random_state=0), Xr, yr[:, 0])
    out["GradientBoostingRegressor(8, huber)"] = (
        est,
        *_sklearn_tree_rows(est.estimators_.ravel(), Xr),
    )
    Xi, _ = isolation_data(seed=83)
    est = fit(IF(n_estimators=8, max_features=0.5, random_state=0), Xi)
    out["IsolationForest(8, max_features=0.5)"] = (
        est,
        *_sklearn_tree_rows(est.estimators_, Xi, est.estimators_features_),
    )
    Xh, yh, _ = hgb_data("multiclass", seed=84, missing=0.05)
    est = fit(HGBC(max_iter=6), Xh, yh)
    out["HistGradientBoostingClassifier(6) 3 classes, NaN"] = (est, *_hgb_rows(est, Xh))
    Xh, yh, _ = hgb_data("regression", seed=85)
    est = fit(HGBR(max_iter=6, max_bins=32), Xh, yh)
    out["HistGradientBoostingRegressor(6, max_bins=32)"] = (est, *_hgb_rows(est, Xh))
    return out


@pytest.fixture(scope="module")
def threshold_models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("thresholds")
    return {
        name: (est, load_variant(est, "joblib", directory), rows, hits, decisive)
        for name, (est, rows, hits, decisive) in _threshold_models().items()
    }


THRESHOLD_MODEL_NAMES = [
    "DecisionTreeClassifier",
    "DecisionTreeClassifier(max_leaf_nodes=20)",
    "DecisionTreeClassifier-trained-with-NaN",
    "ExtraTreeClassifier",
    "RandomForestClassifier(5)",
    "ExtraTreesRegressor(5) multi-output",
    "GradientBoostingClassifier(8) 3 classes",
    "GradientBoostingRegressor(8, huber)",
    "IsolationForest(8, max_features=0.5)",
    "HistGradientBoostingClassifier(6) 3 classes, NaN",
    "HistGradientBoostingRegressor(6, max_bins=32)",
]


@pytest.mark.parametrize("layout", ["c-f64", "f32", "fortran"])
@pytest.mark.parametrize("name", THRESHOLD_MODEL_NAMES)
def test_rows_on_thresholds(name, layout, threshold_models):
    """Rows exactly on every split threshold and one float32 and one float64
    step either side.  scikit-learn's trees round the row to float32 and
    compare it with the float64 threshold (so a row equal to the threshold
    may go right); histogram boosting compares float64 with float64."""
    est, model, rows, hits, decisive = threshold_models[name]
    # the rows must test something: many reach the node they were made for,
    # and for some the float32 cast decides the side
    assert hits >= 20, f"only {hits} crafted rows reach their node: {name}"
    assert decisive >= 2, f"only {decisive} rows where the float32 cast decides: {name}"
    lay = make_layout(rows, layout)
    ctx = where(
        estimator=name,
        rows_reaching_their_threshold=hits,
        rows_decided_by_float32_cast=decisive,
        variant="joblib",
        layout=layout,
        rows=len(rows),
    )
    check_methods(model, est, lay.fast, lay.reference, context=ctx)


# -- NaN at predict time -----------------------------------------------------------------


def nan_rows(X: np.ndarray) -> np.ndarray:
    """NaN in each column in turn (for 10 rows each), rows entirely NaN and
    rows with NaN in every other column."""
    out = []
    for j in range(X.shape[1]):
        block = X[:10].copy()
        block[:, j] = np.nan
        out.append(block)
    out.append(np.full((2, X.shape[1]), np.nan))
    alt = X[:5].copy()
    alt[:, ::2] = np.nan
    out.append(alt)
    return np.vstack(out)


def _nan_models():
    """Models trained with and without NaN in X."""
    out = {}
    for missing in (0.0, 0.15):
        tag = "with NaN" if missing else "without NaN"
        X, y, _ = classification_data(3, "int", seed=90, missing=missing)
        Xr, yr, _ = regression_data(seed=91, missing=missing)
        out[f"DecisionTreeClassifier trained {tag}"] = (fit(DTC(random_state=0), X, y), X)
        out[f"DecisionTreeRegressor(max_leaf_nodes=12) trained {tag}"] = (
            fit(DTR(random_state=0, max_leaf_nodes=12), Xr, yr),
            Xr,
        )
        out[f"ExtraTreeRegressor trained {tag}"] = (fit(ETR1(random_state=0), Xr, yr), Xr)
        out[f"RandomForestClassifier trained {tag}"] = (
            fit(RFC(n_estimators=8, random_state=0), X, y),
            X,
        )
        out[f"ExtraTreesClassifier trained {tag}"] = (
            fit(ETC(n_estimators=8, random_state=0), X, y),
            X,
        )
        Xh, yh, _ = hgb_data("binary", seed=92, missing=missing)
        out[f"HistGradientBoostingClassifier trained {tag}"] = (fit(HGBC(max_iter=10), Xh, yh), Xh)
        Xh, yh, _ = hgb_data("regression", seed=93, missing=missing, categorical=True)
        out[f"HistGradientBoostingRegressor(categorical) trained {tag}"] = (
            fit(HGBR(max_iter=10, categorical_features=list(CAT_COLUMNS)), Xh, yh),
            Xh,
        )
    Xi, _ = isolation_data(seed=94)
    out["IsolationForest trained without NaN"] = (fit(IF(n_estimators=10, random_state=0), Xi), Xi)
    X, y, _ = classification_data(2, "int", seed=95)
    out["GradientBoostingClassifier trained without NaN"] = (
        fit(GBC(n_estimators=5, random_state=0), X, y),
        X,
    )
    # an extra tree accepts NaN only with its random splitter
    out["ExtraTreeClassifier(splitter='best') trained without NaN"] = (
        fit(ETC1(splitter="best", random_state=0), X, y),
        X,
    )
    out["ExtraTreeRegressor(splitter='best') trained without NaN"] = (
        fit(ETR1(splitter="best", random_state=0), X, X[:, 0]),
        X,
    )
    return out


@pytest.fixture(scope="module")
def nan_models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("nan")
    return {
        name: (est, load_variant(est, "joblib", directory), X)
        for name, (est, X) in _nan_models().items()
    }


NAN_MODEL_NAMES = [
    f"{base} trained {tag}"
    for tag in ("without NaN", "with NaN")
    for base in (
        "DecisionTreeClassifier",
        "DecisionTreeRegressor(max_leaf_nodes=12)",
        "ExtraTreeRegressor",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor(categorical)",
    )
] + [
    "IsolationForest trained without NaN",
    "GradientBoostingClassifier trained without NaN",
    "ExtraTreeClassifier(splitter='best') trained without NaN",
    "ExtraTreeRegressor(splitter='best') trained without NaN",
]


@pytest.mark.parametrize("layout", ["c-f64", "f32"])
@pytest.mark.parametrize("name", NAN_MODEL_NAMES)
def test_nan_rows(name, layout, nan_models):
    """NaN follows missing_go_to_left (learnt when training had NaN, else
    the child with more samples); GradientBoosting refuses NaN with
    scikit-learn's message."""
    est, model, X = nan_models[name]
    rows = nan_rows(np.nan_to_num(X[:20]))
    lay = make_layout(rows, layout)
    ctx = where(estimator=name, variant="joblib", layout=layout, rows=len(rows))
    check_same_or_same_error(model, est, lay.fast, lay.reference, context=ctx)
    # one row at a time and a group and a half: a lone row walks apart from
    # the groups of eight, and NaN must follow the same rule there
    for i in list(range(0, len(rows), 10)) + [len(rows) - 3, len(rows) - 1]:
        for stop in (i + 1, i + 12):
            one = make_layout(rows[i:stop], layout)
            check_same_or_same_error(
                model, est, one.fast, one.reference, context=f"{ctx} | rows {i}:{stop}"
            )


# -- categorical values at predict time ----------------------------------------------------


def categorical_rows(X: np.ndarray) -> Dict[str, np.ndarray]:
    """Rows whose categorical columns hold values the encoder must route the
    missing way (unknown), and known ones written differently (-0.0)."""
    base = np.nan_to_num(X[:6])

    def put(col, values):
        rows = np.repeat(base, len(values), axis=0)
        rows[:, col] = np.tile(values, len(base))
        return rows

    return {
        "known": put(0, CAT0_VALUES),
        "known-col1": put(1, CAT1_VALUES),
        "unseen": put(0, [8.0, 9.0, 42.0, 255.0, 256.0, 264.0, 1e10]),
        "unseen-col1": put(1, [0.0, 1.0, 3.0, 299.0, 301.0, 1000.5, 2**40]),
        "negative": put(0, [-1.0, -2.0, -0.5, -255.0, -256.0, -1e10]),
        "negative-col1-known-and-not": put(1, [-3.0, -1.0, -2.0, -4.0]),
        "non-integer": put(0, [0.5, 1.5, 2.0000000000000004, 3.999999999999999, 6.25]),
        "non-integer-col1": put(1, [2.5, 4.999999999999999, 300.00000000000006]),
        "minus-zero": put(0, [-0.0]),
        "nan": put(0, [np.nan]),
        "nan-both": put(0, [np.nan])
        + np.where(np.isin(np.arange(N_FEATURES), CAT_COLUMNS), np.nan, 0.0),
    }


def _categorical_models():
    out = {}
    for missing in (0.0, 0.1):
        tag = "NaN in training" if missing else "no NaN in training"
        for cls, task in ((HGBC, "binary"), (HGBC, "multiclass"), (HGBR, "regression")):
            X, y, _ = hgb_data(task, seed=100, categorical=True, missing=missing)
            est = fit(cls(max_iter=12, categorical_features=list(CAT_COLUMNS)), X, y)
            out[f"{cls.__name__}({task}, {tag})"] = (est, X)
    return out


@pytest.fixture(scope="module")
def categorical_models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("categorical")
    return {
        name: (est, load_variant(est, "joblib", directory), X)
        for name, (est, X) in _categorical_models().items()
    }


CATEGORICAL_MODEL_NAMES = [
    f"{cls}({task}, {tag})"
    for tag in ("no NaN in training", "NaN in training")
    for cls, task in (
        ("HistGradientBoostingClassifier", "binary"),
        ("HistGradientBoostingClassifier", "multiclass"),
        ("HistGradientBoostingRegressor", "regression"),
    )
]
CATEGORICAL_ROW_KINDS = list(categorical_rows(np.zeros((6, N_FEATURES))))


@pytest.mark.parametrize("kind", CATEGORICAL_ROW_KINDS)
@pytest.mark.parametrize("name", CATEGORICAL_MODEL_NAMES)
def test_categorical_values(name, kind, categorical_models):
    est, model, X = categorical_models[name]
    rows = categorical_rows(X)[kind]
    ctx = where(
        estimator=name,
        categorical_features=list(CAT_COLUMNS),
        rows_kind=kind,
        variant="joblib",
        layout="c-f64",
        rows=len(rows),
    )
    check_same_or_same_error(model, est, rows, context=ctx)


@pytest.mark.parametrize("value", [np.inf, -np.inf], ids=["inf", "-inf"])
@pytest.mark.parametrize("name", CATEGORICAL_MODEL_NAMES[:1] + CATEGORICAL_MODEL_NAMES[-1:])
def test_categorical_infinity(name, value, categorical_models):
    """Infinity in a categorical column: scikit-learn's encoder refuses it
    ("Input contains infinity or a value too large for dtype('float64')."),
    while a numeric column of the same model takes it."""
    est, model, X = categorical_models[name]
    for col in (0, 1, 3):
        rows = np.nan_to_num(X[:5]).copy()
        rows[2, col] = value
        ctx = where(
            estimator=name,
            column=col,
            categorical=col in CAT_COLUMNS,
            value=value,
            variant="joblib",
            layout="c-f64",
            rows=len(rows),
        )
        check_same_or_same_error(model, est, rows, context=ctx)


# -- input layouts --------------------------------------------------------------------


def _layout_models():
    out = {}
    X, y, X_new = classification_data(3, "str", seed=110)
    out["RandomForestClassifier(10)-str-labels"] = (
        fit(RFC(n_estimators=10, random_state=0), X, y),
        X_new,
    )
    X, y, X_new = regression_data(n_targets=2, seed=111)
    out["DecisionTreeRegressor-multioutput"] = (fit(DTR(random_state=0), X, y), X_new)
    X, y, X_new = classification_data(3, "int", seed=112)
    out["GradientBoostingClassifier(10)-3classes"] = (
        fit(GBC(n_estimators=10, random_state=0), X, y),
        X_new,
    )
    X, y, X_new = hgb_data("regression", seed=113, categorical=True, missing=0.1)
    out["HistGradientBoostingRegressor-categorical-NaN"] = (
        fit(HGBR(max_iter=10, categorical_features=list(CAT_COLUMNS)), X, y),
        X_new,
    )
    X, X_new = isolation_data(seed=114)
    out["IsolationForest(10, max_features=0.5)"] = (
        fit(IF(n_estimators=10, max_features=0.5, random_state=0), X),
        X_new,
    )
    return out


@pytest.fixture(scope="module")
def layout_models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("layouts")
    return {
        name: (est, load_variant(est, "joblib", directory), X_new)
        for name, (est, X_new) in _layout_models().items()
    }


LAYOUT_MODEL_NAMES = [
    "RandomForestClassifier(10)-str-labels",
    "DecisionTreeRegressor-multioutput",
    "GradientBoostingClassifier(10)-3classes",
    "HistGradientBoostingRegressor-categorical-NaN",
    "IsolationForest(10, max_features=0.5)",
]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", LAYOUT_MODEL_NAMES)
def test_input_layout(name, layout, layout_models):
    """Float32, float16, integer and bool input, F order, strided, negative
    strides, big-endian, misaligned, lists, DataFrames: the same answers."""
    est, model, X_new = layout_models[name]
    if layout == "bool" and "categorical" in name:
        # scikit-learn's own encoder fails on bool input ("y contains
        # previously unseen labels: np.True_"): no oracle to compare with
        pytest.skip("scikit-learn cannot encode bool categorical input")
    if layout in ("int64", "int32", "uint8", "bool"):
        X_new = np.nan_to_num(X_new)  # NaN has no integer value
    for n_rows in (1, 3, len(X_new)):
        lay = make_layout(X_new[:n_rows], layout)
        ctx = where(
            estimator=name,
            variant="joblib",
            layout=layout,
            rows=1 if layout == "row-1d" else n_rows,
        )
        check_methods(model, est, lay.fast, lay.reference, context=ctx)
        if layout == "row-1d":
            break


# -- large batches and threads ------------------------------------------------------------

BIG_ROWS = 120_000


def _big_models():
    out = {}
    X, y, _ = classification_data(3, "str", seed=120, n_fit=1500)
    out["RandomForestClassifier(100)-str-labels"] = (
        fit(RFC(n_estimators=100, min_samples_leaf=3, random_state=0, n_jobs=2), X, y),
        X,
    )
    Xh, yh, _ = hgb_data("regression", seed=121, categorical=True, missing=0.05)
    out["HistGradientBoostingRegressor(100)-categorical-NaN"] = (
        fit(HGBR(max_iter=100, categorical_features=list(CAT_COLUMNS)), Xh, yh),
        Xh,
    )
    return out


@pytest.fixture(scope="module")
def big_models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("big")
    return {
        name: (est, load_variant(est, "joblib", directory), X)
        for name, (est, X) in _big_models().items()
    }


@pytest.mark.parametrize(
    "name",
    [
        "RandomForestClassifier(100)-str-labels",
        "HistGradientBoostingRegressor(100)-categorical-NaN",
    ],
)
def test_large_batch(name, big_models):
    """More than 100,000 rows through 100 trees: the GIL-released,
    multi-threaded path; answers equal sklearn's and do not depend on the
    number of threads."""
    est, model, X = big_models[name]
    rng = np.random.default_rng(122)
    rows = X[rng.integers(0, len(X), BIG_ROWS)]
    noisy = (
        ~np.isin(np.arange(N_FEATURES), CAT_COLUMNS)
        if "categorical" in name
        else np.ones(N_FEATURES, dtype=bool)
    )
    rows[:, noisy] += rng.normal(0, 0.05, (BIG_ROWS, int(noisy.sum())))
    methods = [m for m in ("predict", "predict_proba") if hasattr(est, m)]
    check_across_threads(
        model, est, rows, methods, where(estimator=name, variant="joblib", rows=BIG_ROWS)
    )


def test_threads_concurrent_calls_and_fork(big_models):
    """The helper threads are kept between calls: calls from several Python
    threads at once (one has the pool, the others run alone), a refusal in
    a late block, and a forked child (gunicorn's workers: no helpers there
    until it starts its own) all give the same answers as one thread."""
    import os
    import threading

    est, model, X = big_models["RandomForestClassifier(100)-str-labels"]
    rows = np.ascontiguousarray(X[np.random.default_rng(123).integers(0, len(X), 5000)])
    before = mlfast.get_num_threads()
    try:
        mlfast.set_num_threads(1)
        alone = model.predict_proba(rows)
        mlfast.set_num_threads(2)
        np.testing.assert_array_equal(model.predict_proba(rows), alone, strict=True)
        results, errors = {}, []

        def call(i):
            try:
                for _ in range(5):
                    results[i] = model.predict_proba(rows[i * 100 :])
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        for i in range(4):
            np.testing.assert_array_equal(results[i], alone[i * 100 :], strict=True)
        late = rows.copy()
        late[-1, 0] = np.inf  # refused, with scikit-learn's message, from the last block
        with pytest.raises(ValueError, match="infinity"):
            model.predict(late)
        np.testing.assert_array_equal(model.predict_proba(rows), alone, strict=True)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            ok = 1
            try:
                ok = int(not np.array_equal(model.predict_proba(rows), alone))
            finally:
                os._exit(ok)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    finally:
        mlfast.set_num_threads(before)


# -- input errors ----------------------------------------------------------------------------

F32_MAX = float(np.finfo(np.float32).max)


def _bad_inputs():
    rng = np.random.default_rng(130)
    X = rng.normal(size=(5, N_FEATURES))

    def with_value(value, dtype=np.float64, col=3):
        a = X.astype(dtype)
        a[2, col] = value
        return a

    return {
        "nan": with_value(np.nan),
        "nan-float32": with_value(np.nan, np.float32),
        "inf": with_value(np.inf),
        "-inf": with_value(-np.inf),
        "inf-float32": with_value(np.inf, np.float32),
        "inf-float16": with_value(np.inf, np.float16),
        "1e300 (float32 inf)": with_value(1e300),
        "-1e39 (float32 -inf)": with_value(-1e39),
        "float32-max": with_value(F32_MAX),
        "float32-max+2^102 (rounds to max)": with_value(F32_MAX + 2.0**102),
        "float32-max+2^103 (ties to inf)": with_value(F32_MAX + 2.0**103),
        "nan-and-inf": np.where(
            np.arange(5 * N_FEATURES).reshape(5, N_FEATURES) == 1, np.inf, with_value(np.nan)
        ),
        "inf-then-nan": np.where(
            np.arange(5 * N_FEATURES).reshape(5, N_FEATURES) == 29, np.nan, with_value(np.inf)
        ),
        "row-all-nan": np.vstack([X, np.full((1, N_FEATURES), np.nan)]),
        "5-features": X[:, :5],
        "zero-rows": np.empty((0, N_FEATURES)),
        "str-array": X.astype(str),
    }


BAD_INPUTS = _bad_inputs()


def _error_models():
    out = {}
    X, y, _ = classification_data(2, "int", seed=131)
    Xr, yr, _ = regression_data(seed=132)
    out["DecisionTreeClassifier"] = fit(DTC(random_state=0), X, y)
    out["ExtraTreeRegressor"] = fit(ETR1(random_state=0), Xr, yr)
    out["RandomForestClassifier"] = fit(RFC(n_estimators=5, random_state=0), X, y)
    out["ExtraTreesRegressor"] = fit(ETR(n_estimators=5, random_state=0), Xr, yr)
    out["GradientBoostingClassifier"] = fit(GBC(n_estimators=5, random_state=0), X, y)
    out["GradientBoostingRegressor"] = fit(GBR(n_estimators=5, random_state=0), Xr, yr)
    out["HistGradientBoostingClassifier"] = fit(HGBC(max_iter=5), X, y)
    out["IsolationForest"] = fit(IF(n_estimators=5, random_state=0), X)
    out["Pipeline(StandardScaler, RandomForestClassifier)"] = fit(
        Pipeline([("s", StandardScaler()), ("f", RFC(n_estimators=5, random_state=0))]), X, y
    )
    out["Pipeline(StandardScaler, GradientBoostingClassifier)"] = fit(
        Pipeline([("s", StandardScaler()), ("g", GBC(n_estimators=5, random_state=0))]), X, y
    )
    out["Pipeline(SimpleImputer, DecisionTreeRegressor)"] = fit(
        Pipeline([("i", SimpleImputer()), ("t", DTR(random_state=0))]), Xr, yr
    )
    out["Pipeline(MinMaxScaler, IsolationForest)"] = fit(
        Pipeline([("s", MinMaxScaler()), ("i", IF(n_estimators=5, random_state=0))]), X
    )
    return out


@pytest.fixture(scope="module")
def error_models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("errors")
    return {
        name: (est, load_variant(est, "joblib", directory)) for name, est in _error_models().items()
    }


ERROR_MODEL_NAMES = [
    "DecisionTreeClassifier",
    "ExtraTreeRegressor",
    "RandomForestClassifier",
    "ExtraTreesRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
    "HistGradientBoostingClassifier",
    "IsolationForest",
    "Pipeline(StandardScaler, RandomForestClassifier)",
    "Pipeline(StandardScaler, GradientBoostingClassifier)",
    "Pipeline(SimpleImputer, DecisionTreeRegressor)",
    "Pipeline(MinMaxScaler, IsolationForest)",
]


@pytest.mark.parametrize("bad", list(BAD_INPUTS))
@pytest.mark.parametrize("name", ERROR_MODEL_NAMES)
def test_input_error(name, bad, error_models):
    """Same exception type and text as scikit-learn: infinity where the
    float32 cast of scikit-learn's trees refuses it ("Input X contains
    infinity or a value too large for dtype('float32')."), a float64 too
    large for float32, NaN for GradientBoosting; where scikit-learn accepts
    the input the answers must agree instead."""
    est, model = error_models[name]
    ctx = where(estimator=name, input=bad, variant="joblib")
    check_same_or_same_error(model, est, BAD_INPUTS[bad], context=ctx)


# -- representatives of the shared runs (test_parity_shared.py) -------------------------


def representatives() -> Dict[str, Callable[[], Representative]]:
    """One model of each tree family (and a pipeline, and multi-output
    classifiers) for every file variant, pickling, inspect and repr; the
    file of each shows the tree class its state holds."""
    tree_class = ("sklearn.tree._tree.Tree",)
    predictor = ("TreePredictor",)

    def on(make, data, shows=tree_class):
        def make_model():
            X, y, X_new = data()
            return Representative(fit(make(), X, y), X_new, shows=shows)

        return make_model

    def clf(labels, seed):
        return lambda: classification_data(3, labels, seed=seed)

    def reg2(seed):
        return lambda: regression_data(n_targets=2, seed=seed)

    def multioutput(seed):
        def data():
            X, y, X_new = classification_data(3, "int", seed=seed)
            return X, multioutput_labels(y, X, "str"), X_new

        return data

    def isolation():
        X, X_new = isolation_data(seed=153)
        return X, None, X_new

    def pipeline():
        est, X_new = fit_pipeline("Pipeline(SimpleImputer, StandardScaler, RandomForestClassifier)")
        return Representative(est, X_new, shows=tree_class)

    return {
        "DecisionTreeClassifier(max_leaf_nodes=15)": on(
            lambda: DTC(max_leaf_nodes=15, random_state=0), clf("str", 150)
        ),
        "ExtraTreeRegressor-multioutput": on(lambda: ETR1(random_state=0), reg2(151)),
        "RandomForestClassifier(10, max_features=0.5)-str-labels": on(
            lambda: RFC(n_estimators=10, max_features=0.5, random_state=0), clf("str", 140)
        ),
        "ExtraTreesRegressor(10)-multioutput": on(
            lambda: ETR(n_estimators=10, random_state=0), reg2(151)
        ),
        "GradientBoostingClassifier(10)-multiclass-object-labels": on(
            lambda: GBC(n_estimators=10, random_state=0), clf("object", 142)
        ),
        "GradientBoostingRegressor(10, quantile)": on(
            lambda: GBR(n_estimators=10, loss="quantile", random_state=0),
            lambda: regression_data(seed=151),
        ),
        "HistGradientBoostingClassifier-categorical-NaN": on(
            lambda: HGBC(max_iter=10, categorical_features=list(CAT_COLUMNS)),
            lambda: hgb_data("multiclass", seed=141, categorical=True, missing=0.05),
            predictor,
        ),
        "HistGradientBoostingRegressor(poisson)": on(
            lambda: HGBR(max_iter=10, loss="poisson"),
            lambda: hgb_data("positive", seed=152),
            predictor,
        ),
        "IsolationForest(10)": on(lambda: IF(n_estimators=10, random_state=0), isolation),
        "Pipeline(SimpleImputer, StandardScaler, RandomForestClassifier)": pipeline,
        "DecisionTreeClassifier-multioutput-str": on(lambda: DTC(random_state=0), multioutput(161)),
        "RandomForestClassifier(7)-multioutput-str": on(
            lambda: RFC(n_estimators=7, random_state=0), multioutput(161)
        ),
    }


def test_every_registered_tree_estimator_is_covered():
    from mlfast._builders import _REGISTRY

    tree_names = {
        name
        for name, (package, fn) in _REGISTRY.items()
        if package in ("sklearn.tree", "sklearn.ensemble")
        and fn.__module__ == "mlfast._builders.trees"
    }
    covered = {
        c.name
        for c in TREE_CLASSIFIER_CASES
        + TREE_REGRESSOR_CASES
        + FOREST_CLASSIFIER_CASES
        + FOREST_REGRESSOR_CASES
        + GB_CLASSIFIER_CASES
        + GB_REGRESSOR_CASES
        + HGB_CLASSIFIER_CASES
        + HGB_REGRESSOR_CASES
        + ISOLATION_CASES
    }
    missing = tree_names - covered
    assert not missing, f"tree estimators without a parity case: {sorted(missing)}"


# -- multi-output classification ------------------------------------------------------


def multioutput_labels(y: np.ndarray, X: np.ndarray, kind: str) -> np.ndarray:
    """Three outputs with 3, 2 and 4 classes (two binary ones for bool)."""
    outputs = [
        y,
        (X[:, 1] > 0).astype(np.int64),
        np.digitize(X[:, 2], np.quantile(X[:, 2], [0.25, 0.5, 0.75])),
    ]
    if kind == "bool":
        outputs = [(y > 0).astype(np.int64), outputs[1]]
    return relabel(np.column_stack(outputs), kind)


MULTIOUTPUT_CLASSIFIER_CASES = [
    _c(DTC, n_classes=(3,)),
    _c(DTC, max_leaf_nodes=12, check=not_preorder, n_classes=(3,)),
    _c(DTC, class_weight="balanced", n_classes=(3,)),
    _c(ETC1, n_classes=(3,)),
    _c(RFC, n_estimators=7, n_classes=(3,)),
    _c(RFC, n_estimators=7, bootstrap=False, max_features=None, n_classes=(3,)),
    _c(ETC, n_estimators=7, n_classes=(3,)),
    _c(RFC, n_estimators=5, n_classes=(3,), data=dict(missing=0.1)),
]


@pytest.mark.parametrize("labels", ["int", "str", "object", "float", "bool"])
@pytest.mark.parametrize("case", MULTIOUTPUT_CLASSIFIER_CASES, ids=lambda c: c.id)
def test_multioutput_classifier(case, labels, tmp_path):
    """A classifier fitted on a 2-D y: predict gives one label column per
    output, predict_proba and predict_log_proba a list of arrays, classes_
    a list."""
    X, y, X_new = classification_data(3, "int", seed=160, **case.data)
    Y = multioutput_labels(y, np.nan_to_num(X), labels)
    run_case(
        case, X, Y, X_new, tmp_path, labels=f"{labels}, y.shape={Y.shape}", data=case.data or None
    )


# -- what is not served ------------------------------------------------------------------


def test_gradient_boosting_custom_init_is_unsupported(tmp_path):
    """init= an estimator other than the Dummy default or 'zero'."""
    X, y, _ = regression_data(seed=161)
    est = fit(GBR(n_estimators=5, init=LinearRegression(), random_state=0), X, y)
    with pytest.raises(mlfast.MlfastError) as err:
        load_variant(est, "joblib", tmp_path)
    assert isinstance(err.value, mlfast.UnsupportedModelError), repr(err.value)
    assert "init_" in str(err.value), str(err.value)
