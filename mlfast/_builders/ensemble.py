"""Ensembles of estimators: voting, stacking, bagging, AdaBoost, the Dummy
estimators and RandomTreesEmbedding.

A meta-estimator builds each member over its own input columns (any
supported estimator: a linear model, a forest, a pipeline, another
ensemble) and combines the members' columns with the ops of ensemble.c.
Members of voting, stacking and bagging were fitted on labels encoded as
0..k-1, so their classes are checked to be such indices and mapped onto the
ensemble's classes; the ensemble's own ``classes_`` are what predict returns.
Constants that scikit-learn computes at predict time from fitted values
(the sum of the weights, -1 / (k - 1) * w, log(n_estimators)) are computed
here once with the same numpy operations.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mlfast._builders import Builders, Node, register
from mlfast._builders.ir import (
    Accept,
    Affine,
    Average,
    Bag,
    Built,
    Check,
    Cols,
    Constant,
    LabelRule,
    Labels,
    OneHot,
    Out,
    Post,
    PostRule,
    Proba,
    ProbaRule,
    Samme,
    Strings,
    Take,
    Vote,
    WeightedMedian,
)
from mlfast._builders.trees import _nan_support, _split_arrays, _tree_of, _Trees
from mlfast._core import Record
from mlfast.errors import UnsupportedModelError

# ---- members ---------------------------------------------------------------------------


def _is_dropped(est: Any) -> bool:
    """'drop' (and None before 1.0) in an ensemble's estimators parameter."""
    return est is None or (isinstance(est, str) and est == "drop")


def _fitted(node: Node, key: str = "estimators_") -> List[Any]:
    members = node.get(key)
    if isinstance(members, np.ndarray) and members.dtype == object:
        members = list(members.ravel())
    if not isinstance(members, list) or not members:
        raise node.fail(f"{key} must be a non-empty list of fitted estimators")
    return members


def _build_members(
    node: Node,
    b: Builders,
    X: Optional[Cols],
    members: Sequence[Any],
    key: str = "estimators_",
    features: Optional[Sequence[np.ndarray]] = None,
) -> Tuple[List[Built], Cols]:
    """Each member over X (or over its own columns of X); when the ensemble
    is the first to read the input, the first member fixes its width."""
    built: List[Built] = []
    for i, member in enumerate(members):
        where = f"{node.where}.{key}[{i}]"
        cols = X if features is None or X is None else X[features[i]]
        one = b.build(member, where, cols)
        if X is None:
            X = b.graph.input(one.n_features_in)
        built.append(one)
    if X is None:
        raise node.fail(f"{key} holds no estimators")
    return built, X


def _method(
    node: Node, built: Built, i: int, method: str, why: str, key: str = "estimators_"
) -> Out:
    out = built.outputs.get(method)
    if out is None:
        raise UnsupportedModelError(
            f"{node.where}.{key}[{i}] ({built.name}) has no {method}, which {why}"
        )
    if out.split is not None or out.column_classes is not None:
        raise UnsupportedModelError(
            f"{node.where}.{key}[{i}] ({built.name}) answers {method} for several "
            f"outputs; {node.name} is served for single-output members only"
        )
    return out


def _member_classes(
    node: Node, member_classes: Optional[np.ndarray], i: int, key: str
) -> np.ndarray:
    """A member's classes; a member without any (a regressor, a transformer)
    has no place in a classifier's ensemble."""
    if member_classes is None:
        raise node.fail(f"{key}[{i}] predicts no classes (it is not a classifier)")
    return np.asarray(member_classes)


def _index_map(
    node: Node,
    member_classes: Optional[np.ndarray],
    n_classes: int,
    i: int,
    key: str = "estimators_",
) -> np.ndarray:
    """A member's classes as indices into the ensemble's classes: members of
    voting, stacking and bagging were fitted on labels encoded 0..k-1."""
    values = _member_classes(node, member_classes, i, key)
    ok = values.dtype.kind in "iub" or (
        values.dtype.kind == "f"
        and np.all(np.isfinite(values))
        and np.all(values == np.round(values))
    )
    if ok:
        index = values.astype(np.int64)
        ok = bool(np.all((index >= 0) & (index < n_classes)))
    if not ok:
        raise node.fail(
            f"{key}[{i}] has classes {values.tolist()[:8]}, expected "
            f"indices below {n_classes} (the encoded labels it was fitted on)"
        )
    return index


def _value_map(
    node: Node,
    member_classes: Optional[np.ndarray],
    classes: np.ndarray,
    i: int,
    key: str = "estimators_",
) -> np.ndarray:
    """A member's classes as indices into the ensemble's classes, by value."""
    position: Dict[Any, int] = {}
    for j, c in enumerate(classes.tolist()):
        position.setdefault(c, j)
    index = []
    for c in _member_classes(node, member_classes, i, key).tolist():
        if c not in position:
            raise node.fail(f"{key}[{i}] knows class {c!r}, which the ensemble does not")
        index.append(position[c])
    return np.asarray(index, dtype=np.int64)


def _offsets(sizes: Sequence[int]) -> np.ndarray:
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return offsets


def _classes(node: Node) -> np.ndarray:
    classes = node.get("classes_")
    if isinstance(classes, list):
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): multilabel and multi-output classification "
            "is not served for this estimator"
        )
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size < 1:
        raise node.fail("classes_ must be a 1-D array")
    if classes.dtype.kind not in "biufUSO":
        raise node.fail(f"classes_ has dtype {classes.dtype}")
    return np.ascontiguousarray(classes)


def _labels(
    node: Node, b: Builders, scores: Cols, classes: np.ndarray, rule: int = LabelRule.ARGMAX
) -> Out:
    return Out(b.add(node, Labels(rule=rule), scores, 1), classes=classes, squeeze=True)


def _built(
    node: Node,
    kind: str,
    outputs: Dict[str, Out],
    X: Cols,
    first: Built,
    name: Optional[str] = None,
    first_name: Optional[str] = None,
) -> Built:
    """The ensemble as built: members check X first unless it does itself."""
    return Built(
        name or node.name,
        kind,
        outputs,
        len(X),
        feature_names_in=node.feature_names(),
        first_name=first_name or first.first_name,
        strings=first.strings,
        string_prefix=first.string_prefix,
    )


def _numpy_sum(values: np.ndarray) -> float:
    """values.sum() as numpy adds a 1-D array (pairwise)."""
    return float(np.asarray(values).sum())


# ---- voting -----------------------------------------------------------------------------


def _voting_weights(node: Node, n_members: int) -> Optional[np.ndarray]:
    """_weights_not_none: the weights of the members not dropped."""
    weights = node.get("weights", None)
    if weights is None:
        return None
    estimators = node.get("estimators")
    if not isinstance(estimators, list) or len(estimators) != len(weights):
        raise node.fail("weights do not match the estimators")
    kept = [
        w
        for item, w in zip(estimators, weights)
        if not (isinstance(item, tuple) and len(item) == 2 and _is_dropped(item[1]))
    ]
    w = np.asarray(kept)
    if w.ndim != 1 or w.size != n_members or w.dtype.kind not in "biuf":
        raise node.fail(f"weights {list(weights)[:8]} do not fit {n_members} members")
    return w


def _average(
    node: Node, weights: Optional[np.ndarray], n_members: int, ndim: int, axis: int
) -> Average:
    """np.average(a, axis, weights) over the members' axis of an ndim array:
    the sum of the weights as numpy takes it (broadcast along that axis)."""
    if weights is None:
        return Average(weights=np.ones(n_members), scale=float(n_members), weighted=False)
    wgt = np.broadcast_to(weights, (ndim - 1) * (1,) + weights.shape).swapaxes(-1, axis)
    scale = float(np.ravel(wgt.sum(axis=axis, dtype=np.result_type(weights.dtype, "f8")))[0])
    if scale == 0.0:
        raise node.fail("weights add up to 0: scikit-learn cannot average them")
    return Average(weights=weights.astype(np.float64), scale=scale, weighted=True)


@register("sklearn.ensemble", "VotingClassifier")
def build_voting_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    classes = _classes(node)
    k = classes.size
    voting = node.get("voting")
    if voting not in ("hard", "soft"):
        raise node.fail(f"voting is {voting!r}")
    built, X = _build_members(node, b, X, _fitted(node))
    weights = _voting_weights(node, len(built))
    outputs: Dict[str, Out] = {}
    if voting == "soft":
        probas = []
        for i, member in enumerate(built):
            proba = _method(node, member, i, "predict_proba", "soft voting needs")
            _index_map(node, member.classes, k, i)
            if len(proba.cols) != k:
                raise node.fail(
                    f"estimators_[{i}] returns {len(proba.cols)} probabilities for {k} classes"
                )
            probas.append(proba.cols)
        stacked = Cols.concat(probas)
        # np.average of the (m, n, k) probabilities over axis 0
        average = b.add(node, _average(node, weights, len(built), 3, 0), stacked, k)
        outputs["predict_proba"] = Out(average)
        outputs["predict"] = _labels(node, b, average, classes)
        if node.get("flatten_transform", True):
            outputs["transform"] = Out(stacked)
        else:
            outputs["transform"] = Out(stacked, split=[k] * len(built), stacked=True)
    else:
        label_cols, maps, tables = [], [], []
        for i, member in enumerate(built):
            predict = _method(node, member, i, "predict", "hard voting needs")
            maps.append(_index_map(node, member.classes, k, i))
            tables.append(np.asarray(member.classes, dtype=np.float64))
            label_cols.append(predict.cols)
        labels = Cols.concat(label_cols)
        offsets = _offsets([m.size for m in maps])
        vote = Vote(
            n_classes=k,
            weights=None if weights is None else weights.astype(np.float64),
            class_map=np.concatenate(maps),
            map_offsets=offsets,
        )
        totals = b.add(node, vote, labels, k)
        outputs["predict"] = _labels(node, b, totals, classes)
        # transform: the members' labels, which numpy returns as int64
        take = Take(table=np.concatenate(tables), offsets=offsets, int_out=True)
        outputs["transform"] = Out(b.add(node, take, labels, len(labels)))
    return _built(node, "classifier", outputs, X, built[0])


@register("sklearn.ensemble", "VotingRegressor")
def build_voting_regressor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    built, X = _build_members(node, b, X, _fitted(node))
    weights = _voting_weights(node, len(built))
    preds = []
    for i, member in enumerate(built):
        predict = _method(node, member, i, "predict", "VotingRegressor averages")
        if len(predict.cols) != 1 or predict.classes is not None:
            raise node.fail(f"estimators_[{i}] does not predict one value a row")
        preds.append(predict.cols)
    stacked = Cols.concat(preds)
    # np.average of the (n, m) predictions over axis 1
    average = b.add(node, _average(node, weights, len(built), 2, 1), stacked, 1)
    outputs = {"predict": Out(average, squeeze=True), "transform": Out(stacked)}
    return _built(node, "regressor", outputs, X, built[0])


# ---- stacking ---------------------------------------------------------------------------


def _stack_features(
    node: Node, b: Builders, built: Sequence[Built], methods: List[Any], n_classes: Optional[int]
) -> List[Cols]:
    """_concatenate_predictions: each member's stack_method_ answer as
    columns (a 1-D answer as one column, the first of two probabilities
    dropped)."""
    parts = []
    for i, member in enumerate(built):
        method = methods[i]
        if method not in ("predict", "predict_proba", "decision_function"):
            raise node.fail(f"stack_method_[{i}] is {method!r}")
        out = _method(node, member, i, method, f"stack_method_[{i}] names")
        cols = out.cols
        if out.classes is not None:
            # a classifier's predict: its labels, as numbers
            table = np.asarray(out.classes)
            if table.dtype.kind not in "biuf":
                raise UnsupportedModelError(
                    f"{node.where}.estimators_[{i}] predicts {table.dtype} labels, which "
                    "mlfast does not stack"
                )
            take = Take(
                table=table.astype(np.float64),
                offsets=_offsets([table.size]),
                int_out=table.dtype.kind in "biu",
            )
            cols = b.add(node, take, cols, 1)
        elif method == "predict_proba" and n_classes == 2:
            cols = cols[1:]
        parts.append(cols)
    return parts


def _build_stacking(node: Node, b: Builders, X: Optional[Cols], classifier: bool) -> Built:
    classes = _classes(node) if classifier else None
    members = _fitted(node)
    built, X = _build_members(node, b, X, members)
    methods = node.get("stack_method_")
    if not isinstance(methods, list) or len(methods) != len(built):
        raise node.fail("stack_method_ does not list one method per fitted estimator")
    parts = _stack_features(node, b, built, methods, None if classes is None else classes.size)
    passthrough = node.get("passthrough", False)
    if passthrough:
        parts.append(X)
    meta = Cols.concat(parts)
    final = b.build(node.get("final_estimator_"), f"{node.where}.final_estimator_", meta)
    outputs: Dict[str, Out] = {"transform": Out(meta)}
    if classes is not None:
        predict = final.outputs.get("predict")
        if predict is None or predict.classes is None:
            raise UnsupportedModelError(
                f"{node.where}.final_estimator_ ({final.name}) does not predict classes"
            )
        encoded = np.asarray(predict.classes)
        if encoded.shape != (classes.size,) or not np.array_equal(encoded, np.arange(classes.size)):
            raise node.fail(
                f"final_estimator_ has classes {encoded.tolist()[:8]}, "
                f"expected 0..{classes.size - 1}"
            )
        # _label_encoder.inverse_transform of the final estimator's labels
        outputs["predict"] = Out(predict.cols, classes=classes, squeeze=True)
        for method in ("predict_proba", "decision_function"):
            if method in final.outputs:
                outputs[method] = final.outputs[method]
    else:
        outputs["predict"] = final.outputs["predict"]
    return _built(node, "classifier" if classifier else "regressor", outputs, X, built[0])


@register("sklearn.ensemble", "StackingClassifier")
def build_stacking_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    return _build_stacking(node, b, X, classifier=True)


@register("sklearn.ensemble", "StackingRegressor")
def build_stacking_regressor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    return _build_stacking(node, b, X, classifier=False)


# ---- bagging ----------------------------------------------------------------------------


def _effective_n_jobs(n_jobs: Any) -> int:
    """joblib.effective_n_jobs outside any parallel_backend context: the
    number of chunks scikit-learn splits the members into at predict time."""
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        return 1
    if n_jobs < 0:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cpus = os.cpu_count() or 1
        return max(cpus + 1 + int(n_jobs), 1)
    return int(n_jobs)


def _chunk_starts(n_estimators: int, n_jobs: Any, n_fitted: int) -> np.ndarray:
    """_partition_estimators(n_estimators, n_jobs), as slices of estimators_."""
    jobs = min(_effective_n_jobs(n_jobs), n_estimators)
    per_job = np.full(jobs, n_estimators // jobs, dtype=int)
    per_job[: n_estimators % jobs] += 1
    starts = np.concatenate([[0], np.cumsum(per_job)])
    return np.minimum(starts, n_fitted).astype(np.int64)


def _bagging_common(node: Node, b: Builders, X: Optional[Cols]):
    members = _fitted(node)
    features = node.get("estimators_features_")
    if not isinstance(features, list) or len(features) != len(members):
        raise node.fail("estimators_features_ must list one feature array per member")
    n = node.state.get("n_features_in_", node.state.get("n_features_"))
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise node.fail(f"n_features_in_ is {n!r}")
    X = b.input(node, X, int(n))
    subsets = []
    for i, f in enumerate(features):
        f = np.asarray(f)
        if f.ndim != 1 or f.size < 1 or f.dtype.kind not in "iu" or f.min() < 0 or f.max() >= n:
            raise node.fail(f"estimators_features_[{i}] is not a list of feature indices")
        subsets.append(f.astype(np.int64))
    n_estimators = node.integer("n_estimators")
    if n_estimators < 1:
        raise node.fail(f"n_estimators is {n_estimators}")
    starts = _chunk_starts(n_estimators, node.state.get("n_jobs"), len(members))
    # estimators_[starts[-1]:] take no part in any answer
    used = int(starts[-1])
    built, X = _build_members(node, b, X, members[:used], features=subsets[:used])
    return built, X, starts, n_estimators


@register("sklearn.ensemble", "BaggingClassifier")
def build_bagging_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    classes = _classes(node)
    k = classes.size
    built, X, starts, n_estimators = _bagging_common(node, b, X)
    cols, widths, votes, maps = [], [], [], []
    for i, member in enumerate(built):
        index = _index_map(node, member.classes, k, i)
        if "predict_proba" in member.outputs:
            member_proba = _method(node, member, i, "predict_proba", "bagging needs")
            if len(member_proba.cols) != index.size:
                raise node.fail(
                    f"estimators_[{i}] returns {len(member_proba.cols)} "
                    f"probabilities for {index.size} classes"
                )
            cols.append(member_proba.cols)
            widths.append(len(member_proba.cols))
            votes.append(0)
        else:
            # a member without predict_proba votes with its predict
            cols.append(_method(node, member, i, "predict", "bagging needs").cols)
            widths.append(1)
            votes.append(1)
        maps.append(index)
    map_offsets = _offsets([m.size for m in maps])
    class_map = np.concatenate(maps)
    bag = Bag(
        n_outputs=k,
        widths=np.asarray(widths, np.int64),
        votes=np.asarray(votes, np.int64),
        class_map=class_map,
        map_offsets=map_offsets,
        chunk_starts=starts,
        divisor=float(n_estimators),
    )
    proba = b.add(node, bag, Cols.concat(cols), k)
    outputs: Dict[str, Out] = {
        "predict_proba": Out(proba),
        "predict": _labels(node, b, proba, classes),
    }
    if all("predict_log_proba" in m.outputs for m in built):
        # logaddexp of the members' log probabilities, less log(n_estimators)
        logs = [
            _method(node, m, i, "predict_log_proba", "bagging needs").cols
            for i, m in enumerate(built)
        ]
        log_bag = Bag(
            n_outputs=k,
            widths=np.asarray([len(c) for c in logs], np.int64),
            votes=np.zeros(len(built), np.int64),
            class_map=class_map,
            map_offsets=map_offsets,
            chunk_starts=starts,
            divisor=float(n_estimators),
            log=True,
            log_offset=float(np.log(n_estimators)),
        )
        if any(len(c) != m.size for c, m in zip(logs, maps)):
            raise node.fail("a member's log probabilities do not fit its classes")
        outputs["predict_log_proba"] = Out(b.add(node, log_bag, Cols.concat(logs), k))
    else:
        outputs["predict_log_proba"] = Out(b.add(node, Post(rule=PostRule.LOG), proba, k))
    if "decision_function" in built[0].outputs:
        decisions = [
            _method(node, m, i, "decision_function", "bagging averages").cols
            for i, m in enumerate(built)
        ]
        width = len(decisions[0])
        if any(len(d) != width for d in decisions):
            raise node.fail(
                "the members' decision functions differ in width (a member "
                "saw fewer classes): scikit-learn cannot add them"
            )
        squeeze = built[0].outputs["decision_function"].squeeze
        outputs["decision_function"] = Out(
            b.add(
                node, _sum_bag(built, width, starts, n_estimators), Cols.concat(decisions), width
            ),
            squeeze=squeeze,
        )
    return _built(node, "classifier", outputs, X, built[0], first_name=node.name)


def _sum_bag(built: Sequence[Built], width: int, starts: np.ndarray, n_estimators: int) -> Bag:
    """sum(member answers) chunk by chunk, over n_estimators: the members'
    float type kept."""
    m = len(built)
    return Bag(
        n_outputs=width,
        widths=np.full(m, width, np.int64),
        votes=np.zeros(m, np.int64),
        class_map=np.tile(np.arange(width), m),
        map_offsets=_offsets([width] * m),
        chunk_starts=starts,
        divisor=float(n_estimators),
        keep_type=True,
    )


@register("sklearn.ensemble", "BaggingRegressor")
def build_bagging_regressor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    built, X, starts, n_estimators = _bagging_common(node, b, X)
    preds = []
    for i, member in enumerate(built):
        predict = _method(node, member, i, "predict", "bagging averages")
        if predict.classes is not None:
            raise node.fail(f"estimators_[{i}] is a classifier")
        preds.append(predict.cols)
    width = len(preds[0])
    if any(len(p) != width for p in preds):
        raise node.fail("the members predict different numbers of outputs")
    squeeze = built[0].outputs["predict"].squeeze
    raw = b.add(node, _sum_bag(built, width, starts, n_estimators), Cols.concat(preds), width)
    return _built(
        node, "regressor", {"predict": Out(raw, squeeze=squeeze)}, X, built[0], first_name=node.name
    )


# ---- AdaBoost ---------------------------------------------------------------------------


def _boost_members(node: Node, b: Builders, X: Optional[Cols]):
    """AdaBoost checks X itself (validate_data: finite, any dtype) before its
    members see it."""
    members = _fitted(node)
    n = node.state.get("n_features_in_")
    if n is None:
        # before 0.24: the first member knows
        first = (
            Node(members[0], f"{node.where}.estimators_[0]")
            if isinstance(members[0], Record)
            else None
        )
        n = (
            first.state.get("n_features_in_", first.state.get("n_features_"))
            if first is not None
            else None
        )
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise node.fail(f"n_features_in_ is {n!r}")
    X = b.input(node, X, int(n))
    checked = b.add(node, Check(), X, len(X), accept=Accept.FINITE)
    built, _ = _build_members(node, b, checked, members)
    weights = node.array("estimator_weights_", ndim=(1,), kinds="f")
    if weights.size < len(built):
        raise node.fail(f"{weights.size} estimator_weights_ for {len(built)} estimators")
    return built, X, weights


@register("sklearn.ensemble", "AdaBoostClassifier")
def build_adaboost_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    classes = _classes(node)
    k = classes.size
    if k < 2:
        raise UnsupportedModelError(
            f"{node.where}: an AdaBoostClassifier of one class is not served"
        )
    built, X, weights = _boost_members(node, b, X)
    algorithm = node.state.get("algorithm", "SAMME")
    # 1.6 removed SAMME.R: 'deprecated' (1.6, 1.7) and no parameter (1.8) mean SAMME
    real = algorithm == "SAMME.R" and node.version < (1, 6)
    total = _numpy_sum(weights)
    if total == 0.0:
        raise node.fail("estimator_weights_ add up to 0")
    w = np.ascontiguousarray(weights[: len(built)], dtype=np.float64)
    if real:
        cols = []
        for i, member in enumerate(built):
            member_proba = _method(node, member, i, "predict_proba", "SAMME.R needs")
            if len(member_proba.cols) != k or not np.array_equal(
                _value_map(node, member.classes, classes, i), np.arange(k)
            ):
                raise node.fail(f"estimators_[{i}] does not know the {k} classes in order")
            cols.append(member_proba.cols)
        op = Samme(
            n_classes=k,
            real=True,
            weights=w,
            total=total,
            inv_classes=1.0 / k,
            eps=float(np.finfo(np.float64).eps),
        )
    else:
        cols, maps = [], []
        for i, member in enumerate(built):
            cols.append(_method(node, member, i, "predict", "SAMME needs").cols)
            maps.append(_value_map(node, member.classes, classes, i))
        if node.version < (1, 3):
            # (predict == classes).T * w: nothing for the other classes
            others = np.zeros(len(built))
        else:
            # np.where(..., w, -1 / (n_classes - 1) * w)
            others = np.array([-1 / (k - 1) * wm for wm in weights[: len(built)]], dtype=np.float64)
        op = Samme(
            n_classes=k,
            real=False,
            weights=w,
            others=others,
            class_map=np.concatenate(maps),
            map_offsets=_offsets([m.size for m in maps]),
            total=total,
        )
    width = 1 if k == 2 else k
    decision = b.add(node, op, Cols.concat(cols), width)
    outputs: Dict[str, Out] = {"decision_function": Out(decision, squeeze=k == 2)}
    if k == 2:
        outputs["predict"] = _labels(node, b, decision, classes, LabelRule.THRESHOLD)
        # softmax(np.vstack([-decision, decision]).T / 2)
        halved = b.add(node, Affine(div=np.array([2.0])), decision, 1)
        proba = b.add(node, Proba(rule=ProbaRule.SOFTMAX_BINARY, n_classes=2), halved, 2)
    else:
        outputs["predict"] = _labels(node, b, decision, classes)
        # softmax(decision / (n_classes - 1))
        scaled = b.add(node, Affine(div=np.full(k, float(k - 1))), decision, k)
        proba = b.add(node, Proba(rule=ProbaRule.SOFTMAX, n_classes=k), scaled, k)
    if not real and node.version < (0, 22):
        # before 0.22 SAMME's predict_proba did not come from the decision: it
        # averaged the members' predict_proba (weighted), then normalised
        # exp(average / (n_classes - 1))
        probas = []
        for i, member in enumerate(built):
            member_proba = _method(node, member, i, "predict_proba", "SAMME before 0.22 needs")
            if len(member_proba.cols) != k or not np.array_equal(
                _value_map(node, member.classes, classes, i), np.arange(k)
            ):
                raise node.fail(f"estimators_[{i}] does not know the {k} classes in order")
            probas.append(member_proba.cols)
        mean = b.add(node, Average(weights=w, scale=total, weighted=True), Cols.concat(probas), k)
        scaled = b.add(node, Affine(div=np.full(k, float(k - 1))), mean, k)
        exp = b.add(node, Post(rule=PostRule.EXP), scaled, k)
        proba = b.add(node, Proba(rule=ProbaRule.NORMALIZE, n_classes=k), exp, k)
    outputs["predict_proba"] = Out(proba)
    outputs["predict_log_proba"] = Out(b.add(node, Post(rule=PostRule.LOG), proba, k))
    return _built(node, "classifier", outputs, X, built[0], first_name=node.name)


@register("sklearn.ensemble", "AdaBoostRegressor")
def build_adaboost_regressor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    built, X, weights = _boost_members(node, b, X)
    preds = []
    for i, member in enumerate(built):
        predict = _method(node, member, i, "predict", "the weighted median needs")
        if len(predict.cols) != 1 or predict.classes is not None:
            raise node.fail(f"estimators_[{i}] does not predict one value a row")
        preds.append(predict.cols)
    median = WeightedMedian(weights=np.ascontiguousarray(weights[: len(built)], dtype=np.float64))
    raw = b.add(node, median, Cols.concat(preds), 1)
    return _built(
        node, "regressor", {"predict": Out(raw, squeeze=True)}, X, built[0], first_name=node.name
    )


# ---- Dummy estimators -------------------------------------------------------------------


def _dummy_input(node: Node, b: Builders, X: Optional[Cols]) -> Cols:
    """A Dummy estimator reads no value of X: one of its columns is wired to
    it so that the graph has the input's width."""
    if X is None:
        n = node.state.get("n_features_in_")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise UnsupportedModelError(
                f"{node.where} ({node.name}) does not record how many features it was "
                "fitted on (no n_features_in_), so mlfast cannot check its input"
            )
        X = b.input(node, None, int(n))
    return X


@register("sklearn.dummy", "DummyClassifier")
def build_dummy_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    strategy = node.state.get("_strategy", node.get("strategy"))
    if node.state.get("sparse_output_", False):
        raise UnsupportedModelError(
            f"{node.where}: a DummyClassifier fitted on a sparse "
            "target predicts sparse matrices, which mlfast does "
            "not serve"
        )
    if node.integer("n_outputs_", 1) != 1:
        raise UnsupportedModelError(f"{node.where}: a multi-output DummyClassifier is not served")
    classes = _classes(node)
    k = classes.size
    prior = node.vector("class_prior_", k)
    if strategy == "stratified":
        raise UnsupportedModelError(
            f"{node.where}: DummyClassifier(strategy='stratified') answers at random "
            "(predict and predict_proba draw each row from the class prior), so no "
            "compiled model can give scikit-learn's answers"
        )
    if strategy in ("most_frequent", "prior"):
        row = np.zeros(k)
        if strategy == "most_frequent":
            row[prior.argmax()] = 1.0
        else:
            row = np.ones((1, 1)) * prior  # np.ones((n, 1)) * class_prior_
    elif strategy == "uniform":
        row = np.ones((1, k)) / k
    elif strategy == "constant":
        constant = node.get("constant")
        row = np.zeros(k)
        row[np.where(classes == constant)] = 1.0
        if not row.any():
            raise node.fail(f"constant {constant!r} is not one of classes_")
    else:
        raise node.fail(f"strategy is {strategy!r}")
    X = _dummy_input(node, b, X)
    proba = b.add(node, Constant(values=np.ravel(row).astype(np.float64)), X[:1], k)
    outputs: Dict[str, Out] = {
        "predict_proba": Out(proba),
        "predict_log_proba": Out(b.add(node, Post(rule=PostRule.LOG), proba, k)),
    }
    if strategy != "uniform":
        # uniform's predict draws a class at random for each row: only its
        # probabilities (1/k) are served
        outputs["predict"] = _labels(node, b, proba, classes)
    return Built(
        node.name,
        "classifier",
        outputs,
        len(X),
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=Strings.CONVERT,
    )


@register("sklearn.dummy", "DummyRegressor")
def build_dummy_regressor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    constant = node.array("constant_", ndim=(0, 1, 2), kinds="fiub")
    n_outputs = node.integer("n_outputs_", 1)
    values = np.ravel(constant)
    if values.size != n_outputs or n_outputs < 1:
        raise node.fail(f"constant_ has {values.size} values for {n_outputs} outputs")
    # np.full(..., dtype=np.array(self.constant_).dtype)
    kind = {"f": 2 if constant.dtype == np.float32 else 0, "i": 1, "u": 1}.get(constant.dtype.kind)
    if kind is None or (kind == 0 and constant.dtype != np.float64):
        raise UnsupportedModelError(
            f"{node.where}: a DummyRegressor constant of dtype {constant.dtype} is not served"
        )
    X = _dummy_input(node, b, X)
    raw = b.add(node, Constant(values=values.astype(np.float64), out_kind=kind), X[:1], n_outputs)
    return Built(
        node.name,
        "regressor",
        {"predict": Out(raw, squeeze=n_outputs == 1)},
        len(X),
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=Strings.CONVERT,
    )


# ---- RandomTreesEmbedding ---------------------------------------------------------------


@register("sklearn.ensemble", "RandomTreesEmbedding")
def build_random_trees_embedding(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    """transform = one_hot_encoder_.transform(apply(X)): each tree's leaf as
    a one-hot block, dense (scikit-learn's default is a sparse matrix of the
    same numbers)."""
    members: List[Node] = []
    for i, t in enumerate(_fitted(node)):
        if not isinstance(t, Record):
            raise node.fail("estimators_ must hold fitted trees")
        members.append(Node(t, f"{node.where}.estimators_[{i}]"))
    encoder = node.get("one_hot_encoder_")
    if not isinstance(encoder, Record):
        raise node.fail("one_hot_encoder_ is not a fitted OneHotEncoder")
    enc = Node(encoder, f"{node.where}.one_hot_encoder_")
    categories = enc.get("categories_")
    if not isinstance(categories, list) or len(categories) != len(members):
        raise enc.fail("categories_ must hold one array per tree")
    if enc.state.get("drop_idx_") is not None or enc.state.get("_infrequent_enabled", False):
        raise UnsupportedModelError(
            f"{enc.where}: a OneHotEncoder that drops or groups categories is not served here"
        )
    ignore_unknown = enc.state.get("handle_unknown", "error") != "error"
    trees = _Trees()
    accept = Accept.NAN
    n_features: Optional[int] = None
    offset = 0
    for t, est in enumerate(members):
        arrays, args = _tree_of(est)
        nodes = arrays["nodes"]
        if n_features is None:
            n_features = int(args[0])
        elif int(args[0]) != n_features:
            raise est.fail("trees of one forest disagree on the number of features")
        accept = min(accept, _nan_support(est, "ExtraTrees", nodes))
        left, right, feature, threshold, flags = _split_arrays(nodes)
        cats = np.asarray(categories[t])
        if cats.ndim != 1 or cats.dtype.kind not in "iuf":
            raise enc.fail(f"categories_[{t}] is not an array of leaf ids")
        # a leaf's value is the output column of its category, or -1
        column = np.full(len(nodes), -1.0)
        leaves = np.flatnonzero(left < 0)
        position = np.searchsorted(cats, leaves)
        found = (position < cats.size) & (cats[np.minimum(position, cats.size - 1)] == leaves)
        if not found.all() and not ignore_unknown:
            raise UnsupportedModelError(
                f"{est.where}: leaf {int(leaves[~found][0])} never held a training row, so "
                "scikit-learn refuses the rows it reaches ('unknown category'); such a "
                "model is not served"
            )
        column[leaves[found]] = offset + position[found]
        offset += cats.size
        trees.add(left, right, feature, threshold, flags, column[:, None])
    if n_features is None:
        raise node.fail("estimators_ holds no trees")
    raw, n = trees.add_to(
        node, b, X, n_features, len(members), accept, column=np.arange(len(members), dtype=np.int32)
    )
    onehot = b.add(node, OneHot(n_outputs=offset), raw, offset)
    return Built(
        node.name,
        "transformer",
        {"transform": Out(onehot)},
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=Strings.CONVERT,
    )
