"""Linear models: raw = X @ coef_.T + intercept_, then each class's rules."""

from __future__ import annotations

from typing import Optional

import numpy as np

from mlfast._builders import Builders, Node, classifier, register, regressor
from mlfast._builders.ir import Accept, Built, Cols, LabelRule, Linear, ProbaRule
from mlfast._builders.text import SparseCols, sparse_product

# LinearModel subclasses whose predict is X @ coef_.T + intercept_.
REGRESSORS = (
    "LinearRegression",
    "Ridge",
    "RidgeCV",
    "Lasso",
    "LassoCV",
    "ElasticNet",
    "ElasticNetCV",
    "MultiTaskLasso",
    "MultiTaskLassoCV",
    "MultiTaskElasticNet",
    "MultiTaskElasticNetCV",
    "Lars",
    "LarsCV",
    "LassoLars",
    "LassoLarsCV",
    "LassoLarsIC",
    "OrthogonalMatchingPursuit",
    "OrthogonalMatchingPursuitCV",
    "BayesianRidge",
    "ARDRegression",
    "HuberRegressor",
    "QuantileRegressor",
    "TheilSenRegressor",
    "SGDRegressor",
    "PassiveAggressiveRegressor",
)

# LinearClassifierMixin subclasses.
CLASSIFIERS = (
    "LogisticRegression",
    "LogisticRegressionCV",
    "SGDClassifier",
    "Perceptron",
    "PassiveAggressiveClassifier",
    "RidgeClassifier",
    "RidgeClassifierCV",
)


def _coef(node: Node):
    """coef_ as a (k, d) float64 matrix, whether coef_ was 1-D, and whether
    scikit-learn's product would stay in float32 for float32 input."""
    coef = node.array("coef_", ndim=(1, 2), kinds="f")
    raw_1d = coef.ndim == 1
    matrix = np.ascontiguousarray(np.atleast_2d(coef), dtype=np.float64)
    if matrix.shape[0] < 1 or matrix.shape[1] < 1:
        raise node.fail(f"coef_ has shape {coef.shape}, expected at least one weight")
    intercept_value = node.get("intercept_")
    intercept = node.vector("intercept_", matrix.shape[0])
    # X(float32) @ coef_(float32) stays float32; a float64 intercept_ array or
    # numpy float64 scalar promotes it, a plain Python float does not.
    f32 = coef.dtype == np.float32 and (
        type(intercept_value) is float
        or (
            isinstance(intercept_value, (np.ndarray, np.floating))
            and intercept_value.dtype == np.float32
        )
    )
    return matrix, intercept, raw_1d, f32


def _raw(node: Node, b: Builders, X: Optional[Cols], coef, intercept, f32: bool):
    """The linear op over X: its scores, and the number of features."""
    if isinstance(X, SparseCols):
        return sparse_product(node, b, X, coef, intercept), coef.shape[1]
    n = node.n_features(coef.shape[1])
    X = b.input(node, X, n)
    raw = b.add(
        node,
        Linear(coef=coef, intercept=intercept, f32=f32),
        X,
        coef.shape[0],
        accept=Accept.FINITE,
    )
    return raw, n


@register("sklearn.linear_model", *REGRESSORS)
@register("sklearn.svm", "LinearSVR")
def build_linear_regressor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    coef, intercept, raw_1d, f32 = _coef(node)
    raw, n = _raw(node, b, X, coef, intercept, f32)
    return regressor(node, raw, n, raw_1d=raw_1d)


def _classes(node: Node) -> np.ndarray:
    if node.name.startswith("RidgeClassifier") and "classes_" not in node.state:
        # RidgeClassifier.classes_ is a property over its label binarizer
        binarizer = node.get("_label_binarizer")
        state = getattr(binarizer, "state", None)
        if not isinstance(state, dict) or "classes_" not in state:
            raise node.fail("_label_binarizer has no classes_")
        if str(state.get("y_type_", "")).startswith("multilabel"):
            raise node.fail("multilabel RidgeClassifier is not supported")
        classes = state["classes_"]
    else:
        classes = node.get("classes_")
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size < 2:
        raise node.fail("classes_ must be a 1-D array of at least two labels")
    if classes.dtype.kind not in "biufUSO":
        raise node.fail(f"classes_ has dtype {classes.dtype}")
    return np.ascontiguousarray(classes)


def _logistic_proba(node: Node, n_classes: int) -> Optional[int]:
    multi_class = node.state.get("multi_class")
    if multi_class is None:
        # scikit-learn >= 1.8: binary is one-vs-rest, multiclass multinomial
        return ProbaRule.EXPIT_OVR if n_classes <= 2 else ProbaRule.SOFTMAX
    solver = node.state.get("solver")
    # 'auto' meant one-vs-rest for liblinear, and in 1.2-1.5 for
    # newton-cholesky too (it had no multinomial mode yet)
    ovr_solver = solver == "liblinear" or (
        solver == "newton-cholesky" and (1, 2) <= node.version < (1, 6)
    )
    ovr = multi_class in ("ovr", "warn") or (
        multi_class in ("auto", "deprecated") and (n_classes <= 2 or ovr_solver)
    )
    if ovr:
        return ProbaRule.EXPIT_OVR
    return ProbaRule.SOFTMAX_BINARY if n_classes == 2 else ProbaRule.SOFTMAX


def _sgd_proba(node: Node) -> Optional[int]:
    loss = node.state.get("loss")
    if loss in ("log_loss", "log"):
        return ProbaRule.EXPIT_OVR
    if loss == "modified_huber":
        return ProbaRule.MODIFIED_HUBER
    return None


@register("sklearn.linear_model", *CLASSIFIERS)
@register("sklearn.svm", "LinearSVC")
def build_linear_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    coef, intercept, _, f32 = _coef(node)
    classes = _classes(node)
    k = classes.size
    if k == 2 and coef.shape[0] == 1:
        label_rule, raw_1d = LabelRule.THRESHOLD, True
    elif k > 2 and coef.shape[0] == k:
        label_rule, raw_1d = LabelRule.ARGMAX, False
    else:
        raise node.fail(f"coef_ has {coef.shape[0]} rows for {k} classes")
    if node.name.startswith("LogisticRegression"):
        proba = _logistic_proba(node, k)
    elif node.name == "SGDClassifier":
        proba = _sgd_proba(node)
    else:
        proba = None
    raw, n = _raw(node, b, X, coef, intercept, f32)
    return classifier(
        node, b, raw, classes, n, label_rule=label_rule, proba_rule=proba, raw_1d=raw_1d
    )
