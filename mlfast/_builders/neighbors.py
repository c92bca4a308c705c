"""Nearest neighbours: KNeighborsClassifier and KNeighborsRegressor.

The search (the knn op) uses the fitted KD-tree or ball tree the file holds
(``_tree``: its data, idx_array, node_data and node_bounds, checked here and
again in C), or brute force over ``_fit_X``; the metric is the tree's own
DistanceMetric (euclidean, manhattan, chebyshev, minkowski of any p) or, for
brute force, ``effective_metric_``.  knn_vote and knn_mean turn the
neighbours into scikit-learn's answers.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from mlfast._builders import Builders, Node, register, regressor
from mlfast._builders.ir import (
    Accept,
    Built,
    Cols,
    Knn,
    KnnMean,
    KnnVote,
    LabelRule,
    Labels,
    Out,
)
from mlfast._core import Record
from mlfast.errors import UnsupportedModelError

#: metric -> (code, p)
METRICS = {
    "euclidean": (1, 2.0),
    "l2": (1, 2.0),
    "manhattan": (2, 1.0),
    "cityblock": (2, 1.0),
    "l1": (2, 1.0),
    "chebyshev": (3, float("inf")),
    "infinity": (3, float("inf")),
}
#: DistanceMetric classes -> metric name
METRIC_CLASSES = {
    "EuclideanDistance": "euclidean",
    "ManhattanDistance": "manhattan",
    "ChebyshevDistance": "chebyshev",
    "MinkowskiDistance": "minkowski",
}
MODES = {"brute": 0, "kd_tree": 1, "ball_tree": 2}


def _metric(node: Node, name: Any, p: Any, weighted: bool) -> Tuple[int, float]:
    if weighted:
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): a weighted minkowski metric "
            "(metric_params w) is not served yet"
        )
    if name == "minkowski":
        if (
            isinstance(p, bool)
            or not isinstance(p, (int, float, np.integer, np.floating))
            or not p >= 1
        ):
            raise node.fail(f"minkowski p is {p!r}")
        p = float(p)
        if p == 2.0:
            return METRICS["euclidean"]
        if p == 1.0:
            return METRICS["manhattan"]
        if np.isinf(p):
            return METRICS["chebyshev"]
        return 4, p
    if name in METRICS:
        return METRICS[name]
    if callable(name) or not isinstance(name, str):
        raise UnsupportedModelError(
            f"{node.where} ({node.name}) has a callable metric: "
            "mlfast never calls a function from a file"
        )
    raise UnsupportedModelError(
        f"{node.where} ({node.name}): metric {name!r} is not served "
        "yet (euclidean, manhattan, chebyshev and minkowski are)"
    )


def _state(node: Node, what: str, record: Any) -> Any:
    if not isinstance(record, Record):
        raise node.fail(f"{what} is a {type(record).__name__}, expected a record")
    state = record.state
    return state


def _class_name(record: Record) -> str:
    """The class of a Cython object: its path, or, made by the module's
    newObj(cls), the class newObj was given."""
    args = record.args
    if (
        record.path.endswith(".newObj")
        and isinstance(args, tuple)
        and len(args) == 1
        and hasattr(args[0], "name")
        and isinstance(args[0].name, str)
    ):
        return args[0].name
    return record.path.rsplit(".", 1)[-1]


def _tree(node: Node, mode: int, n_train: int, d: int):
    tree = node.get("_tree")
    state = _state(node, "_tree", tree)
    if not isinstance(state, tuple) or len(state) < 12:
        raise node.fail(
            "_tree's state is not a (data, idx_array, node_data, node_bounds, ...) tuple"
        )
    kind = _class_name(tree)
    if not kind.startswith("KDTree" if mode == 1 else "BallTree"):
        raise node.fail(f"_tree is a {kind} for _fit_method {node.get('_fit_method')!r}")
    data = node.array("_tree.data", ndim=(2,), kinds="f", value=state[0])
    idx = node.array("_tree.idx_array", ndim=(1,), kinds="iu", value=state[1])
    node_data = state[2]
    if (
        not isinstance(node_data, np.ndarray)
        or node_data.ndim != 1
        or node_data.dtype.names is None
        or not {"idx_start", "idx_end", "is_leaf", "radius"} <= set(node_data.dtype.names)
    ):
        raise node.fail(
            "_tree.node_data is not a record array of idx_start, idx_end, is_leaf, radius"
        )
    bounds = node.array("_tree.node_bounds", ndim=(3,), kinds="f", value=state[3])
    if data.shape != (n_train, d) or idx.shape != (n_train,):
        raise node.fail(
            f"_tree holds data {data.shape} and idx_array {idx.shape} for "
            f"{n_train} training rows of {d} features"
        )
    n_nodes = node_data.shape[0]
    if bounds.shape != ((2 if mode == 1 else 1), n_nodes, d):
        raise node.fail(f"_tree.node_bounds has shape {bounds.shape} for {n_nodes} nodes")
    nodes = np.stack(
        [node_data["idx_start"], node_data["idx_end"], node_data["is_leaf"]], axis=1
    ).astype(np.int64)
    metric = _state(node, "_tree.dist_metric", state[11])
    metric_class = _class_name(state[11]).rstrip("0123456789")
    if metric_class not in METRIC_CLASSES:
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): the tree's metric {metric_class} is not served yet"
        )
    p = metric[0] if isinstance(metric, tuple) and metric else None
    vec = metric[1] if isinstance(metric, tuple) and len(metric) > 1 else None
    weighted = metric_class == "MinkowskiDistance" and isinstance(vec, np.ndarray) and vec.size
    code, p = _metric(node, METRIC_CLASSES[metric_class], p, bool(weighted))
    return dict(
        data=np.ascontiguousarray(data, np.float64),
        idx_array=np.ascontiguousarray(idx, np.int64),
        nodes=np.ascontiguousarray(nodes.ravel()),
        bounds=np.ascontiguousarray(bounds, np.float64).ravel(),
        radius=np.ascontiguousarray(node_data["radius"], np.float64),
        n_nodes=n_nodes,
        metric=code,
        p=p,
    )


def _neighbors(node: Node, b: Builders, X: Optional[Cols]):
    method = node.get("_fit_method")
    if method not in MODES:
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): _fit_method {method!r} is "
            "not served (a precomputed or sparse fit)"
        )
    fit_X = node.get("_fit_X")
    if not isinstance(fit_X, np.ndarray):
        raise UnsupportedModelError(f"{node.where} ({node.name}): a sparse fit is not served yet")
    fit_X = node.array("_fit_X", ndim=(2,), kinds="f")
    if fit_X.dtype != np.float64:
        raise UnsupportedModelError(
            f"{node.where} ({node.name}) was fitted on {fit_X.dtype} "
            "data, which mlfast does not serve yet"
        )
    n_train, d = fit_X.shape
    k = node.integer("n_neighbors")
    if not 1 <= k <= min(n_train, 4096):
        raise node.fail(f"n_neighbors is {k} for {n_train} training rows (at most 4096)")
    weights = node.get("weights", "uniform")
    if weights not in ("uniform", "distance"):
        raise UnsupportedModelError(
            f"{node.where} ({node.name}) has weights={weights!r}: "
            "mlfast never calls a function from a file"
        )
    mode = MODES[method]
    if mode == 0:
        params = node.get("effective_metric_params_", None) or {}
        if not isinstance(params, dict):
            raise node.fail("effective_metric_params_ is not a dict")
        w = params.get("w")
        code, p = _metric(node, node.get("effective_metric_"), params.get("p", 2), w is not None)
        op = Knn(mode=0, metric=code, p=p, k=k, data=np.ascontiguousarray(fit_X))
    else:
        op = Knn(mode=mode, k=k, **_tree(node, mode, n_train, d))
    n = node.n_features(d)
    X = b.input(node, X, n)
    cols = b.add(node, op, X, 2 * k, accept=Accept.FINITE)
    return cols, n, n_train, weights == "distance"


@register("sklearn.neighbors", "KNeighborsClassifier")
def build_knn_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    if node.get("outputs_2d_", False):
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): multi-output neighbours are not served yet"
        )
    classes = node.get("classes_")
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size < 1:
        raise node.fail("classes_ must be a 1-D array of labels")
    cols, n, n_train, distance = _neighbors(node, b, X)
    labels = node.array("_y", ndim=(1,), kinds="iu")
    if (
        labels.shape != (n_train,)
        or labels.size
        and (labels.min() < 0 or labels.max() >= classes.size)
    ):
        raise node.fail(
            f"_y holds {labels.shape[0]} class indices for {n_train} training rows "
            f"of {classes.size} classes"
        )
    labels = np.ascontiguousarray(labels, np.int64)
    k = int(classes.size)
    proba = b.add(
        node, KnnVote(n_classes=k, n_train=n_train, labels=labels, distance=distance), cols, k
    )
    # uniform: predict is the argmax of the same counts; distance: weighted_mode's sums
    counts = (
        proba
        if not distance
        else b.add(
            node,
            KnnVote(n_classes=k, n_train=n_train, labels=labels, distance=True, mode_counts=True),
            cols,
            k,
        )
    )
    predict = b.add(node, Labels(rule=LabelRule.ARGMAX), counts, 1)
    outputs = {
        "predict": Out(predict, classes=np.ascontiguousarray(classes), squeeze=True),
        "predict_proba": Out(proba),
    }
    return Built(
        node.name,
        "classifier",
        outputs,
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
    )


@register("sklearn.neighbors", "KNeighborsRegressor")
def build_knn_regressor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    cols, n, n_train, distance = _neighbors(node, b, X)
    y = node.array("_y", ndim=(1, 2), kinds="fiub")
    if y.shape[0] != n_train or (y.ndim == 2 and y.shape[1] < 1):
        raise node.fail(f"_y has shape {y.shape} for {n_train} training rows")
    targets = np.ascontiguousarray(y.reshape(n_train, -1), np.float64)
    out = b.add(node, KnnMean(targets=targets, distance=distance), cols, targets.shape[1])
    return regressor(node, out, n, raw_1d=y.ndim == 1)
