"""Feature selection: each selector is its support mask, a subset of columns.

The mask is what ``_get_support_mask`` computes from the fitted state
(``support_``, ``variances_``, ``scores_``, ``pvalues_``, a model's
``coef_``), recomputed here with numpy in scikit-learn's order of operations.
The score functions the univariate selectors name (``f_classif``, ...) are
inert names: they were called at fit time and never are again.
``transform`` returns the selected columns in X's own dtype, after the
check of non-finite values the selector makes (its ``allow_nan`` tag).
RFE and RFECV also predict with their ``estimator_`` over those columns.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from mlfast._builders import Builders, Node, register
from mlfast._builders.ir import Accept, Built, Check, Cols, Out, Strings
from mlfast._core import Record
from mlfast.errors import ModelFormatError, UnsupportedModelError


def _clean_nans(scores: np.ndarray) -> np.ndarray:
    scores = np.array(scores, dtype=np.float64 if scores.dtype.kind != "f" else scores.dtype)
    scores[np.isnan(scores)] = np.finfo(scores.dtype).min
    return scores


def _number(node: Node, key: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise node.fail(f"{key} is {value!r}, expected a number")
    return float(value)


def _kbest(node: Node, scores: np.ndarray, k: Any) -> np.ndarray:
    if k == "all":
        return np.ones(scores.shape, dtype=bool)
    if (
        isinstance(k, (bool, np.bool_))
        or not isinstance(k, (int, np.integer))
        or not 0 <= k <= scores.size
    ):
        raise node.fail(f"k is {k!r}, expected 'all' or an integer in [0, {scores.size}]")
    mask = np.zeros(scores.shape, dtype=bool)
    if k:
        mask[np.argsort(_clean_nans(scores), kind="mergesort")[-int(k) :]] = 1
    return mask


def _percentile(node: Node, scores: np.ndarray, percentile: Any) -> np.ndarray:
    percentile = _number(node, "percentile", percentile)
    if percentile == 100:
        return np.ones(len(scores), dtype=bool)
    if percentile == 0:
        return np.zeros(len(scores), dtype=bool)
    if not 0 < percentile < 100:
        raise node.fail(f"percentile is {percentile!r}")
    scores = _clean_nans(scores)
    threshold = np.percentile(scores, 100 - percentile)
    mask = scores > threshold
    ties = np.where(scores == threshold)[0]
    if len(ties):
        max_feats = int(len(scores) * percentile / 100)
        kept_ties = ties[: max_feats - mask.sum()]
        mask[kept_ties] = True
    return mask


def _fdr(node: Node, pvalues: np.ndarray, alpha: float) -> np.ndarray:
    n_features = len(pvalues)
    sv = np.sort(pvalues)
    selected = sv[sv <= float(alpha) / n_features * np.arange(1, n_features + 1)]
    if selected.size == 0:
        return np.zeros_like(pvalues, dtype=bool)
    return pvalues <= selected.max()


def _univariate(node: Node, mode: str, param: Any) -> np.ndarray:
    if mode in ("k_best", "percentile"):
        scores = node.array("scores_", ndim=(1,), kinds="fiub")
        return _kbest(node, scores, param) if mode == "k_best" else _percentile(node, scores, param)
    pvalues = node.array("pvalues_", ndim=(1,), kinds="fiub")
    alpha = _number(node, "alpha", param)
    if mode == "fpr":
        return pvalues < alpha
    if mode == "fwe":
        return pvalues < alpha / len(pvalues)
    return _fdr(node, pvalues, alpha)


_MODES = {
    "SelectKBest": ("k_best", "k"),
    "SelectPercentile": ("percentile", "percentile"),
    "SelectFpr": ("fpr", "alpha"),
    "SelectFdr": ("fdr", "alpha"),
    "SelectFwe": ("fwe", "alpha"),
}


def _estimator_allows_nan(b: Builders, est: Any, where: str, n: int) -> bool:
    """Whether the estimator accepts NaN at predict time: its graph, built
    apart, reads its input without refusing NaN."""
    if not isinstance(est, Record):
        return False
    scratch = Builders()
    try:
        built = scratch.build(est, where)
    except (ModelFormatError, UnsupportedModelError):
        # an unfitted template or an unserved estimator: its tag is unknown
        name = est.path.rsplit(".", 1)[-1]
        return name.startswith("HistGradientBoosting")
    nf = scratch.graph.n_features or 0
    readers = [nd for nd in scratch.graph.nodes if np.any(nd.inputs < nf) and nd.inputs.size]
    del built
    return bool(readers) and all(nd.accept != Accept.FINITE for nd in readers)


def _selected(
    node: Node,
    b: Builders,
    X: Optional[Cols],
    mask: np.ndarray,
    accept: int,
    n: Optional[int] = None,
) -> tuple:
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.ndim != 1 or mask.size < 1:
        raise node.fail(f"the support mask has dtype {mask.dtype} and shape {mask.shape}")
    n = node.n_features(mask.size) if n is None else n
    if n != mask.size:
        raise node.fail(f"the support mask has {mask.size} features, the input {n}")
    if not mask.any():
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): no feature is selected; scikit-learn returns an "
            "empty array, which mlfast does not serve"
        )
    X = b.input(node, X, n)
    cols = X[np.flatnonzero(mask)]
    if accept != Accept.ANY:
        cols = b.add(node, Check(), cols, len(cols), accept=accept)
    return cols, n


def _transformer(node: Node, cols: Cols, n: int) -> Built:
    return Built(
        node.name,
        "transformer",
        {"transform": Out(cols)},
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=Strings.REFUSE,
    )


@register("sklearn.feature_selection", "VarianceThreshold")
def build_variance_threshold(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    variances = node.array("variances_", ndim=(1,), kinds="fiub")
    threshold = _number(node, "threshold", node.get("threshold", 0.0))
    with np.errstate(invalid="ignore"):
        mask = variances > threshold
    # allow_nan: NaN and infinity pass
    cols, n = _selected(node, b, X, mask, Accept.ANY)
    return _transformer(node, cols, n)


@register("sklearn.feature_selection", *_MODES, "GenericUnivariateSelect")
def build_univariate(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    if node.name == "GenericUnivariateSelect":
        mode = node.get("mode")
        if mode not in {m for m, _ in _MODES.values()}:
            raise node.fail(f"mode is {mode!r}")
        param = node.get("param")
    else:
        mode, key = _MODES[node.name]
        param = node.get(key)
    mask = _univariate(node, mode, param)
    cols, n = _selected(node, b, X, mask, Accept.FINITE)
    return _transformer(node, cols, n)


def _importances(node: Node, est: Any) -> np.ndarray:
    state = getattr(est, "state", None)
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
        state = state[0]
    if not isinstance(state, dict):
        raise node.fail("estimator_ is not a fitted estimator")
    getter = node.get("importance_getter", "auto")
    if getter == "auto":
        key = "coef_" if "coef_" in state else "feature_importances_"
    elif isinstance(getter, str) and getter in ("coef_", "feature_importances_"):
        key = getter
    else:
        raise UnsupportedModelError(
            f"{node.where} (SelectFromModel): importance_getter={getter!r} is not served"
        )
    if key not in state and key == "feature_importances_":
        return _tree_importances(node, est)
    if key not in state:
        raise UnsupportedModelError(
            f"{node.where} (SelectFromModel): its estimator keeps no {key} in its state"
        )
    imp = node.array(f"estimator_.{key}", ndim=(1, 2), kinds="f", value=state[key])
    if imp.ndim == 1:
        return np.abs(imp)
    order = node.get("norm_order", 1)
    return np.linalg.norm(imp, axis=0, ord=order)


_TREES = (
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "ExtraTreeClassifier",
    "ExtraTreeRegressor",
)
_FORESTS = (
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
)


def _one_tree_importances(node: Node, tree: Any, n_features: int) -> np.ndarray:
    """Tree.compute_feature_importances(normalize=True), node by node in the
    order of its Cython loop."""
    from mlfast._builders.trees import _tree_of

    arrays, _ = _tree_of(Node(tree, f"{node.where}.estimator_"))
    nodes = arrays["nodes"]
    for field in ("impurity", "weighted_n_node_samples"):
        if field not in nodes.dtype.names:
            raise node.fail(f"tree_.nodes has no field {field!r}")
    left, right = nodes["left_child"].astype(np.int64), nodes["right_child"].astype(np.int64)
    feature = nodes["feature"].astype(np.int64)
    w = nodes["weighted_n_node_samples"].astype(np.float64).tolist()
    imp = nodes["impurity"].astype(np.float64).tolist()
    n = len(nodes)
    internal = left != -1
    if np.any(
        internal
        & (
            (left < 0)
            | (left >= n)
            | (right < 0)
            | (right >= n)
            | (feature < 0)
            | (feature >= n_features)
        )
    ):
        raise node.fail("a tree of estimator_ has children or features out of range")
    out = [0.0] * n_features
    for i in np.flatnonzero(internal).tolist():
        a, b = int(left[i]), int(right[i])
        out[int(feature[i])] += w[i] * imp[i] - w[a] * imp[a] - w[b] * imp[b]
    importances = np.array(out) / w[0]
    total = np.sum(importances)
    if total > 0.0:
        importances /= total
    return importances


def _tree_importances(node: Node, est: Any) -> np.ndarray:
    """feature_importances_ of a tree or a forest, computed from its trees
    as the property computes it."""
    name = getattr(est, "path", "").rsplit(".", 1)[-1]
    state = est.state[0] if isinstance(est.state, tuple) else est.state
    n_features = state.get("n_features_in_")
    if (
        isinstance(n_features, bool)
        or not isinstance(n_features, (int, np.integer))
        or n_features < 1
    ):
        raise node.fail(f"estimator_.n_features_in_ is {n_features!r}")
    if name in _TREES:
        return _one_tree_importances(node, est, int(n_features))
    if name in _FORESTS:
        members = state.get("estimators_")
        if not isinstance(members, list) or not members:
            raise node.fail("estimator_.estimators_ is not a list of trees")
        per_tree = []
        for tree in members:
            tstate = getattr(tree, "state", None)
            tree_ = tstate.get("tree_") if isinstance(tstate, dict) else None
            count = getattr(tree_, "state", {}).get("node_count") if tree_ is not None else None
            if isinstance(count, (int, np.integer)) and count > 1:
                per_tree.append(_one_tree_importances(node, tree, int(n_features)))
        if not per_tree:
            return np.zeros(int(n_features), dtype=np.float64)
        mean = np.asarray(np.mean(per_tree, axis=0, dtype=np.float64))
        return np.asarray(mean / np.sum(mean))
    raise UnsupportedModelError(
        f"{node.where} (SelectFromModel): the feature_importances_ of a {name} are computed "
        "when asked and mlfast computes them for trees and forests only"
    )


def _threshold(node: Node, est: Any, importances: np.ndarray) -> float:
    threshold = node.get("threshold", None)
    if threshold is None:
        path = getattr(est, "path", "")
        name = path.rsplit(".", 1)[-1]
        state = getattr(est, "state", {}) or {}
        if isinstance(state, tuple):
            state = state[0]

        def close_to_one(key):
            v = state.get(key)
            try:
                return v is not None and bool(np.all(np.isclose(v, 1.0)))
            except TypeError:
                return False

        l1 = (
            state.get("penalty") == "l1"
            or "Lasso" in name
            or (name == "ElasticNet" and close_to_one("l1_ratio"))
            or (name == "ElasticNetCV" and close_to_one("l1_ratio_"))
            or (
                name == "LogisticRegression" and close_to_one("l1_ratio") and node.version >= (1, 8)
            )
            or (
                name == "LogisticRegressionCV"
                and close_to_one("l1_ratio_")
                and node.version >= (1, 8)
            )
        )
        threshold = 1e-5 if l1 else "mean"
    if isinstance(threshold, str):
        if "*" in threshold:
            scale, reference = threshold.split("*")
            scale_f = float(scale.strip())
            reference = reference.strip()
            if reference == "median":
                ref = np.median(importances)
            elif reference == "mean":
                ref = np.mean(importances)
            else:
                raise node.fail(f"threshold reference {reference!r}")
            return scale_f * ref
        if threshold == "median":
            return np.median(importances)
        if threshold == "mean":
            return np.mean(importances)
        raise node.fail(f"threshold is {threshold!r}")
    return _number(node, "threshold", threshold)


@register("sklearn.feature_selection", "SelectFromModel")
def build_select_from_model(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    est = node.get("estimator_", None)
    if est is None:
        est = node.get("estimator")
    scores = _importances(node, est)
    threshold = _threshold(node, est, scores)
    max_features = node.get("max_features_", node.get("max_features", None))
    if max_features is not None:
        if isinstance(max_features, bool) or not isinstance(max_features, (int, np.integer)):
            raise UnsupportedModelError(
                f"{node.where} (SelectFromModel): max_features={max_features!r} is not served"
            )
        mask = np.zeros_like(scores, dtype=bool)
        mask[np.argsort(-scores, kind="mergesort")[: int(max_features)]] = True
    else:
        mask = np.ones_like(scores, dtype=bool)
    mask[scores < threshold] = False
    n = node.n_features(mask.size)
    accept = (
        Accept.NAN
        if _estimator_allows_nan(b, est, f"{node.where}.estimator_", n)
        else Accept.FINITE
    )
    cols, n = _selected(node, b, X, mask, accept, n)
    return _transformer(node, cols, n)


@register("sklearn.feature_selection", "SequentialFeatureSelector")
def build_sequential(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    mask = node.array("support_", ndim=(1,), kinds="b")
    template = node.get("estimator", None)
    accept = (
        Accept.NAN
        if _estimator_allows_nan(b, template, f"{node.where}.estimator", mask.size)
        else Accept.FINITE
    )
    cols, n = _selected(node, b, X, mask, accept)
    return _transformer(node, cols, n)


@register("sklearn.feature_selection", "RFE", "RFECV")
def build_rfe(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    mask = node.array("support_", ndim=(1,), kinds="b")
    est = node.get("estimator_")
    where = f"{node.where}.estimator_"
    accept = Accept.NAN if _estimator_allows_nan(b, est, where, int(mask.sum())) else Accept.FINITE
    cols, n = _selected(node, b, X, mask, accept)
    built = b.build(est, where, cols)
    outputs = {"transform": Out(cols)}
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        if method in built.outputs:
            outputs[method] = built.outputs[method]
    return Built(
        f"{node.name}({built.name})",
        built.kind if built.kind != "transformer" else "transformer",
        outputs,
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=Strings.REFUSE,
    )
