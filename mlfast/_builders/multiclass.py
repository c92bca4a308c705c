"""Meta-estimators over other estimators: calibration, one-vs-rest,
one-vs-one, output codes, multi-output and chains, decision thresholds,
self-training, target transforms and FrozenEstimator.

Each builds its members over its own input (any estimator mlfast serves,
nested as deep as the file nests them) and combines their answers with the
ops of csrc/multiclass.c and links.c, following the code of the
scikit-learn version that saved the file (``node.version``).  Members are
added in the order scikit-learn calls them, so the first to refuse a row is
the one scikit-learn would name.
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional

import numpy as np

from mlfast._builders import Builders, Node, register
from mlfast._builders.functions import apply, function_code, no_kwargs, validates
from mlfast._builders.ir import (
    FUNCTIONS,
    Accept,
    Affine,
    Average,
    Built,
    Calibrate,
    CalibrateRule,
    Cast,
    CastRule,
    Cols,
    Constant,
    Ecoc,
    EcocRule,
    Function,
    LabelRule,
    Labels,
    Normalize,
    NormalizeRule,
    Out,
    OvoVotes,
    OvrArgmax,
    Strings,
    Take,
)
from mlfast._core import Global, Record
from mlfast.errors import UnsupportedModelError

# ---- members ------------------------------------------------------------------------


def _record(node: Node, value, what: str) -> Node:
    if not isinstance(value, Record):
        raise node.fail(f"{what} is a {type(value).__name__}, expected an estimator")
    return Node(value, f"{node.where}.{what}")


def _members(node: Node, key: str = "estimators_") -> list:
    value = node.get(key)
    if not isinstance(value, (list, tuple)) or not value:
        raise node.fail(f"{key} must be a non-empty list of estimators")
    return list(value)


def _input(b: Builders, X: Optional[Cols]) -> Cols:
    """The columns the members read: X, or the model's input once the first
    member has fixed its width."""
    if X is not None:
        return X
    if b.graph.n_features is None:
        raise ValueError("the model's input is read before its width is known")
    return Cols(np.arange(b.graph.n_features))


def _classes(node: Node, value=None, key: str = "classes_") -> np.ndarray:
    classes = node.get(key) if value is None else value
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size < 1:
        raise node.fail(f"{key} must be a 1-D array of labels")
    if classes.dtype.kind not in "biufUSO":
        raise node.fail(f"{key} has dtype {classes.dtype}")
    return np.ascontiguousarray(classes)


def _constant_predictor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    """_ConstantPredictor, what one-vs-rest and output codes keep for a
    column of one value: predict, decision_function and predict_proba
    repeat it (it checks nothing)."""
    y = node.array("y_", ndim=(1,), kinds="biuf")
    if y.size != 1:
        raise node.fail(f"y_ has {y.size} values, expected 1")
    value = float(y[0])
    X = b.input(node, X, node.integer("n_features_in_") if X is None else len(X))
    first = X[0:1]
    score = b.add(node, Constant(values=np.array([value])), first, 1)
    proba = b.add(node, Constant(values=np.array([1.0 - value, value])), first, 2)
    labels = b.add(node, Labels(rule=LabelRule.ARGMAX), score, 1)
    outputs = {
        "predict": Out(labels, classes=np.ascontiguousarray(y), squeeze=True),
        "decision_function": Out(score, squeeze=True),
        "predict_proba": Out(proba),
    }
    return Built(
        node.name, "constant", outputs, len(X), first_name=node.name, strings=Strings.CONVERT
    )


def _build(node: Node, b: Builders, value, what: str, X: Optional[Cols]) -> Built:
    """A member, at node.where + '.' + what."""
    if isinstance(value, Record) and value.path == "sklearn.multiclass._ConstantPredictor":
        return _constant_predictor(Node(value, f"{node.where}.{what}"), b, X)
    return b.build(value, f"{node.where}.{what}", X)


def _out(node: Node, member: Built, method: str, what: str) -> Out:
    out = member.outputs.get(method)
    if out is None:
        raise UnsupportedModelError(
            f"{node.where}.{what} ({member.name}) has no {method}, which {node.name} needs"
        )
    return out


def _width1(node: Node, member: Built, method: str, what: str) -> Cols:
    cols = _out(node, member, method, what).cols
    if len(cols) != 1:
        raise UnsupportedModelError(
            f"{node.where}.{what} ({member.name}): its {method} has {len(cols)} columns, "
            f"where {node.name} reads one"
        )
    return cols


def _binary_score(node: Node, member: Built, what: str) -> Cols:
    """sklearn.multiclass._predict_binary: a regressor's predict, else the
    decision function, else the probability of the second class."""
    if member.kind == "regressor":
        return _width1(node, member, "predict", what)
    if "decision_function" in member.outputs:
        return _width1(node, member, "decision_function", what)
    proba = _out(node, member, "predict_proba", what).cols
    if len(proba) != 2:
        raise UnsupportedModelError(
            f"{node.where}.{what} ({member.name}) is not a binary classifier"
        )
    return proba[1:2]


def _binary_threshold(member: Built) -> float:
    """sklearn.multiclass._threshold_for_binary_predict."""
    if member.kind == "classifier" and "decision_function" in member.outputs:
        return 0.0
    return 0.5


class _Labels(NamedTuple):
    """A single-output classifier's predict: its column and its classes."""

    cols: Cols
    classes: np.ndarray


def _labels_of(node: Node, member: Built, what: str) -> _Labels:
    """A member's predict: one column of class indices and its classes."""
    out = _out(node, member, "predict", what)
    if out.classes is None or len(out.cols) != 1:
        raise UnsupportedModelError(
            f"{node.where}.{what} ({member.name}) is not a single-output classifier"
        )
    return _Labels(out.cols, out.classes)


def _meta(
    node: Node,
    name: str,
    kind: str,
    outputs: Dict[str, Out],
    first: Built,
    checks_itself: bool = False,
) -> Built:
    """The meta-estimator's Built: its width and names, and who checks X
    first (the meta-estimator itself, or its first member)."""
    n = node.state.get("n_features_in_", first.n_features_in)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n != first.n_features_in:
        raise node.fail(
            f"n_features_in_ is {n!r} but its members read {first.n_features_in} columns"
        )
    names = node.feature_names() if "feature_names_in_" in node.state else first.feature_names_in
    if checks_itself:
        return Built(
            name,
            kind,
            outputs,
            int(n),
            feature_names_in=names,
            first_name=node.name,
            strings=Strings.REFUSE,
        )
    return Built(
        name,
        kind,
        outputs,
        int(n),
        feature_names_in=names,
        first_name=first.first_name,
        strings=first.strings,
        string_prefix=first.string_prefix,
        warn_name=first.warn_name,
        names_required=first.names_required,
    )


def _flag(node: Node, key: str, default: bool) -> bool:
    value = node.get(key, default)
    if not isinstance(value, (bool, np.bool_)):
        raise node.fail(f"{key} is {value!r}, expected True or False")
    return bool(value)


# ---- CalibratedClassifierCV ---------------------------------------------------------


def _calibrators(cal: Node, method: str, n: int, columns: np.ndarray, k: int):
    """The calibrate op of one _CalibratedClassifier over n score columns."""
    # (calibrators_ before 0.24)
    items = cal.get("calibrators" if "calibrators" in cal.state else "calibrators_")
    if not isinstance(items, list) or not items:
        raise cal.fail("calibrators must be a non-empty list")
    if method == "temperature":
        temp = _record(cal, items[0], "calibrators[0]")
        beta = temp.array("beta_", ndim=(0, 1), kinds="f")
        if beta.size != 1:
            raise temp.fail("beta_ must be one number")
        return dict(rule=CalibrateRule.TEMPERATURE, beta=float(beta.ravel()[0])), n
    # zip(pos_class_indices, predictions.T, calibrators): the shortest wins
    n = min(n, len(items), columns.size)
    nodes = [_record(cal, items[c], f"calibrators[{c}]") for c in range(n)]
    if method == "sigmoid":
        a = np.array([float(c.array("a_", ndim=(0,), kinds="f")) for c in nodes])
        b = np.array([float(c.array("b_", ndim=(0,), kinds="f")) for c in nodes])
        return dict(rule=CalibrateRule.SIGMOID, columns=columns[:n], a=a, b=b), n
    if method != "isotonic":
        raise UnsupportedModelError(f"{cal.where}: calibration method {method!r} is not served")
    xs, ys, lo, hi = [], [], [], []
    for c in nodes:
        if c.get("out_of_bounds", "clip") != "clip":
            raise UnsupportedModelError(
                f"{c.where}: IsotonicRegression(out_of_bounds={c.get('out_of_bounds')!r}) "
                "is not served"
            )
        # (_necessary_X_ and _necessary_y_ before 0.24)
        old = "X_thresholds_" not in c.state
        x = c.array("_necessary_X_" if old else "X_thresholds_", ndim=(1,), kinds="f")
        y = c.array("_necessary_y_" if old else "y_thresholds_", ndim=(1,), kinds="f")
        if x.dtype != np.float64 or y.dtype != np.float64:
            # interp1d delegates to np.interp for float64 thresholds only
            raise UnsupportedModelError(
                f"{c.where}: isotonic thresholds of dtype {x.dtype} are not served"
            )
        if x.size < 1 or x.shape != y.shape:
            raise c.fail("X_thresholds_ and y_thresholds_ must be as long")
        xs.append(x)
        ys.append(y)
        lo.append(float(c.array("X_min_", ndim=(0,), kinds="fiu")))
        hi.append(float(c.array("X_max_", ndim=(0,), kinds="fiu")))
    offsets = np.concatenate([[0], np.cumsum([x.size for x in xs])]).astype(np.int64)
    return dict(
        rule=CalibrateRule.ISOTONIC,
        columns=columns[:n],
        x=np.concatenate(xs),
        y=np.concatenate(ys),
        offsets=offsets,
        lo=np.array(lo),
        hi=np.array(hi),
    ), n


def _calibrated(node: Node, b: Builders, X: Optional[Cols], i: int, classes: np.ndarray):
    """One _CalibratedClassifier: its estimator, then its calibration."""
    what = f"calibrated_classifiers_[{i}]"
    cal = _record(node, node.get("calibrated_classifiers_")[i], what)
    key = "estimator" if "estimator" in cal.state else "base_estimator"
    member = _build(cal, b, cal.get(key), key, X)
    if member.kind != "classifier":
        raise UnsupportedModelError(f"{cal.where}.{key} ({member.name}) is not a classifier")
    # (classes_ of a LabelEncoder of classes before 0.24; the 1/n_classes
    # those versions put in place of NaN rows is what a zero sum gives now)
    own = _classes(cal, key="classes_" if "classes_" in cal.state else "classes")
    if not np.array_equal(own, classes):
        raise cal.fail("classes differ from the CalibratedClassifierCV's classes_")
    k = classes.size
    # _get_response_values(..., ["decision_function", "predict_proba"])
    if "decision_function" in member.outputs:
        scores, from_proba = member.outputs["decision_function"].cols, False
    else:
        scores, from_proba = _out(cal, member, "predict_proba", key).cols, True
        if len(scores) == 2:
            scores = scores[1:2]  # the positive class (classes_[-1])
    # LabelEncoder().fit(classes).transform(estimator.classes_)
    seen = _labels_of(cal, member, key).classes
    columns = np.searchsorted(classes, seen)
    if np.any(columns >= k) or not np.array_equal(classes[np.minimum(columns, k - 1)], seen):
        raise cal.fail(f"{key}.classes_ holds labels outside classes")
    if k == 2:
        columns = columns + 1  # binary: the one column is class 1
    method = cal.get("method")
    fields, n = _calibrators(cal, method, len(scores), columns.astype(np.int64), k)
    if method == "temperature":
        # _TemperatureScaling.predict of all the columns; probabilities are
        # taken as such (_convert_to_logits tests the whole batch for it)
        if len(scores) != k and not (len(scores) == 1 and k == 2):
            raise cal.fail(f"temperature scaling of {len(scores)} scores for {k} classes")
        op = Calibrate(n_classes=k, from_proba=from_proba, **fields)
    else:
        scores = scores[:n]
        op = Calibrate(n_classes=k, **fields)
    return member, b.add(node, op, scores, k)


@register("sklearn.calibration", "CalibratedClassifierCV")
def build_calibrated_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    classes = _classes(node)
    if classes.size < 2:
        raise node.fail("classes_ must hold at least two labels")
    k = classes.size
    first, blocks = None, []
    for i in range(len(_members(node, "calibrated_classifiers_"))):
        member, proba = _calibrated(node, b, X if first is None else _input(b, X), i, classes)
        first = first or member
        blocks.append(proba)
    if first is None:
        raise node.fail("calibrated_classifiers_ holds no classifiers")
    # mean_proba = zeros, += each, /= their number: one is itself
    proba = (
        blocks[0]
        if len(blocks) == 1
        else b.add(
            node,
            Average(weights=np.ones(len(blocks)), scale=float(len(blocks))),
            Cols.concat(blocks),
            k,
        )
    )
    labels = b.add(node, Labels(rule=LabelRule.ARGMAX), proba, 1)
    outputs = {"predict": Out(labels, classes=classes, squeeze=True), "predict_proba": Out(proba)}
    return _meta(node, f"CalibratedClassifierCV({first.name})", "classifier", outputs, first)


@register("sklearn.frozen", "FrozenEstimator")
def build_frozen_estimator(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    inner = _build(node, b, node.get("estimator"), "estimator", X)
    inner.name = f"FrozenEstimator({inner.name})"
    return inner


# ---- one-vs-rest, one-vs-one, output codes ----------------------------------------


@register("sklearn.multiclass", "OneVsRestClassifier")
def build_one_vs_rest(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    binarizer = _record(node, node.get("label_binarizer_"), "label_binarizer_")
    y_type = binarizer.get("y_type_")
    classes = _classes(node, node.state.get("classes_", binarizer.get("classes_")))
    members: List[Built] = []
    for i, est in enumerate(_members(node)):
        members.append(_build(node, b, est, f"estimators_[{i}]", _input(b, X) if members else X))
    scores = [_binary_score(node, m, f"estimators_[{i}]") for i, m in enumerate(members)]
    multilabel = isinstance(y_type, str) and y_type.startswith("multilabel")
    outputs: Dict[str, Out] = {}
    if y_type == "multiclass":
        if len(members) != classes.size:
            raise node.fail(f"{len(members)} estimators for {classes.size} classes")
        # the running maximum keeps the last estimator equal to it: since
        # 1.8 they are taken in reverse (np.argmax's first maximum)
        keep = b.add(
            node, OvrArgmax(reverse=node.version >= (1, 8)), Cols.concat(scores), len(scores)
        )
        labels = b.add(node, Labels(rule=LabelRule.ARGMAX), keep, 1)
        outputs["predict"] = Out(labels, classes=classes, squeeze=True)
    elif y_type == "binary":
        if len(members) != 1 or classes.size != 2:
            raise node.fail(f"{len(members)} estimators for binary classes")
        labels = b.add(
            node,
            Labels(rule=LabelRule.THRESHOLD, threshold=_binary_threshold(members[0])),
            scores[0],
            1,
        )
        outputs["predict"] = Out(labels, classes=classes, squeeze=True)
    elif multilabel:
        if _flag(binarizer, "sparse_input_", False):
            raise UnsupportedModelError(
                f"{node.where} ({node.name}) was fitted on a sparse label matrix; its "
                "predict is sparse, which mlfast does not serve"
            )
        # an indicator matrix: each estimator's score over the first one's threshold
        threshold = _binary_threshold(members[0])
        labels = Cols.concat(
            b.add(node, Labels(rule=LabelRule.THRESHOLD, threshold=threshold), s, 1) for s in scores
        )
        outputs["predict"] = Out(
            labels,
            column_classes=[np.array([0, 1])] * len(scores),
            column_dtype=np.dtype(int),
            estimator_classes=classes,
        )
    else:
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): targets of type {y_type!r} are not served"
        )
    if all("predict_proba" in m.outputs for m in members):
        positive = Cols.concat(
            _out(node, m, "predict_proba", f"estimators_[{i}]").cols[1:2]
            for i, m in enumerate(members)
        )
        rule = NormalizeRule.ZERO_KEEPS if node.version >= (1, 7) else NormalizeRule.ZERO_NAN
        if len(members) == 1:
            proba = b.add(node, Normalize(rule=rule, complement=True), positive, 2)
        elif multilabel:
            proba = positive
        else:
            proba = b.add(node, Normalize(rule=rule), positive, len(positive))
        outputs["predict_proba"] = Out(proba)
    if all("decision_function" in m.outputs for m in members):
        if len(members) == 1:
            outputs["decision_function"] = members[0].outputs["decision_function"]
        else:
            outputs["decision_function"] = Out(
                Cols.concat(
                    _width1(node, m, "decision_function", f"estimators_[{i}]")
                    for i, m in enumerate(members)
                )
            )
    return _meta(node, f"OneVsRestClassifier({members[0].name})", "classifier", outputs, members[0])


@register("sklearn.multiclass", "OneVsOneClassifier")
def build_one_vs_one(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    classes = _classes(node)
    k = classes.size
    if node.state.get("pairwise_indices_") is not None:
        raise UnsupportedModelError(
            f"{node.where} ({node.name}) was fitted on a precomputed kernel, which mlfast "
            "does not serve"
        )
    ests = _members(node)
    if k < 2 or len(ests) != k * (k - 1) // 2:
        raise node.fail(f"{len(ests)} estimators for {k} classes")
    members: List[Built] = []
    for i, est in enumerate(ests):
        members.append(_build(node, b, est, f"estimators_[{i}]", _input(b, X) if members else X))
    predictions, confidences = [], []
    for i, m in enumerate(members):
        out = _labels_of(node, m, f"estimators_[{i}]")
        if out.classes.tolist() != [0, 1]:
            # each pair is fitted on 0 (its first class) and 1: the index is the label
            raise node.fail(f"estimators_[{i}] has classes {out.classes.tolist()}, not [0, 1]")
        predictions.append(out.cols)
        confidences.append(_binary_score(node, m, f"estimators_[{i}]"))
    votes = b.add(node, OvoVotes(n_classes=k), Cols.concat(predictions + confidences), k)
    outputs: Dict[str, Out] = {}
    if k == 2:
        decision = votes[1:2]
        labels = b.add(
            node,
            Labels(rule=LabelRule.THRESHOLD, threshold=_binary_threshold(members[0])),
            decision,
            1,
        )
        outputs["decision_function"] = Out(decision, squeeze=True)
    else:
        labels = b.add(node, Labels(rule=LabelRule.ARGMAX), votes, 1)
        outputs["decision_function"] = Out(votes)
    outputs["predict"] = Out(labels, classes=classes, squeeze=True)
    # decision_function checks X itself (validate_data), NaN allowed
    return _meta(
        node,
        f"OneVsOneClassifier({members[0].name})",
        "classifier",
        outputs,
        members[0],
        checks_itself=True,
    )


@register("sklearn.multiclass", "OutputCodeClassifier")
def build_output_code(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    classes = _classes(node)
    code_book = node.array("code_book_", ndim=(2,), kinds="fiu").astype(np.float64)
    ests = _members(node)
    if code_book.shape != (classes.size, len(ests)):
        raise node.fail(
            f"code_book_ has shape {code_book.shape} for {classes.size} classes "
            f"and {len(ests)} estimators"
        )
    members: List[Built] = []
    for i, est in enumerate(ests):
        members.append(_build(node, b, est, f"estimators_[{i}]", _input(b, X) if members else X))
    scores = Cols.concat(_binary_score(node, m, f"estimators_[{i}]") for i, m in enumerate(members))
    # the code words' squared norms: sums of 0s and 1s, exact in any order
    code_book = np.ascontiguousarray(code_book)
    norms = np.einsum("ij,ij->i", code_book, code_book)
    rule = EcocRule.SQUARED if node.version >= (1, 3) else EcocRule.SQRT
    distances = b.add(
        node, Ecoc(rule=rule, code_book=code_book, code_norms=norms), scores, classes.size
    )
    labels = b.add(node, Labels(rule=LabelRule.ARGMAX), distances, 1)
    outputs = {"predict": Out(labels, classes=classes, squeeze=True)}
    return _meta(
        node, f"OutputCodeClassifier({members[0].name})", "classifier", outputs, members[0]
    )


# ---- multi-output and chains --------------------------------------------------------


@register("sklearn.multioutput", "MultiOutputClassifier", "MultiOutputRegressor")
def build_multi_output(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    members: List[Built] = []
    for i, est in enumerate(_members(node)):
        members.append(_build(node, b, est, f"estimators_[{i}]", _input(b, X) if members else X))
    places = [f"estimators_[{i}]" for i in range(len(members))]
    outputs: Dict[str, Out] = {}
    if node.name == "MultiOutputRegressor":
        # np.asarray([e.predict(X) for e in estimators_]).T
        outputs["predict"] = Out(
            Cols.concat(_width1(node, m, "predict", w) for m, w in zip(members, places))
        )
        return _meta(node, f"{node.name}({members[0].name})", "regressor", outputs, members[0])
    labels = [_labels_of(node, m, w) for m, w in zip(members, places)]
    outputs["predict"] = Out(
        Cols.concat(o.cols for o in labels), column_classes=[o.classes for o in labels]
    )
    if all("predict_proba" in m.outputs for m in members):
        probas = [_out(node, m, "predict_proba", w).cols for m, w in zip(members, places)]
        outputs["predict_proba"] = Out(Cols.concat(probas), split=[len(p) for p in probas])
    return _meta(node, f"{node.name}({members[0].name})", "classifier", outputs, members[0])


def _chain_responses(node: Node, b: Builders, member: Built, what: str) -> Dict[str, Cols]:
    """What a chain reads of a member, by response method: for a classifier
    the label as a number, and the positive class's column
    (_get_response_values with pos_label = classes_[-1])."""
    if node.name == "RegressorChain":
        return {"predict": _width1(node, member, "predict", what)}
    out = _labels_of(node, member, what)
    if out.classes.dtype.kind not in "biuf" or out.classes.size != 2:
        raise UnsupportedModelError(
            f"{node.where}.{what} ({member.name}) has classes {out.classes.tolist()}; a chain "
            "of binary numeric labels is served"
        )
    values = np.ascontiguousarray(out.classes, dtype=np.float64)
    responses = {
        "predict": b.add(node, Take(table=values, offsets=np.array([0, 2], np.int64)), out.cols, 1)
    }
    for method in ("predict_proba", "predict_log_proba"):
        if method in member.outputs:
            responses[method] = member.outputs[method].cols[1:2]
    if "decision_function" in member.outputs:
        responses["decision_function"] = _width1(node, member, "decision_function", what)
    return responses


@register("sklearn.multioutput", "ClassifierChain", "RegressorChain")
def build_chain(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    ests = _members(node)
    order = node.get("order_")
    # order_ is the order given (a list or an array) or a permutation drawn
    order = node.array(
        "order_",
        ndim=(1,),
        kinds="iu",
        value=np.asarray(order) if isinstance(order, list) else order,
    )
    if sorted(order.tolist()) != list(range(len(ests))):
        raise node.fail(f"order_ is not a permutation of the {len(ests)} estimators")
    # chain_method_ (1.5+) picks what feeds the next estimator; before, predict
    feed = node.state.get("chain_method_", "predict")
    if feed not in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        raise node.fail(f"chain_method_ is {feed!r}")
    if "n_features_in_" in node.state:
        n = node.integer("n_features_in_")
    else:
        # before 0.24 a chain records no width: its first estimator's, built
        # aside (it reads X alone)
        n = Builders().build(ests[0], f"{node.where}.estimators_[0]").n_features_in
    X = b.input(node, X, n)
    # validate_data (finite numbers), then np.hstack with float64 columns
    X = b.add(node, Cast(rule=CastRule.FLOAT64), X, n, accept=Accept.FINITE)
    features: List[Cols] = []
    members: List[Built] = []
    responses: List[Dict[str, Cols]] = []
    for i, est in enumerate(ests):
        what = f"estimators_[{i}]"
        member = _build(node, b, est, what, Cols.concat([X] + features))
        members.append(member)
        responses.append(_chain_responses(node, b, member, what))
        if feed not in responses[-1]:
            raise UnsupportedModelError(f"{node.where}.{what} ({member.name}) has no {feed}")
        features.append(responses[-1][feed])
    # Y_output_chain[:, inv_order]: output column j is chain position inv[j]
    inv = np.argsort(order)
    outputs: Dict[str, Out] = {}
    if node.name == "RegressorChain":
        outputs["predict"] = Out(Cols.concat(responses[i]["predict"] for i in inv))
        return _meta(
            node,
            f"RegressorChain({members[0].name})",
            "regressor",
            outputs,
            members[0],
            checks_itself=True,
        )
    # labels into a float64 array
    label_outs = [_labels_of(node, members[i], f"estimators_[{i}]") for i in inv]
    outputs["predict"] = Out(
        Cols.concat(o.cols for o in label_outs),
        column_classes=[o.classes for o in label_outs],
        column_dtype=np.dtype(np.float64),
    )
    for method in ("predict_proba", "decision_function"):
        if all(method in r for r in responses):
            outputs[method] = Out(Cols.concat(responses[i][method] for i in inv))
    if node.version >= (1, 4) and "predict_proba" in outputs:
        # np.log(self.predict_proba(X))
        proba = outputs["predict_proba"].cols
        outputs["predict_log_proba"] = Out(
            b.add(node, Function(code=FUNCTIONS["log"]), proba, len(proba))
        )
    return _meta(
        node,
        f"ClassifierChain({members[0].name})",
        "classifier",
        outputs,
        members[0],
        checks_itself=True,
    )


# ---- decision thresholds ------------------------------------------------------------

#: scikit-learn's metrics with a pos_label parameter and its default; the
#: others have none (pos_label None)
_POS_LABEL_DEFAULTS = {
    "average_precision_score": 1,
    "brier_score_loss": None,
    "d2_brier_score": None,
    "f1_score": 1,
    "fbeta_score": 1,
    "jaccard_score": 1,
    "precision_score": 1,
    "recall_score": 1,
}


def _scorer_pos_label(node: Node):
    """TunedThresholdClassifierCV's _curve_scorer._get_pos_label()."""
    scorer = _record(node, node.get("_curve_scorer"), "_curve_scorer")
    kwargs = scorer.get("_kwargs", {})
    if isinstance(kwargs, dict) and "pos_label" in kwargs:
        return kwargs["pos_label"]
    func = scorer.get("_score_func")
    if not isinstance(func, (Global, Record)) or not func.path.startswith("sklearn.metrics."):
        raise UnsupportedModelError(
            f"{scorer.where}: the scoring function is not one of scikit-learn's metrics"
        )
    return _POS_LABEL_DEFAULTS.get(func.path.rsplit(".", 1)[-1])


def _label_index(node: Node, classes: np.ndarray, label) -> int:
    found = np.flatnonzero(classes == label)
    if found.size == 0:
        raise node.fail(f"pos_label {label!r} is not one of the classes")
    return int(found[0])


@register("sklearn.model_selection", "FixedThresholdClassifier", "TunedThresholdClassifierCV")
def build_threshold_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    tuned = node.name == "TunedThresholdClassifierCV"
    key = "estimator_" if tuned or "estimator_" in node.state else "estimator"
    member = _build(node, b, node.get(key), key, X)
    classes = _labels_of(node, member, key).classes
    if classes.size != 2:
        raise node.fail(f"{key} has {classes.size} classes; a binary classifier is expected")
    pos_label = _scorer_pos_label(node) if tuned else node.get("pos_label", None)
    response = node.get("response_method", "auto")
    candidates = ["predict_proba", "decision_function"] if response == "auto" else [response]
    used = next((m for m in candidates if m in member.outputs), None)
    if used is None:
        raise UnsupportedModelError(f"{node.where}.{key} ({member.name}) has no {response}")
    pos = 1 if pos_label is None else _label_index(node, classes, pos_label)
    if tuned:
        threshold = float(node.array("best_threshold_", ndim=(0,), kinds="fiu"))
    else:
        threshold = node.get("threshold", "auto")
        if threshold == "auto":
            threshold = 0.5 if used == "predict_proba" else 0.0
        elif isinstance(threshold, bool) or not isinstance(
            threshold, (int, float, np.integer, np.floating)
        ):
            raise node.fail(f"threshold is {threshold!r}")
        threshold = float(threshold)
    # classes[map[(y_score >= threshold)]], map = [the other class, pos_label's]
    if pos == 1:
        score = (
            member.outputs[used].cols[1:2]
            if used == "predict_proba"
            else _width1(node, member, used, key)
        )
        rule = LabelRule.THRESHOLD_GE
    else:
        # the first class is the positive one: its index is 0 where
        # y_score >= threshold, so 1 where -y_score > -threshold; y_score
        # is its probability, or -d of the decision d
        # (_process_decision_function)
        if used == "predict_proba":
            score = b.add(node, Affine(mul=np.array([-1.0])), member.outputs[used].cols[0:1], 1)
        else:
            score = _width1(node, member, used, key)
        rule, threshold = LabelRule.THRESHOLD, -threshold
    labels = b.add(node, Labels(rule=rule, threshold=threshold), score, 1)
    outputs: Dict[str, Out] = {
        m: member.outputs[m]
        for m in ("predict_proba", "predict_log_proba", "decision_function")
        if m in member.outputs
    }
    outputs["predict"] = Out(labels, classes=classes, squeeze=True)
    return _meta(node, f"{node.name}({member.name})", "classifier", outputs, member)


# ---- self-training ------------------------------------------------------------------


@register("sklearn.semi_supervised", "SelfTrainingClassifier")
def build_self_training(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    key = "estimator_" if "estimator_" in node.state else "base_estimator_"
    member = _build(node, b, node.get(key), key, X)
    outputs: Dict[str, Out] = {
        m: member.outputs[m]
        for m in ("predict", "predict_proba", "predict_log_proba", "decision_function")
        if m in member.outputs
    }
    # validate_data(ensure_all_finite=False) first: its names, the member's NaN rules
    return _meta(
        node,
        f"SelfTrainingClassifier({member.name})",
        "classifier",
        outputs,
        member,
        checks_itself=True,
    )


# ---- TransformedTargetRegressor -----------------------------------------------------


def _inverse(node: Node, b: Builders, cols: Cols) -> Cols:
    """transformer_.inverse_transform of the predictions' columns."""
    name = node.name
    if name == "FunctionTransformer":
        code = function_code(node, "inverse_func")
        no_kwargs(node, "inv_kw_args")
        # check_array only with validate: finite numbers, named by no estimator
        accept = Accept.FINITE if validates(node) else Accept.ANY
        return apply(node, b, cols, code, accept, unnamed=True)
    if name == "Pipeline":
        steps = node.get("steps")
        if not isinstance(steps, list) or not steps:
            raise node.fail("steps must be a non-empty list")
        for i in range(len(steps) - 1, -1, -1):
            step = steps[i]
            if not isinstance(step, tuple) or len(step) != 2:
                raise node.fail(f"steps[{i}] is not a (name, estimator) pair")
            if step[1] is None or step[1] == "passthrough":
                continue
            cols = _inverse(_record(node, step[1], f"steps[{i}]"), b, cols)
        return cols
    n = len(cols)
    vector = lambda key: node.vector(key, n)  # noqa: E731
    # check_array(force_all_finite='allow-nan'), then the in-place operations
    if name == "StandardScaler":
        scale = node.get("scale_", None)
        op = Affine(
            mul=vector("scale_") if _flag(node, "with_std", True) and scale is not None else None,
            add=vector("mean_") if _flag(node, "with_mean", True) else None,
            cast_params=node.version >= (1, 8),
        )
    elif name == "MinMaxScaler":
        op = Affine(sub=vector("min_"), div=vector("scale_"))
    elif name == "MaxAbsScaler":
        op = Affine(mul=vector("scale_"))
    elif name == "RobustScaler":
        op = Affine(
            mul=vector("scale_") if _flag(node, "with_scaling", True) else None,
            add=vector("center_") if _flag(node, "with_centering", True) else None,
        )
    else:
        raise UnsupportedModelError(
            f"{node.where} ({name}): mlfast serves the inverse of FunctionTransformer, the "
            "scalers and pipelines of them, not of this transformer"
        )
    return b.add(node, op, cols, n, accept=Accept.NAN, unnamed=True)


@register("sklearn.compose", "TransformedTargetRegressor")
def build_transformed_target(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    member = _build(node, b, node.get("regressor_"), "regressor_", X)
    predict = _out(node, member, "predict", "regressor_")
    transformer = _record(node, node.get("transformer_"), "transformer_")
    cols = _inverse(transformer, b, predict.cols)
    dim = node.integer("_training_dim")
    # pred_trans.squeeze(axis=1) when y was 1-D
    outputs = {"predict": Out(cols, squeeze=dim == 1 and len(cols) == 1)}
    return _meta(node, f"TransformedTargetRegressor({member.name})", "regressor", outputs, member)
