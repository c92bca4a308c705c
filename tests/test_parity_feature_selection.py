"""Differential tests: feature selectors (each its support mask) and RFE's
predictions through its estimator_.

scikit-learn is the oracle: transform (and RFE's predict, predict_proba,
decision_function) on float64, float32 and integer rows; NaN refused or
passed as the selector's allow_nan tag says.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_selection import (
    RFE,
    RFECV,
    GenericUnivariateSelect,
    SelectFdr,
    SelectFpr,
    SelectFromModel,
    SelectFwe,
    SelectKBest,
    SelectPercentile,
    SequentialFeatureSelector,
    VarianceThreshold,
    chi2,
    f_regression,
    mutual_info_classif,
)
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from support.families import check, fit, quietly
from support.variants import load_variant

import mlfast
from mlfast.errors import ModelFormatError, UnsupportedModelError


def classification(seed=0):
    X, y = make_classification(220, 12, n_informative=4, n_redundant=2, random_state=seed)
    X[:, 3] *= 0.1
    X_new = np.random.RandomState(seed + 1).randn(40, 12) * 2
    return X[:200], y[:200], X_new


SELECTORS = [
    ("VarianceThreshold", lambda: VarianceThreshold(0.5)),
    ("SelectKBest(k=3)", lambda: SelectKBest(k=3)),
    ("SelectKBest(all)", lambda: SelectKBest(k="all")),
    ("SelectKBest(mutual_info)", lambda: SelectKBest(mutual_info_classif, k=4)),
    ("SelectPercentile(35)", lambda: SelectPercentile(percentile=35)),
    ("SelectPercentile(100)", lambda: SelectPercentile(percentile=100)),
    ("SelectFpr", lambda: SelectFpr(alpha=0.01)),
    ("SelectFdr", lambda: SelectFdr(alpha=0.01)),
    ("SelectFwe", lambda: SelectFwe(alpha=0.01)),
    ("GenericUnivariateSelect(k_best)", lambda: GenericUnivariateSelect(mode="k_best", param=5)),
    (
        "GenericUnivariateSelect(percentile)",
        lambda: GenericUnivariateSelect(mode="percentile", param=20),
    ),
    ("GenericUnivariateSelect(fdr)", lambda: GenericUnivariateSelect(mode="fdr", param=0.05)),
    ("GenericUnivariateSelect(fwe)", lambda: GenericUnivariateSelect(mode="fwe", param=0.05)),
    ("SelectFromModel(LogisticRegression)", lambda: SelectFromModel(LogisticRegression())),
    (
        "SelectFromModel(l1)",
        lambda: SelectFromModel(LogisticRegression(penalty="l1", solver="liblinear", C=0.05)),
    ),
    (
        "SelectFromModel(median, max_features)",
        lambda: SelectFromModel(LogisticRegression(), threshold="1.5*median", max_features=3),
    ),
    (
        "SelectFromModel(threshold=0.2)",
        lambda: SelectFromModel(LogisticRegression(), threshold=0.2),
    ),
    (
        "SelectFromModel(forest)",
        lambda: SelectFromModel(RandomForestClassifier(10, random_state=0)),
    ),
    (
        "SelectFromModel(tree, median)",
        lambda: SelectFromModel(
            __import__("sklearn.tree").tree.DecisionTreeClassifier(max_depth=4, random_state=0),
            threshold="median",
        ),
    ),
    ("RFE", lambda: RFE(LogisticRegression(), n_features_to_select=4)),
    ("RFE(step=3)", lambda: RFE(LogisticRegression(), n_features_to_select=5, step=3)),
    ("RFE(forest)", lambda: RFE(RandomForestClassifier(6, random_state=0), n_features_to_select=5)),
    ("RFECV", lambda: RFECV(LogisticRegression(), cv=3)),
    (
        "SequentialFeatureSelector",
        lambda: SequentialFeatureSelector(LogisticRegression(), n_features_to_select=3, cv=3),
    ),
    (
        "SequentialFeatureSelector(backward, HGB)",
        lambda: SequentialFeatureSelector(
            HistGradientBoostingClassifier(max_iter=3),
            n_features_to_select=9,
            direction="backward",
            cv=2,
        ),
    ),
]


@pytest.mark.parametrize("name,make", SELECTORS, ids=[s[0] for s in SELECTORS])
def test_selector(name, make, tmp_path):
    X, y, X_new = classification()
    est = fit(make(), X, y)
    model = load_variant(est, "joblib", tmp_path)
    check(model, est, X_new, name)
    assert model.transform(X_new).shape[1] == int(est.get_support().sum())
    # NaN: refused or passed through as scikit-learn does
    bad = X_new.copy()
    bad[2, :] = np.nan
    try:
        expected = quietly(est.transform, bad)
    except ValueError:
        with pytest.raises(ValueError):
            model.transform(bad)
    else:
        np.testing.assert_array_equal(model.transform(bad), expected)


@pytest.mark.parametrize("variant", ["pickle-p2", "compile"])
def test_variants_and_pipeline(variant, tmp_path):
    X, y, X_new = classification(3)
    est = fit(make_pipeline(StandardScaler(), SelectKBest(k=5), LogisticRegression()), X, y)
    check(load_variant(est, variant, tmp_path), est, X_new, f"Pipeline(KBest) | {variant}")


def test_regression_selectors(tmp_path):
    X, y = make_regression(150, 8, n_informative=3, random_state=0)
    X_new = np.random.RandomState(2).randn(20, 8)
    for est in (
        SelectKBest(f_regression, k=2),
        SelectFromModel(Lasso(alpha=1.0)),
        RFE(LinearRegression(), n_features_to_select=3),
    ):
        est = fit(est, X, y)
        check(load_variant(est, "joblib", tmp_path), est, X_new, repr(est))


def test_chi2_scores(tmp_path):
    X, y, X_new = classification(4)
    est = fit(SelectKBest(chi2, k=4), np.abs(X), y)
    check(load_variant(est, "joblib", tmp_path), est, np.abs(X_new), "SelectKBest(chi2)")


def test_no_feature_selected_is_refused():
    X, y, _ = classification(5)
    est = fit(SelectFwe(alpha=1e-300), X, y)
    assert not est.get_support().any()
    with pytest.raises(UnsupportedModelError, match="no feature is selected"):
        mlfast.loads(pickle.dumps(est))


def test_hostile_masks():
    X, y, _ = classification(6)
    est = fit(RFE(LogisticRegression(), n_features_to_select=4), X, y)
    est.support_ = est.support_[:5]
    with pytest.raises(ModelFormatError):
        mlfast.loads(pickle.dumps(est))
    est = fit(SequentialFeatureSelector(LogisticRegression(), n_features_to_select=2, cv=2), X, y)
    est.support_ = est.support_.astype(np.float64)
    with pytest.raises(ModelFormatError, match="support_"):
        mlfast.loads(pickle.dumps(est))
    est = fit(SelectKBest(k=3), X, y)
    est.k = 50
    with pytest.raises(ModelFormatError, match="k is 50"):
        mlfast.loads(pickle.dumps(est))
