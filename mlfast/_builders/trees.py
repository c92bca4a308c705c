"""Tree models: decision trees, forests, gradient boosting, histogram gradient
boosting and isolation forests, all onto the one forest IR of trees.c.

A builder turns each scikit-learn tree into per-node arrays (children,
feature, threshold, flags, leaf values) and decides, from the estimator and
its scikit-learn version, what a leaf contributes and how the sum becomes an
answer.  Leaf contributions that scikit-learn computes at predict time from
stored values (a normalised class distribution, learning_rate * value, an
isolation depth) are computed here once, with the same numpy operations, so
that the C sum adds the very same doubles in the same order.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from mlfast._builders import Builders, Node, classifier, register, regressor
from mlfast._builders.ir import (
    Accept,
    Built,
    Cols,
    Encode,
    Forest,
    LabelRule,
    Labels,
    Out,
    Post,
    PostRule,
    Proba,
    ProbaRule,
    Strings,
)
from mlfast._core import Record
from mlfast.errors import ModelFormatError, UnsupportedModelError


class _Trees:
    """Per-node arrays of several trees, concatenated in tree order."""

    def __init__(self) -> None:
        self.left: List[np.ndarray] = []
        self.right: List[np.ndarray] = []
        self.feature: List[np.ndarray] = []
        self.threshold: List[np.ndarray] = []
        self.flags: List[np.ndarray] = []
        self.values: List[np.ndarray] = []
        self.sizes: List[int] = []

    def add(
        self,
        left: np.ndarray,
        right: np.ndarray,
        feature: np.ndarray,
        threshold: np.ndarray,
        flags: np.ndarray,
        values: np.ndarray,
    ) -> None:
        self.left.append(np.asarray(left, dtype=np.int64))
        self.right.append(np.asarray(right, dtype=np.int64))
        self.feature.append(np.asarray(feature, dtype=np.int64))
        self.threshold.append(np.asarray(threshold, dtype=np.float64))
        self.flags.append(np.asarray(flags, dtype=np.uint8))
        self.values.append(np.asarray(values, dtype=np.float64))
        self.sizes.append(len(left))

    def op(
        self,
        n_features: int,
        n_raw: int,
        column=None,
        cats=None,
        init=None,
        average=False,
        sum_f32=False,
        cat_words=None,
        cat_offsets=None,
        cat_rule=0,
    ) -> Forest:
        cat = lambda parts: np.concatenate(parts)  # noqa: E731
        offsets = np.zeros(len(self.sizes) + 1, dtype=np.int64)
        np.cumsum(self.sizes, out=offsets[1:])
        return Forest(
            n_features=int(n_features),
            n_raw=int(n_raw),
            left=cat(self.left),
            right=cat(self.right),
            feature=cat(self.feature),
            threshold=cat(self.threshold),
            flags=cat(self.flags),
            node_values=np.concatenate(self.values, axis=0),
            offsets=offsets,
            column=column,
            cats=cats,
            init=init,
            average=bool(average),
            sum_f32=bool(sum_f32),
            cat_words=cat_words,
            cat_offsets=cat_offsets,
            cat_rule=int(cat_rule),
        )

    def add_to(
        self,
        node: Node,
        b: Builders,
        X: Optional[Cols],
        n_features: int,
        n_raw: int,
        accept: int,
        cast_f32: bool = True,
        **kw,
    ) -> Tuple[Cols, int]:
        """The forest op over X (its raw sums), and the number of features."""
        n = node.n_features(n_features)
        X = b.input(node, X, n)
        raw = b.add(node, self.op(n, n_raw, **kw), X, n_raw, accept=accept, cast_f32=cast_f32)
        return raw, n


def _record(node: Node, value, what: str) -> Node:
    if not isinstance(value, Record):
        raise node.fail(f"{what} is a {type(value).__name__}, expected an estimator")
    return Node(value, f"{node.where}.{what}")


def _tree_of(est: Node) -> Tuple[dict, tuple]:
    """The `tree_` of a fitted scikit-learn tree estimator: its node arrays
    and its (n_features, n_classes, n_outputs) arguments."""
    tree = est.get("tree_")
    if not isinstance(tree, Record) or not tree.path.endswith("._tree.Tree"):
        raise est.fail("tree_ is not a sklearn.tree._tree.Tree")
    state, args = tree.state, tree.args
    if not isinstance(state, dict) or not isinstance(args, tuple) or len(args) != 3:
        raise est.fail("tree_ has no state")
    nodes, values = state.get("nodes"), state.get("values")
    count = state.get("node_count")
    if not isinstance(nodes, np.ndarray) or nodes.dtype.names is None:
        raise est.fail("tree_.nodes is not a structured array")
    for field in ("left_child", "right_child", "feature", "threshold"):
        if field not in nodes.dtype.names:
            raise est.fail(f"tree_.nodes has no field {field!r}")
    if not isinstance(values, np.ndarray) or values.ndim != 3 or values.dtype.kind != "f":
        raise est.fail("tree_.values is not a 3-D float array")
    if count != len(nodes) or len(values) != len(nodes) or len(nodes) < 1:
        raise est.fail(
            f"tree_ has {len(nodes)} nodes, {len(values)} values and node_count {count!r}"
        )
    return {"nodes": nodes, "values": values}, args


def _split_arrays(
    nodes: np.ndarray,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    left = nodes["left_child"].astype(np.int64)
    right = nodes["right_child"].astype(np.int64)
    flags = np.zeros(len(nodes), dtype=np.uint8)
    if "missing_go_to_left" in (nodes.dtype.names or ()):
        flags |= (nodes["missing_go_to_left"] != 0).astype(np.uint8)
    return left, right, nodes["feature"].astype(np.int64), nodes["threshold"], flags


#: criteria whose splitters learn missing values (1.3 to 1.8; 1.9 drops the condition)
_NAN_CRITERIA = ("gini", "log_loss", "entropy", "squared_error", "friedman_mse", "poisson")


def _nan_support(est: Node, kind: str, nodes: np.ndarray) -> int:
    """Whether this tree, in the scikit-learn version that saved it, accepts
    NaN at predict time (routing it by missing_go_to_left): that version's
    _support_missing_values and allow_nan tag, which look at the splitter,
    the criterion and monotonic constraints.  A forest asks its first tree
    (all alike) from 1.4 on, and refuses NaN before."""
    if "missing_go_to_left" not in (nodes.dtype.names or ()):
        return Accept.FINITE  # written before 1.3
    version = est.version
    if version < (1, 3) or (kind in ("RandomForest", "ExtraTrees") and version < (1, 4)):
        return Accept.FINITE
    splitter = est.state.get("splitter")
    extra = est.name.startswith("Extra")
    splitters: Tuple[str, ...]
    if version >= (1, 9):
        allow = splitter == "random" if extra else True
    else:
        if version < (1, 6):
            splitters = ("best",)  # ExtraTree* used DecisionTree*'s tag
        elif extra and not (est.name == "ExtraTreeRegressor" and version < (1, 7)):
            splitters = ("random",)
        else:
            # 1.6's ExtraTreeRegressor annotated its tag instead of setting
            # it, and so kept DecisionTreeRegressor's
            splitters = ("best", "random")
        allow = splitter in splitters and est.state.get("criterion") in _NAN_CRITERIA
        if version >= (1, 4) and est.state.get("monotonic_cst") is not None:
            allow = False
    return Accept.NAN if allow else Accept.FINITE


def _class_proba(est: Node, values: np.ndarray, n_classes: int) -> np.ndarray:
    """What DecisionTreeClassifier.predict_proba returns for each node:
    since 1.4 tree_.value holds fractions and is returned as is; before, it
    held weighted counts, normalised at predict time."""
    proba = values[:, 0, :n_classes]
    if est.version >= (1, 4):
        return np.ascontiguousarray(proba)
    proba = proba.copy()
    normalizer = proba.sum(axis=1)[:, np.newaxis]
    normalizer[normalizer == 0.0] = 1.0
    proba /= normalizer
    return proba


def _classes(node: Node) -> np.ndarray:
    """classes_: one 1-D array."""
    classes = node.get("classes_")
    if isinstance(classes, list):
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): multi-output classification is not served "
            "for this estimator"
        )
    return _classes_array(node, classes)


def _output_classes(node: Node) -> Union[np.ndarray, List[np.ndarray]]:
    """classes_: one 1-D array, or (multi-output) a list of them."""
    classes = node.get("classes_")
    if isinstance(classes, list):
        return [_classes_array(node, c) for c in classes]
    return _classes_array(node, classes)


def _classes_array(node: Node, classes: Any) -> np.ndarray:
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size < 1:
        raise node.fail("classes_ must be a 1-D array")
    return np.ascontiguousarray(classes)


# ---- single trees and forests --------------------------------------------------------


def _forest_members(node: Node) -> List[Node]:
    trees = node.get("estimators_")
    if not isinstance(trees, list) or not trees:
        raise node.fail("estimators_ must be a non-empty list")
    return [_record(node, t, f"estimators_[{i}]") for i, t in enumerate(trees)]


def _build_trees(
    node: Node,
    b: Builders,
    X: Optional[Cols],
    family: str,
    members: Sequence[Node],
    is_classifier: bool,
    average: bool,
) -> Built:
    trees = _Trees()
    n_features: Optional[int] = None
    accept = Accept.NAN
    classes: Optional[np.ndarray] = None
    if is_classifier:
        found = _output_classes(node)
        if isinstance(found, list):
            return _build_multi_output(node, b, X, family, members, found, average)
        classes = found
    n_outputs = int(node.get("n_outputs_", 1))
    for est in members:
        arrays, args = _tree_of(est)
        nodes, values = arrays["nodes"], arrays["values"]
        if n_features is None:
            n_features = int(args[0])
        elif int(args[0]) != n_features:
            raise est.fail("trees of one forest disagree on the number of features")
        accept = min(accept, _nan_support(est, family, nodes))
        left, right, feature, threshold, flags = _split_arrays(nodes)
        if classes is not None:
            if values.shape[1] != 1 or values.shape[2] < classes.size:
                raise est.fail(f"tree_.values has shape {values.shape} for {classes.size} classes")
            leaf = (
                _class_proba(est, values, classes.size)
                if average or est.version >= (1, 4)
                else np.ascontiguousarray(values[:, 0, : classes.size])
            )
        else:
            if values.shape[1] != n_outputs or values.shape[2] != 1:
                raise est.fail(f"tree_.values has shape {values.shape} for {n_outputs} outputs")
            leaf = np.ascontiguousarray(values[:, :, 0])
        trees.add(left, right, feature, threshold, flags, leaf)
    if n_features is None:
        raise node.fail("holds no trees")
    if classes is not None:
        k = classes.size
        raw, n = trees.add_to(node, b, X, n_features, k, accept, average=average)
        # a single tree before 1.4 predicts the argmax of its counts and
        # normalises them for predict_proba; everything else holds fractions
        if not average and members[0].version < (1, 4):
            return classifier(
                node,
                b,
                raw,
                classes,
                n,
                label_rule=LabelRule.ARGMAX,
                proba_rule=ProbaRule.NORMALIZE,
                decision=False,
                strings=Strings.CONVERT,
            )
        return classifier(
            node,
            b,
            raw,
            classes,
            n,
            label_rule=LabelRule.ARGMAX,
            proba=raw,
            decision=False,
            strings=Strings.CONVERT,
        )
    raw, n = trees.add_to(node, b, X, n_features, n_outputs, accept, average=average)
    return regressor(node, raw, n, raw_1d=n_outputs == 1, strings=Strings.CONVERT)


def _build_multi_output(
    node: Node,
    b: Builders,
    X: Optional[Cols],
    family: str,
    members: Sequence[Node],
    classes: List[np.ndarray],
    average: bool,
) -> Built:
    """Multi-output classification: each leaf holds every output's class
    distribution side by side; the Model slices and labels them."""
    trees = _Trees()
    n_features: Optional[int] = None
    accept = Accept.NAN
    sizes = [c.size for c in classes]
    for est in members:
        arrays, args = _tree_of(est)
        nodes, values = arrays["nodes"], arrays["values"]
        if n_features is None:
            n_features = int(args[0])
        if values.shape[1] != len(classes) or values.shape[2] < max(sizes):
            raise est.fail(f"tree_.values has shape {values.shape} for {len(classes)} outputs")
        accept = min(accept, _nan_support(est, family, nodes))
        parts = []
        for k, size in enumerate(sizes):
            v = values[:, k : k + 1, :]
            if average or est.version >= (1, 4):
                parts.append(_class_proba(est, v, size))
            else:
                parts.append(np.ascontiguousarray(v[:, 0, :size]))
        trees.add(*_split_arrays(nodes), np.concatenate(parts, axis=1))
    if n_features is None:
        raise node.fail("holds no trees")
    raw, n = trees.add_to(node, b, X, n_features, sum(sizes), accept, average=average)
    starts = np.cumsum([0] + sizes)
    blocks = [raw[starts[k] : starts[k + 1]] for k in range(len(sizes))]
    if not average and members[0].version < (1, 4):
        # a single tree before 1.4 normalised each output's counts
        blocks = [
            b.add(node, Proba(rule=ProbaRule.NORMALIZE, n_classes=len(c)), c, len(c))
            for c in blocks
        ]
    proba = Cols.concat(blocks)
    log = b.add(node, Post(rule=PostRule.LOG), proba, len(proba))
    labels = Cols.concat(b.add(node, Labels(rule=LabelRule.ARGMAX), c, 1) for c in blocks)
    outputs = {
        "predict": Out(labels, column_classes=classes, column_dtype=classes[0].dtype),
        "predict_proba": Out(proba, split=sizes),
        "predict_log_proba": Out(log, split=sizes),
    }
    return Built(
        node.name,
        "classifier",
        outputs,
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=Strings.CONVERT,
    )


@register("sklearn.tree", "DecisionTreeClassifier", "ExtraTreeClassifier")
def build_tree_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    family = "ExtraTree" if node.name.startswith("Extra") else "DecisionTree"
    return _build_trees(node, b, X, family, [node], is_classifier=True, average=False)


@register("sklearn.tree", "DecisionTreeRegressor", "ExtraTreeRegressor")
def build_tree_regressor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    family = "ExtraTree" if node.name.startswith("Extra") else "DecisionTree"
    return _build_trees(node, b, X, family, [node], is_classifier=False, average=False)


@register("sklearn.ensemble", "RandomForestClassifier", "ExtraTreesClassifier")
def build_forest_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    family = "ExtraTrees" if node.name.startswith("Extra") else "RandomForest"
    return _build_trees(node, b, X, family, _forest_members(node), is_classifier=True, average=True)


@register("sklearn.ensemble", "RandomForestRegressor", "ExtraTreesRegressor")
def build_forest_regressor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    family = "ExtraTrees" if node.name.startswith("Extra") else "RandomForest"
    return _build_trees(
        node, b, X, family, _forest_members(node), is_classifier=False, average=True
    )


# ---- gradient boosting -------------------------------------------------------------------

_F64_EPS = float(np.finfo(np.float64).eps)
_F32_EPS = float(np.finfo(np.float32).eps)


def _logit(p: np.ndarray) -> np.ndarray:
    """scipy.special.logit as scipy >= 1.11 computes it (precise near 0.5)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.log(p / (1 - p))
    mid = (p >= 0.3) & (p <= 0.65)
    s = 2 * (p[mid] - 0.5)
    out[mid] = np.log1p(s) - np.log1p(-s)
    return out


def _gb_loss_name(node: Node) -> Tuple[str, bool]:
    """(loss, modern), decided by the version that saved the file: modern =
    the sklearn._loss objects and _init_raw_predictions of 1.4+.  Before,
    the loss was a sklearn.ensemble._gb_losses object, stored as loss_ and,
    from 1.1 to 1.3, as _loss (the attribute's name says nothing)."""
    loss = node.state.get("_loss")
    if not isinstance(loss, Record):
        loss = node.state.get("loss_")
    if not isinstance(loss, Record):
        raise node.fail("has neither _loss nor loss_")
    modern = node.version >= (1, 4)
    if modern != loss.path.startswith("sklearn._loss."):
        version = node.state.get("_sklearn_version")
        raise node.fail(
            f"its loss is a {loss.path}, which scikit-learn {version} "
            "never saved with GradientBoosting"
        )
    return loss.path.rsplit(".", 1)[-1], modern


def _gb_init(node: Node, loss: str, modern: bool, k: int, classifier: bool) -> np.ndarray:
    """The constant raw prediction of init_ (a Dummy estimator) or zeros, as
    _init_raw_predictions (1.4+) or the old losses' get_init_raw_predictions
    compute it.  The two disagree for more than two classes: the old
    MultinomialDeviance started from log(p), the symmetric multinomial logit
    of 1.4+ from log(p) - mean(log(p))."""
    init = node.get("init_")
    if init == "zero":
        return np.zeros(k)
    est = _record(node, init, "init_")
    if classifier:
        if est.name != "DummyClassifier":
            raise UnsupportedModelError(
                f"{node.where}.init_ is a {est.name}; only DummyClassifier or 'zero' is served"
            )
        prior = est.array("class_prior_", ndim=(1,), kinds="f").astype(np.float64)
        if est.get("_strategy", est.get("strategy", "prior")) != "prior":
            raise UnsupportedModelError(f"{node.where}.init_: only strategy='prior' is served")
        if modern:
            # probabilities are clipped to [eps, 1 - eps] first: with float32's
            # eps up to 1.7 (as the old losses did), with float64's from 1.8
            eps = _F64_EPS if node.version >= (1, 8) else _F32_EPS
            if k == 1:
                p = np.clip(prior[1:2], eps, 1 - eps)
                raw = _logit(p)
                return 0.5 * raw if loss == "ExponentialLoss" else raw
            p = np.clip(prior[np.newaxis, :], eps, 1 - eps)
            gm = np.exp(np.mean(np.log(p), axis=1))
            return np.log(p / gm[:, None])[0]
        eps = _F32_EPS
        if k == 1:
            p = np.clip(prior[1:2], eps, 1 - eps)
            raw = np.log(p / (1 - p))
            return 0.5 * raw if loss == "ExponentialLoss" else raw
        p = np.clip(prior, eps, 1 - eps)
        return np.log(p).astype(np.float64)
    if est.name != "DummyRegressor":
        raise UnsupportedModelError(
            f"{node.where}.init_ is a {est.name}; only DummyRegressor or 'zero' is served"
        )
    constant = est.array("constant_", ndim=(0, 1, 2), kinds="fiu").astype(np.float64)
    return np.ravel(constant)[:1].copy()


def _gb_trees(node: Node, k: int, learning_rate: float) -> Tuple[_Trees, np.ndarray, int]:
    stages = node.get("estimators_")
    if (
        not isinstance(stages, np.ndarray)
        or stages.dtype.kind != "O"
        or stages.ndim != 2
        or stages.shape[1] != k
        or stages.shape[0] < 1
    ):
        raise node.fail(f"estimators_ must be an object array of shape (n_stages, {k})")
    trees = _Trees()
    columns = []
    n_features: Optional[int] = None
    lr = np.float64(learning_rate)
    for i in range(stages.shape[0]):
        for j in range(k):
            est = _record(node, stages[i, j], f"estimators_[{i}, {j}]")
            arrays, args = _tree_of(est)
            nodes, values = arrays["nodes"], arrays["values"]
            if n_features is None:
                n_features = int(args[0])
            left, right, feature, threshold, flags = _split_arrays(nodes)
            if values.shape[1:] != (1, 1):
                raise est.fail(f"tree_.values has shape {values.shape}, expected (n, 1, 1)")
            # predict_stages adds scale * value: the same product, once
            trees.add(left, right, feature, threshold, flags, (lr * values[:, 0, :]))
            columns.append(j)
    if n_features is None:
        raise node.fail("estimators_ holds no trees")
    return trees, np.asarray(columns, dtype=np.int32), n_features


def _learning_rate(node: Node) -> float:
    lr = node.get("learning_rate")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool):
        raise node.fail(f"learning_rate is {lr!r}")
    return float(lr)


@register("sklearn.ensemble", "GradientBoostingClassifier")
def build_gb_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    classes = _classes(node)
    loss, modern = _gb_loss_name(node)
    k = 1 if classes.size == 2 else classes.size
    trees, columns, n_features = _gb_trees(node, k, _learning_rate(node))
    init = _gb_init(node, loss, modern, k, classifier=True)
    if loss in ("HalfBinomialLoss", "BinomialDeviance"):
        proba = ProbaRule.EXPIT_OVR
    elif loss == "ExponentialLoss":
        proba = ProbaRule.EXPIT2
    elif loss in ("HalfMultinomialLoss", "MultinomialDeviance"):
        proba = ProbaRule.SOFTMAX
    else:
        raise UnsupportedModelError(f"{node.where}: GradientBoosting loss {loss} is not served")
    raw, n = trees.add_to(node, b, X, n_features, k, Accept.FINITE, column=columns, init=init)
    if modern or loss == "ExponentialLoss":
        return classifier(
            node,
            b,
            raw,
            classes,
            n,
            proba_rule=proba,
            raw_1d=k == 1,
            label_rule=LabelRule.THRESHOLD_GE if k == 1 else LabelRule.ARGMAX,
            strings=Strings.CONVERT,
        )
    # before 1.4 the deviance losses predicted the argmax of predict_proba
    return classifier(
        node,
        b,
        raw,
        classes,
        n,
        proba_rule=proba,
        raw_1d=k == 1,
        label_rule=LabelRule.ARGMAX,
        label_from_proba=True,
        strings=Strings.CONVERT,
    )


@register("sklearn.ensemble", "GradientBoostingRegressor")
def build_gb_regressor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    loss, modern = _gb_loss_name(node)
    trees, columns, n_features = _gb_trees(node, 1, _learning_rate(node))
    init = _gb_init(node, loss, modern, 1, classifier=False)
    raw, n = trees.add_to(node, b, X, n_features, 1, Accept.FINITE, column=columns, init=init)
    return regressor(node, raw, n, raw_1d=True, strings=Strings.CONVERT)


# ---- histogram gradient boosting ---------------------------------------------------------


def _bitset_rows(value, what: str, node: Node) -> np.ndarray:
    arr = np.asarray(value)
    if arr.size == 0:
        return np.zeros((0, 8), dtype=np.uint32)
    if arr.ndim != 2 or arr.shape[1] != 8 or arr.dtype.kind not in "ui":
        raise node.fail(f"{what} must be an (n, 8) array of uint32 bitsets")
    return arr.astype(np.uint32)


def _known_bitsets(node: Node, n: int):
    """known_cat_bitsets and f_idx_map of _BinMapper.make_known_categories_bitsets."""
    if "_bin_mapper" not in node.state and "bin_mapper_" in node.state:
        return None, None  # 0.22-0.23: bin_mapper_, and no categorical features
    mapper = _record(node, node.get("_bin_mapper"), "_bin_mapper")
    is_cat = mapper.get("is_categorical_")
    if is_cat is None:
        return None, None
    is_cat = np.asarray(is_cat, dtype=bool)
    if is_cat.shape != (n,):
        raise mapper.fail("is_categorical_ does not match the features")
    indices = np.flatnonzero(is_cat)
    f_idx_map = np.zeros(n, dtype=np.int64)
    f_idx_map[indices] = np.arange(indices.size)
    thresholds = mapper.get("bin_thresholds_")
    known = np.zeros((indices.size, 8), dtype=np.uint32)
    for mapped, f in enumerate(indices):
        for raw in np.asarray(thresholds[f]).ravel():
            code = int(raw)
            if not 0 <= code < 256:
                raise mapper.fail(f"category {raw!r} of feature {f} is outside 0..255")
            known[mapped, code >> 5] |= np.uint32(1 << (code & 31))
    return known, f_idx_map


def _hgb_encoder(node: Node, n: int) -> Union[Encode, Tuple[np.ndarray, List[np.ndarray]], None]:
    """The OrdinalEncoder + column reordering of HistGradientBoosting's
    _preprocessor (1.4+, categorical features): categorical columns first,
    encoded as their index in categories_ (unknown and NaN -> NaN)."""
    pre = node.state.get("_preprocessor")
    if pre is None:
        return None
    pre = _record(node, pre, "_preprocessor")
    is_cat = np.asarray(node.get("is_categorical_"), dtype=bool)
    if is_cat.shape != (n,):
        raise node.fail("is_categorical_ does not match the features")
    transformers = pre.get("transformers_")
    encoder = None
    for item in transformers:
        if isinstance(item, tuple) and len(item) == 3 and item[0] == "encoder":
            encoder = _record(pre, item[1], "transformers_[encoder]")
    if encoder is None:
        raise pre.fail("has no fitted 'encoder'")
    categories = encoder.get("categories_")
    cat_cols = np.flatnonzero(is_cat)
    if not isinstance(categories, list) or len(categories) != cat_cols.size:
        raise encoder.fail("categories_ does not match the categorical features")
    perm = np.concatenate([cat_cols, np.flatnonzero(~is_cat)]).astype(np.int64)
    offsets = np.zeros(len(categories) + 1, dtype=np.int64)
    flat = []
    for j, cats in enumerate(categories):
        cats = np.asarray(cats)
        if cats.dtype.kind not in "fiub":
            # strings (or a pandas category dtype's labels): read as keys
            return (cat_cols, [np.asarray(c) for c in categories])
        cats = cats.astype(np.float64)
        cats = cats[~np.isnan(cats)]
        flat.append(cats)
        offsets[j + 1] = offsets[j] + cats.size
    values = np.concatenate(flat) if flat else np.zeros(0)
    return Encode(perm=perm, categories=values, offsets=offsets)


def _hgb_trees(node: Node, n: int, k: int):
    predictors = node.get("_predictors")
    if not isinstance(predictors, list) or not predictors:
        raise node.fail("_predictors must be a non-empty list")
    known, f_idx_map = _known_bitsets(node, n)
    trees = _Trees()
    columns = []
    cat_rows: List[np.ndarray] = []
    n_cat_rows = 0
    for i, iteration in enumerate(predictors):
        if not isinstance(iteration, list) or len(iteration) != k:
            raise node.fail(f"_predictors[{i}] must hold {k} predictors")
        for j, pred in enumerate(iteration):
            p = _record(node, pred, f"_predictors[{i}][{j}]")
            nodes = p.get("nodes")
            names = getattr(getattr(nodes, "dtype", None), "names", None) or ()
            if "missing_go_to_left" not in names:
                raise UnsupportedModelError(
                    f"{node.where} ({node.name}): HistGradientBoosting from scikit-learn "
                    "< 0.22 (experimental, no missing values) is not served"
                )
            # num_threshold was named threshold up to 0.23
            num_threshold = "num_threshold" if "num_threshold" in names else "threshold"
            for field in (
                "value",
                "feature_idx",
                num_threshold,
                "missing_go_to_left",
                "left",
                "right",
                "is_leaf",
            ):
                if field not in names:
                    raise p.fail(f"nodes has no field {field!r}")
            is_leaf = nodes["is_leaf"] != 0
            left = np.where(is_leaf, -1, nodes["left"].astype(np.int64))
            right = np.where(is_leaf, -1, nodes["right"].astype(np.int64))
            flags = (nodes["missing_go_to_left"] != 0).astype(np.uint8)
            threshold = nodes[num_threshold].astype(np.float64)
            if "is_categorical" in names and np.any(nodes["is_categorical"][~is_leaf]):
                if known is None:
                    raise p.fail("categorical splits but no known categories")
                raw_left = _bitset_rows(p.get("raw_left_cat_bitsets"), "raw_left_cat_bitsets", p)
                cat = (nodes["is_categorical"] != 0) & ~is_leaf
                for idx in np.flatnonzero(cat):
                    b = int(nodes["bitset_idx"][idx])
                    f = int(nodes["feature_idx"][idx])
                    if not 0 <= b < len(raw_left) or not 0 <= f < n:
                        raise p.fail("categorical split names a missing bitset")
                    threshold[idx] = float(n_cat_rows)
                    cat_rows.append(np.concatenate([raw_left[b], known[f_idx_map[f]]])[None])
                    n_cat_rows += 1
                flags |= cat.astype(np.uint8) << 1
            trees.add(
                left,
                right,
                nodes["feature_idx"].astype(np.int64),
                threshold,
                flags,
                nodes["value"].astype(np.float64)[:, None],
            )
            columns.append(j)
    cats = np.ascontiguousarray(np.concatenate(cat_rows).astype(np.uint32)) if cat_rows else None
    return trees, np.asarray(columns, dtype=np.int32), cats


def _hgb_raw(node: Node, b: Builders, X: Optional[Cols], k: int) -> Tuple[Cols, int]:
    """The encoder (categorical features) and the forest: the raw scores."""
    # n_features_in_ from 0.24, n_features_ before
    n = node.integer("n_features_in_" if "n_features_in_" in node.state else "n_features_")
    encoder = _hgb_encoder(node, n)
    trees, columns, cats = _hgb_trees(node, n, k)
    baseline = node.array("_baseline_prediction", ndim=(0, 1, 2), kinds="f")
    baseline = np.ravel(baseline).astype(np.float64)
    if baseline.size != k:
        raise node.fail(f"_baseline_prediction has {baseline.size} values for {k} outputs")
    if n < 1:
        raise node.fail(f"n_features_in_ is {n}")
    X = b.input(node, X, n)
    if isinstance(encoder, tuple):
        # categories of any type: the categorical columns' codes first, the
        # others after them, as the _preprocessor's ColumnTransformer orders
        # them
        from mlfast._builders.encoders import ordinal_codes

        cat_cols, categories = encoder
        codes = ordinal_codes(b, node, X[cat_cols], categories)
        rest = np.setdiff1d(np.arange(n), cat_cols)
        X = Cols.concat([codes, X[rest]]) if rest.size else codes
    elif encoder is not None:
        # its OrdinalEncoder's own check_array names no input
        X = b.add(node, encoder, X, n, unnamed=True)
    return trees.add_to(
        node, b, X, n, k, Accept.ANY, cast_f32=False, column=columns, cats=cats, init=baseline
    )


def _hgb_loss(node: Node) -> str:
    loss = node.state.get("_loss")
    if isinstance(loss, Record):
        return loss.path.rsplit(".", 1)[-1]
    old = node.state.get("loss_")
    if isinstance(old, Record):
        return old.path.rsplit(".", 1)[-1]
    raise node.fail("has no _loss")


@register("sklearn.ensemble", "HistGradientBoostingClassifier")
def build_hgb_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    classes = _classes(node)
    k = node.integer("n_trees_per_iteration_")
    if (k == 1) != (classes.size == 2):
        raise node.fail(f"{k} trees per iteration for {classes.size} classes")
    loss = _hgb_loss(node)
    if loss not in (
        "HalfBinomialLoss",
        "BinaryCrossEntropy",
        "HalfMultinomialLoss",
        "CategoricalCrossEntropy",
    ):
        raise UnsupportedModelError(f"{node.where}: loss {loss} is not served")
    raw, n = _hgb_raw(node, b, X, k)
    # HistGradientBoostingClassifier has no predict_log_proba; predict is the
    # argmax of predict_proba
    return classifier(
        node,
        b,
        raw,
        classes,
        n,
        label_rule=LabelRule.ARGMAX,
        proba_rule=ProbaRule.EXPIT_OVR if k == 1 else ProbaRule.SOFTMAX,
        raw_1d=k == 1,
        log_proba=False,
        label_from_proba=True,
        strings=Strings.CONVERT,
    )


@register("sklearn.ensemble", "HistGradientBoostingRegressor")
def build_hgb_regressor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    loss = _hgb_loss(node)
    if loss in (
        "HalfSquaredError",
        "AbsoluteError",
        "PinballLoss",
        "LeastSquares",
        "LeastAbsoluteDeviation",
        "HalfTweedieLossIdentity",
    ):
        link_exp = False
    elif loss in ("HalfPoissonLoss", "HalfGammaLoss", "Poisson", "HalfTweedieLoss"):
        link_exp = True
    else:
        raise UnsupportedModelError(f"{node.where}: loss {loss} is not served")
    raw, n = _hgb_raw(node, b, X, 1)
    if link_exp:
        raw = b.add(node, Post(rule=PostRule.EXP), raw, 1)
    return regressor(node, raw, n, raw_1d=True, strings=Strings.CONVERT)


# ---- isolation forest ---------------------------------------------------------------------


def _average_path_length(n_samples_leaf) -> np.ndarray:
    """sklearn.ensemble._iforest._average_path_length, same operations."""
    n = np.asarray(n_samples_leaf, dtype=np.float64).reshape((1, -1))
    out = np.zeros(n.shape)
    mask_1 = n <= 1
    mask_2 = n == 2
    not_mask = ~np.logical_or(mask_1, mask_2)
    out[mask_1] = 0.0
    out[mask_2] = 1.0
    out[not_mask] = (
        2.0 * (np.log(n[not_mask] - 1.0) + np.euler_gamma) - 2.0 * (n[not_mask] - 1.0) / n[not_mask]
    )
    return out.reshape(np.asarray(n_samples_leaf).shape)


def _node_depths(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    depth = np.zeros(len(left), dtype=np.int64)
    stack = [0]
    while stack:
        i = stack.pop()
        if left[i] >= 0:
            for child in (left[i], right[i]):
                if not 0 <= child < len(left):
                    raise ModelFormatError("isolation tree child out of range")
                depth[child] = depth[i] + 1
                stack.append(child)
    return depth


@register("sklearn.ensemble", "IsolationForest")
def build_isolation_forest(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    members = _forest_members(node)
    features = node.get("estimators_features_")
    if not isinstance(features, list) or len(features) != len(members):
        raise node.fail("estimators_features_ must list one feature array per tree")
    path_lengths = node.state.get("_decision_path_lengths")
    avg_lengths = node.state.get("_average_path_length_per_tree")
    if node.state.get("behaviour") == "old":
        # up to 0.21, behaviour='old' predicted by comparing with threshold_
        raise UnsupportedModelError(
            f"{node.where} (IsolationForest): behaviour='old' (scikit-learn < 0.22) is not "
            "served; fit it again with behaviour='new'"
        )
    # n_features_in_ from 0.24, n_features_ before
    n = node.integer("n_features_in_" if "n_features_in_" in node.state else "n_features_")
    trees = _Trees()
    for t, est in enumerate(members):
        arrays, _ = _tree_of(est)
        nodes = arrays["nodes"]
        left, right, feature, threshold, flags = _split_arrays(nodes)
        feats = np.asarray(features[t], dtype=np.int64)
        internal = left >= 0
        if internal.any():
            if feature[internal].max() >= feats.size or feature[internal].min() < 0:
                raise est.fail("splits on a feature outside estimators_features_")
            feature = feature.copy()
            feature[internal] = feats[feature[internal]]
        if path_lengths is not None and avg_lengths is not None:
            path = np.asarray(path_lengths[t], dtype=np.float64)
            avg = np.asarray(avg_lengths[t], dtype=np.float64)
        else:
            # before 1.4: nodes on the decision path and the leaf's size
            path = (_node_depths(left, right) + 1).astype(np.float64)
            avg = _average_path_length(nodes["n_node_samples"])
        if path.shape != (len(nodes),) or avg.shape != (len(nodes),):
            raise est.fail("path length arrays do not match the tree")
        trees.add(left, right, feature, threshold, flags, ((path + avg) - 1.0)[:, None])
    max_samples = node.state.get("_max_samples", node.state.get("max_samples_"))
    if not isinstance(max_samples, (int, np.integer)) or isinstance(max_samples, bool):
        raise node.fail(f"max_samples_ is {max_samples!r}")
    denominator = len(members) * _average_path_length([max_samples])[0]
    offset = float(node.get("offset_"))
    raw, n = trees.add_to(node, b, X, n, 1, Accept.ANY)
    score = b.add(node, Post(rule=PostRule.IFOREST, denominator=float(denominator)), raw, 1)
    decision = b.add(
        node, Post(rule=PostRule.IFOREST, denominator=float(denominator), offset=offset), raw, 1
    )
    labels = b.add(node, Labels(rule=LabelRule.THRESHOLD_GE), decision, 1)
    outputs = {
        "predict": Out(labels, classes=np.array([-1, 1], dtype=np.int64), squeeze=True),
        "decision_function": Out(decision, squeeze=True),
        "score_samples": Out(score, squeeze=True),
    }
    return Built(
        node.name,
        "outlier_detector",
        outputs,
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=Strings.CONVERT,
    )
