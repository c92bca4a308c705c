"""XGBoost and LightGBM: their scikit-learn wrappers and Boosters.

Their pickles hold the model as data: XGBoost's Booster its model document
(UBJSON bytes), LightGBM's its model text.  The readers of
``mlfast/_gbdt_formats.py`` turn those into plain values; here they are
checked and laid out as the forest op of trees.c, with the transforms each
objective applies.  Nothing of xgboost or lightgbm is imported.

XGBoost computes in float32: X is read as float32, a split sends a value
left when ``x < split_condition`` (float32), leaves are summed into a float
margin that starts at the base score's margin, and the objective's
transform is float arithmetic (``xgb_link``, gbdt.c).  ``x < c`` for a
float32 x is ``x <= c'`` with c' the float just below c, which is how the
forest (``<=``) is given the threshold.

LightGBM computes in double: ``x <= threshold``; NaN goes the default way
when the split's missing type is NaN, is read as 0.0 when it is None; a
Zero missing type sends values within 1e-35 of zero the default way.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from mlfast._builders import Builders, Node, register, register_exact
from mlfast._builders.ir import (
    Accept,
    Affine,
    Built,
    CatRule,
    Cols,
    LabelRule,
    Labels,
    Out,
    Post,
    PostRule,
    Proba,
    ProbaRule,
    Strings,
    XgbLink,
    XgbRule,
)
from mlfast._builders.trees import _Trees
from mlfast._core import Record
from mlfast._gbdt_formats import (
    catboost_core,
    lightgbm_array,
    lightgbm_document,
    lightgbm_int,
    xgboost_document,
)
from mlfast.errors import ModelFormatError, UnsupportedModelError

# ---- XGBoost ----------------------------------------------------------------------

#: objective -> (how base_score becomes a margin, the transform)
_XGB_OBJECTIVES: Dict[str, Tuple[str, int]] = {
    "binary:logistic": ("logit", XgbRule.SIGMOID),
    "reg:logistic": ("logit", XgbRule.SIGMOID),
    "binary:logitraw": ("identity", XgbRule.IDENTITY),
    "multi:softprob": ("identity", XgbRule.SOFTMAX),
    "multi:softmax": ("identity", XgbRule.IDENTITY),
    "reg:squarederror": ("identity", XgbRule.IDENTITY),
    "reg:linear": ("identity", XgbRule.IDENTITY),
    "reg:squaredlogerror": ("identity", XgbRule.IDENTITY),
    "reg:pseudohubererror": ("identity", XgbRule.IDENTITY),
    "reg:absoluteerror": ("identity", XgbRule.IDENTITY),
    "reg:quantileerror": ("identity", XgbRule.IDENTITY),
    "count:poisson": ("log", XgbRule.EXP),
    "reg:gamma": ("log", XgbRule.EXP),
    "reg:tweedie": ("log", XgbRule.EXP),
    "rank:pairwise": ("identity", XgbRule.IDENTITY),
    "rank:ndcg": ("identity", XgbRule.IDENTITY),
    "rank:map": ("identity", XgbRule.IDENTITY),
}

_F32_NEG_INF = np.float32(-np.inf)


class _Doc:
    """A path into a model document, for checked reads with messages that
    say where."""

    def __init__(self, value: Any, where: str):
        self.value = value
        self.where = where

    def fail(self, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.where}: {message}")

    def __getitem__(self, key: str) -> "_Doc":
        if not isinstance(self.value, dict) or key not in self.value:
            raise self.fail(f"has no {key!r}")
        return _Doc(self.value[key], f"{self.where}.{key}")

    def get(self, key: str) -> Optional["_Doc"]:
        if isinstance(self.value, dict) and key in self.value:
            return _Doc(self.value[key], f"{self.where}.{key}")
        return None

    def text(self) -> str:
        if not isinstance(self.value, str):
            raise self.fail(f"is a {type(self.value).__name__}, expected a string")
        return self.value

    def integer(self) -> int:
        v = self.value
        if isinstance(v, str):
            try:
                return int(v)
            except ValueError:
                raise self.fail(f"is {v[:40]!r}, expected an integer") from None
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise self.fail(f"is a {type(v).__name__}, expected an integer")
        return int(v)

    def floats(self) -> np.ndarray:
        """float32 values: a number, a string holding one or '[a,b]'."""
        v = self.value
        if isinstance(v, str):
            parts = v.strip().strip("[]").split(",")
            try:
                return np.array([float(p) for p in parts], dtype=np.float32)
            except ValueError:
                raise self.fail(f"is {v[:40]!r}, expected numbers") from None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return np.array([v], dtype=np.float32)
        raise self.fail(f"is a {type(v).__name__}, expected a number")

    def array(self, n: int, kind: str) -> np.ndarray:
        """A list or array of n numbers ('f' float, 'i' integer)."""
        v = self.value
        if isinstance(v, list):
            if len(v) != n:
                raise self.fail(f"has {len(v)} items, expected {n}")
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                raise self.fail("holds something other than numbers")
            v = (
                np.asarray(v, dtype=np.float64 if kind == "f" else np.int64)
                if n
                else np.zeros(0, np.float64 if kind == "f" else np.int64)
            )
        if not isinstance(v, np.ndarray) or v.ndim != 1:
            raise self.fail(f"is a {type(v).__name__}, expected an array")
        if v.shape != (n,):
            raise self.fail(f"has {v.size} items, expected {n}")
        if kind == "i" and v.dtype.kind not in "iu":
            if v.dtype.kind != "f" or not np.all(v == np.floor(v)):
                raise self.fail(f"has dtype {v.dtype}, expected integers")
        elif v.dtype.kind not in "iuf":
            raise self.fail(f"has dtype {v.dtype}, expected numbers")
        return v


def _xgb_margin(kind: str, base: np.ndarray, where: str) -> np.ndarray:
    """base_score as the margin XGBoost starts from (ProbToMargin), a float32
    computed as XGBoost's float code does: logf(1/p - 1) negated, logf(p)."""
    out = np.empty_like(base)
    for i, p in enumerate(base.tolist()):
        p = float(np.float32(p))
        if kind == "logit":
            if not 0.0 < p < 1.0:
                raise ModelFormatError(f"{where}: base_score {p} is not in (0, 1)")
            q = float(np.float32(np.float32(1.0) / np.float32(p)) - np.float32(1.0))
            out[i] = -np.float32(math.log(q)) if q > 0 else np.float32(np.inf)
        elif kind == "log":
            if not p > 0.0:
                raise ModelFormatError(f"{where}: base_score {p} is not positive")
            out[i] = np.float32(math.log(p))
        else:
            out[i] = np.float32(p)
    return out


def _xgb_trees(
    model: _Doc,
    n_features: int,
    n_groups: int,
    n_iterations: Optional[int],
    init: np.ndarray,
    weights: Optional[np.ndarray] = None,
):
    """The trees of a gbtree model (of the first n_iterations rounds), laid
    out for the forest op, and the output group of each."""
    trees_doc = model["trees"]
    if not isinstance(trees_doc.value, list):
        raise trees_doc.fail("is not a list")
    n_trees = len(trees_doc.value)
    info = model["tree_info"].array(n_trees, "i").astype(np.int64)
    if n_trees and (info.min() < 0 or info.max() >= n_groups):
        raise model["tree_info"].fail(f"names groups outside 0..{n_groups - 1}")
    if n_iterations is not None:
        indptr_doc = model.get("iteration_indptr")
        if indptr_doc is not None and isinstance(indptr_doc.value, (list, np.ndarray)):
            size = len(indptr_doc.value)
            indptr = indptr_doc.array(size, "i").astype(np.int64)
            if size < 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] != n_trees:
                raise indptr_doc.fail("is not a partition of the trees")
            keep = int(indptr[min(n_iterations, size - 1)])
        else:
            param = model["gbtree_model_param"]
            per = param["num_parallel_tree"].integer() * n_groups
            keep = min(n_trees, n_iterations * per)
        n_trees = keep
    trees = _Trees()
    sets = _CatSets()
    for t in range(n_trees):
        tree = trees_doc.value[t]
        doc = _Doc(tree, f"{trees_doc.where}[{t}]")
        param = doc["tree_param"]
        n = param["num_nodes"].integer()
        if n < 1:
            raise param.fail(f"num_nodes is {n}")
        size_leaf = param.get("size_leaf_vector")
        if size_leaf is not None and size_leaf.integer() > 1:
            raise UnsupportedModelError(
                f"{doc.where}: vector leaves (multi_strategy='multi_output_tree') are not served"
            )
        left = doc["left_children"].array(n, "i").astype(np.int64)
        right = doc["right_children"].array(n, "i").astype(np.int64)
        feature = doc["split_indices"].array(n, "i").astype(np.int64)
        cond = doc["split_conditions"].array(n, "f").astype(np.float32)
        default_left = doc["default_left"].array(n, "i").astype(np.int64)
        split_type = doc.get("split_type")
        is_leaf = left < 0
        categorical = np.zeros(n, dtype=bool)
        if split_type is not None:
            categorical = (split_type.array(n, "i") != 0) & ~is_leaf
        right = np.where(is_leaf, -1, right)
        left = np.where(is_leaf, -1, left)
        # x < c  <=>  x <= the float below c (x a float32); c = -inf sends
        # everything right, as a NaN threshold does
        below = np.nextafter(cond, _F32_NEG_INF).astype(np.float64)
        below[np.isneginf(cond)] = np.nan
        threshold = np.where(is_leaf, 0.0, below)
        feature = np.where(is_leaf, 0, feature)
        flags = ((default_left != 0) & ~is_leaf).astype(np.uint8)
        if categorical.any():
            threshold = threshold.copy()
            for node_id, members in _xgb_categories(doc, n, categorical):
                threshold[node_id] = sets.add(members, doc.where)
            flags |= categorical.astype(np.uint8) << 1
        leaf = np.where(is_leaf, cond, np.float32(0.0)).astype(np.float32)
        if weights is not None:
            # DART (Dart::InplacePredict): each tree predicted alone from the
            # base margin, the margin taken off again, times the tree's
            # weight, every step in float32
            base = np.float32(init[info[t]])
            leaf = ((base + leaf) - base) * weights[t]
        values = np.where(is_leaf, leaf, 0.0).astype(np.float64)[:, None]
        trees.add(left, right, feature, threshold, flags, values)
    return trees, info[:n_trees].astype(np.int32), sets


#: XGBoost's largest category (a float32 holds every integer below it)
_XGB_MAX_CAT = 1 << 24


class _CatSets:
    """The category sets of a forest's splits, as words of bits."""

    def __init__(self) -> None:
        self.words: List[np.ndarray] = []
        self.offsets = [0]

    def add(self, members: np.ndarray, where: str) -> float:
        """A set's index (a categorical node's threshold) for these categories."""
        if members.size and (members.min() < 0 or members.max() >= _XGB_MAX_CAT):
            raise ModelFormatError(f"{where}: a category outside 0..{_XGB_MAX_CAT - 1}")
        n_words = int(members.max()) // 32 + 1 if members.size else 1
        words = np.zeros(n_words, dtype=np.uint32)
        np.bitwise_or.at(
            words,
            members // 32,
            (np.uint32(1) << (members % 32).astype(np.uint32)).astype(np.uint32),
        )
        return self.add_words(words)

    def add_words(self, words: np.ndarray) -> float:
        self.words.append(np.asarray(words, dtype=np.uint32))
        self.offsets.append(self.offsets[-1] + len(words))
        return float(len(self.offsets) - 2)

    def fields(self, rule: int) -> Dict[str, Any]:
        if len(self.offsets) == 1:
            return {}
        return {
            "cat_words": np.concatenate(self.words),
            "cat_offsets": np.asarray(self.offsets, dtype=np.int64),
            "cat_rule": rule,
        }


def _xgb_categories(doc: _Doc, n: int, categorical: np.ndarray):
    """(node, its categories) of a tree's categorical splits: the set goes
    right (common::Decision)."""
    nodes_doc = doc["categories_nodes"]
    k = len(nodes_doc.value) if isinstance(nodes_doc.value, (list, np.ndarray)) else -1
    nodes = nodes_doc.array(k, "i").astype(np.int64)
    segments = doc["categories_segments"].array(k, "i").astype(np.int64)
    sizes = doc["categories_sizes"].array(k, "i").astype(np.int64)
    cats_doc = doc["categories"]
    total = len(cats_doc.value) if isinstance(cats_doc.value, (list, np.ndarray)) else -1
    cats = cats_doc.array(total, "i").astype(np.int64)
    if (
        np.any(nodes < 0)
        or np.any(nodes >= n)
        or np.any(segments < 0)
        or np.any(sizes < 0)
        or np.any(segments + sizes > total)
    ):
        raise doc.fail("categories_* name nodes or categories out of range")
    listed = np.zeros(n, dtype=bool)
    listed[nodes] = True
    if np.any(categorical & ~listed):
        raise doc.fail("a categorical split without its categories")
    for node_id, start, size in zip(nodes.tolist(), segments.tolist(), sizes.tolist()):
        if categorical[node_id]:
            yield node_id, cats[start : start + size]


def _best_iteration(learner: _Doc) -> Optional[int]:
    attrs = learner.get("attributes")
    if attrs is None or not isinstance(attrs.value, dict) or "best_iteration" not in attrs.value:
        return None
    best = attrs["best_iteration"].integer()
    if best < 0:
        raise attrs.fail(f"best_iteration is {best}")
    return best


class _XgbModel:
    """What an XGBoost document says a prediction needs."""

    def __init__(self, handle: Any, where: str):
        if not isinstance(handle, (bytes, bytearray)):
            raise ModelFormatError(
                f"{where}: the Booster's handle is a "
                f"{type(handle).__name__}, expected its model bytes"
            )
        doc = _Doc(xgboost_document(handle, where), where)
        if doc.get("Model") is not None:
            # a pickled Booster: its training Config, and the Model that
            # save_model writes
            doc = doc["Model"]
        learner = doc["learner"]
        param = learner["learner_model_param"]
        self.n_features = param["num_feature"].integer()
        n_class = param["num_class"].integer()
        num_target = param.get("num_target")
        n_target = num_target.integer() if num_target is not None else 1
        if self.n_features < 1 or n_class < 0 or n_target < 1:
            raise param.fail(
                f"num_feature {self.n_features}, num_class {n_class}, num_target {n_target}"
            )
        self.n_groups = max(n_class, n_target, 1)
        self.objective = learner["objective"]["name"].text()
        if self.objective not in _XGB_OBJECTIVES:
            raise UnsupportedModelError(
                f"{where}: XGBoost objective {self.objective!r} is not served"
            )
        margin_kind, self.rule = _XGB_OBJECTIVES[self.objective]
        base = param["base_score"].floats()
        if base.size == 1:
            base = np.repeat(base, self.n_groups)
        if base.size != self.n_groups:
            raise param.fail(f"base_score has {base.size} values for {self.n_groups} outputs")
        self.init = _xgb_margin(margin_kind, base, param.where).astype(np.float64)
        booster = learner["gradient_booster"]
        name = booster["name"].text()
        self.weights: Optional[np.ndarray] = None
        if name == "dart":
            trees_doc = booster["gbtree"]["model"]["trees"]
            n_trees = len(trees_doc.value) if isinstance(trees_doc.value, list) else -1
            self.weights = booster["weight_drop"].array(n_trees, "f").astype(np.float32)
            booster = booster["gbtree"]
        elif name != "gbtree":
            raise UnsupportedModelError(
                f"{where}: XGBoost booster {name!r} is not served (gbtree and dart are)"
            )
        self.best_iteration = _best_iteration(learner)
        self.model = booster["model"]
        names = learner.get("feature_names")
        self.feature_names: Optional[np.ndarray] = None
        if names is not None and isinstance(names.value, list) and names.value:
            if len(names.value) != self.n_features or not all(
                isinstance(x, str) for x in names.value
            ):
                raise names.fail(f"does not name the {self.n_features} features")
            self.feature_names = np.asarray(names.value, dtype=object)
        cats = booster["model"].get("cats")
        if (
            cats is not None
            and isinstance(cats.value, dict)
            and any(len(v) for v in cats.value.values() if isinstance(v, (list, np.ndarray)))
        ):
            # XGBoost >= 3.1 fitted on a DataFrame keeps its categories and
            # codes a DataFrame's values itself
            raise UnsupportedModelError(
                f"{where}: categories kept from a DataFrame (pandas "
                "'category' columns) are not served yet; a model fitted "
                "on category codes (numbers) is"
            )

    def raw(self, node: Node, b: Builders, X: Optional[Cols], n_iterations: Optional[int]) -> Cols:
        trees, columns, sets = _xgb_trees(
            self.model,
            self.n_features,
            self.n_groups,
            n_iterations,
            self.init.astype(np.float32),
            self.weights,
        )
        X = b.input(node, X, self.n_features)
        if not trees.sizes:
            raise UnsupportedModelError(f"{node.where}: an XGBoost model without trees")
        op = trees.op(
            self.n_features,
            self.n_groups,
            column=columns,
            init=self.init,
            sum_f32=True,
            **sets.fields(CatRule.XGBOOST),
        )
        return b.add(node, op, X, self.n_groups, accept=Accept.ANY, cast_f32=True)


def _xgb_booster(node: Node, key: str = "_Booster") -> _XgbModel:
    booster = node.get(key)
    if not isinstance(booster, Record) or booster.path != "xgboost.core.Booster":
        raise node.fail(f"{key} is not an xgboost.core.Booster")
    state = booster.state
    if not isinstance(state, dict) or "handle" not in state:
        raise node.fail(f"{key} has no model (its state holds no handle)")
    return _XgbModel(state["handle"], f"{node.where}.{key}")


def _xgb_missing(node: Node) -> None:
    missing = node.state.get("missing", math.nan)
    if missing is None or (isinstance(missing, float) and math.isnan(missing)):
        return
    raise UnsupportedModelError(
        f"{node.where} ({node.name}): missing={missing!r} (a value "
        "read as missing) is not served; NaN is"
    )


def _wrapper_iterations(node: Node, model: _XgbModel) -> Optional[int]:
    """The rounds the wrapper's predict uses: up to best_iteration when
    early stopping set it (XGBModel._get_iteration_range)."""
    if model.best_iteration is None:
        return None
    return model.best_iteration + 1


def _link(node: Node, b: Builders, raw: Cols, rule: int) -> Cols:
    width = len(raw)
    return b.add(node, XgbLink(rule=rule), raw, width)


@register("xgboost", "XGBClassifier", "XGBRFClassifier")
def build_xgb_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    _xgb_missing(node)
    model = _xgb_booster(node)
    n_classes = node.integer("n_classes_")
    raw = model.raw(node, b, X, _wrapper_iterations(node, model))
    classes = np.arange(n_classes)
    outputs: Dict[str, Out] = {}
    if (
        model.objective in ("binary:logistic", "binary:logitraw")
        and n_classes == 2
        and model.n_groups == 1
    ):
        p = _link(node, b, raw, model.rule)
        outputs["predict_proba"] = Out(b.add(node, XgbLink(rule=XgbRule.COMPLEMENT), p, 2))
        labels = b.add(node, Labels(rule=LabelRule.THRESHOLD, threshold=0.5), p, 1)
    elif model.objective == "multi:softprob" and n_classes == model.n_groups > 2:
        p = _link(node, b, raw, XgbRule.SOFTMAX)
        outputs["predict_proba"] = Out(p)
        labels = b.add(node, Labels(rule=LabelRule.ARGMAX), p, 1)
    elif model.objective == "multi:softmax" and n_classes == model.n_groups > 2:
        # the booster's answer is the first maximum of the margins
        labels = b.add(node, Labels(rule=LabelRule.ARGMAX), raw, 1)
    else:
        raise UnsupportedModelError(
            f"{node.where}: XGBClassifier with objective "
            f"{model.objective!r} for {n_classes} classes is not "
            "served"
        )
    outputs["predict"] = Out(labels, classes=classes, squeeze=True)
    return Built(
        node.name,
        "classifier",
        outputs,
        model.n_features,
        feature_names_in=model.feature_names,
        first_name=node.name,
        strings=Strings.REFUSE,
    )


@register("xgboost", "XGBRegressor", "XGBRFRegressor", "XGBRanker")
def build_xgb_regressor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    _xgb_missing(node)
    model = _xgb_booster(node)
    if model.objective.startswith(("binary:", "multi:")) and node.name != "XGBRanker":
        raise UnsupportedModelError(
            f"{node.where}: {node.name} with objective {model.objective!r} is not served"
        )
    raw = model.raw(node, b, X, _wrapper_iterations(node, model))
    out = _link(node, b, raw, model.rule)
    return Built(
        node.name,
        "regressor",
        {"predict": Out(out, squeeze=model.n_groups == 1)},
        model.n_features,
        feature_names_in=model.feature_names,
        first_name=node.name,
        strings=Strings.REFUSE,
    )


@register_exact("xgboost.core.Booster")
def build_xgb_booster(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    """A Booster pickled on its own: predict is Booster.predict's answer
    (the transformed outputs, every tree)."""
    handle = node.get("handle")
    model = _XgbModel(handle, node.where)
    raw = model.raw(node, b, X, None)
    out = _link(node, b, raw, model.rule)
    return Built(
        node.name,
        "regressor",
        {"predict": Out(out, squeeze=model.n_groups == 1)},
        model.n_features,
        feature_names_in=model.feature_names,
        first_name=node.name,
        strings=Strings.REFUSE,
    )


# ---- LightGBM ---------------------------------------------------------------------

#: LightGBM's kZeroThreshold (a float): |x| <= it is zero for missing_type Zero
_LGB_ZERO = float(np.float32(1e-35))


def _lgb_objective(header: Dict[str, str], where: str) -> Tuple[str, float]:
    text = header.get("objective", "")
    parts = text.split()
    if not parts:
        raise ModelFormatError(f"{where}: the model names no objective")
    name = parts[0]
    sigmoid = 1.0
    for p in parts[1:]:
        if p.startswith("sigmoid:"):
            try:
                sigmoid = float(p.split(":", 1)[1])
            except ValueError:
                raise ModelFormatError(f"{where}: objective {text[:60]!r}") from None
    return name, sigmoid


class _LgbModel:
    def __init__(self, text: Any, where: str):
        header, trees, self.tail = lightgbm_document(text, where)
        self.where = where
        self.n_classes = lightgbm_int(header, "num_class", where)
        self.per_iteration = lightgbm_int(header, "num_tree_per_iteration", where)
        self.n_features = lightgbm_int(header, "max_feature_idx", where) + 1
        if (
            self.n_classes < 1
            or self.per_iteration < 1
            or self.n_features < 1
            or self.per_iteration != self.n_classes
        ):
            raise ModelFormatError(
                f"{where}: num_class {self.n_classes}, "
                f"num_tree_per_iteration {self.per_iteration}, "
                f"{self.n_features} features"
            )
        self.objective, self.sigmoid = _lgb_objective(header, where)
        # boosting='rf': the trees' outputs are averaged over the iterations
        self.average = "average_output" in header
        if self.average and self.per_iteration != 1:
            raise UnsupportedModelError(
                f"{where}: LightGBM random forests of "
                f"{self.per_iteration} classes are not served yet"
            )
        self.trees = trees
        names = header.get("feature_names", "").split()
        self.feature_names = (
            np.asarray(names, dtype=object) if len(names) == self.n_features else None
        )

    def raw(self, node: Node, b: Builders, X: Optional[Cols], n_iterations: Optional[int]) -> Cols:
        trees = self.trees
        if n_iterations is not None and n_iterations > 0:
            trees = trees[: n_iterations * self.per_iteration]
        laid = _Trees()
        sets = _CatSets()
        columns = []
        for t, fields in enumerate(trees):
            where = f"{self.where}: Tree={t}"
            n_leaves = lightgbm_int(fields, "num_leaves", where)
            if n_leaves < 1 or n_leaves > 1 << 24:
                raise ModelFormatError(f"{where}: num_leaves is {n_leaves}")
            if lightgbm_int(fields, "is_linear", where, default=0):
                raise UnsupportedModelError(
                    f"{where}: linear trees (linear_tree=True) are not served yet"
                )
            leaf_value = lightgbm_array(fields, "leaf_value", np.float64, n_leaves, where)
            n_int = n_leaves - 1
            if n_int == 0:
                laid.add(
                    np.array([-1]),
                    np.array([-1]),
                    np.array([0]),
                    np.array([0.0]),
                    np.array([0]),
                    leaf_value[:, None],
                )
                columns.append(t % self.per_iteration)
                continue
            n_cat = lightgbm_int(fields, "num_cat", where, default=0)
            feature = lightgbm_array(fields, "split_feature", np.int64, n_int, where)
            threshold = lightgbm_array(fields, "threshold", np.float64, n_int, where)
            decision = lightgbm_array(fields, "decision_type", np.int64, n_int, where)
            lc = lightgbm_array(fields, "left_child", np.int64, n_int, where)
            rc = lightgbm_array(fields, "right_child", np.int64, n_int, where)
            categorical = (decision & 1) != 0
            threshold = threshold.copy()
            if categorical.any():
                if n_cat < 1:
                    raise ModelFormatError(f"{where}: categorical splits but num_cat {n_cat}")
                bounds = lightgbm_array(fields, "cat_boundaries", np.int64, n_cat + 1, where)
                words = lightgbm_array(
                    fields,
                    "cat_threshold",
                    np.int64,
                    int(bounds[-1]) if bounds.size and 0 <= bounds[-1] <= 1 << 24 else -1,
                    where,
                )
                if (
                    bounds[0] != 0
                    or np.any(np.diff(bounds) < 0)
                    or np.any((words < 0) | (words > 0xFFFFFFFF))
                ):
                    raise ModelFormatError(f"{where}: cat_boundaries or cat_threshold malformed")
                first = None
                for i in range(n_cat):
                    index = sets.add_words(words[bounds[i] : bounds[i + 1]])
                    first = index if first is None else first
                cat_index = threshold[categorical]
                if np.any(
                    (cat_index < 0) | (cat_index >= n_cat) | (cat_index != np.floor(cat_index))
                ):
                    raise ModelFormatError(f"{where}: a categorical split names a set out of range")
                threshold[categorical] = cat_index + first
            default_left = (decision & 2) != 0
            missing_type = (decision >> 2) & 3
            flags = np.zeros(n_int, dtype=bool)
            # a categorical split sends NaN right (Tree::CategoricalDecision;
            # 3.x cast NaN to int first, INT_MIN on x86: right as well)
            missing_type = np.where(categorical, 4, missing_type)
            nan_type = missing_type == 2
            flags[nan_type] = default_left[nan_type]
            none_type = missing_type == 0
            # NaN is read as 0.0
            flags[none_type] = 0.0 <= threshold[none_type]
            zero_type = missing_type == 1
            if zero_type.any():
                # NaN (read as 0) and |x| <= 1e-35 go the default way; the
                # comparison agrees when the zero range lies on that side
                lo_side = threshold[zero_type] >= _LGB_ZERO
                hi_side = threshold[zero_type] < -_LGB_ZERO
                dl = default_left[zero_type]
                if np.any(~((lo_side & dl) | (hi_side & ~dl))):
                    raise UnsupportedModelError(
                        f"{where}: a split with missing_type Zero whose threshold cuts the "
                        "zero range away from its default side is not served"
                    )
                flags[zero_type] = dl
            if np.any(missing_type[~categorical] == 3):
                raise ModelFormatError(f"{where}: decision_type names missing type 3")
            # children: >= 0 an internal node, < 0 the leaf ~child
            left = np.where(lc >= 0, lc, n_int + ~lc)
            right = np.where(rc >= 0, rc, n_int + ~rc)
            if np.any((lc < 0) & (~lc >= n_leaves)) or np.any((rc < 0) & (~rc >= n_leaves)):
                raise ModelFormatError(f"{where}: a child names a leaf out of range")
            node_flags = flags.astype(np.uint8) | (categorical.astype(np.uint8) << 1)
            laid.add(
                np.concatenate([left, np.full(n_leaves, -1)]),
                np.concatenate([right, np.full(n_leaves, -1)]),
                np.concatenate([feature, np.zeros(n_leaves, np.int64)]),
                np.concatenate([threshold, np.zeros(n_leaves)]),
                np.concatenate([node_flags, np.zeros(n_leaves, np.uint8)]),
                np.concatenate([np.zeros(n_int), leaf_value])[:, None],
            )
            columns.append(t % self.per_iteration)
        if not laid.sizes:
            raise UnsupportedModelError(f"{node.where}: a LightGBM model without trees")
        X = b.input(node, X, self.n_features)
        op = laid.op(
            self.n_features,
            self.per_iteration,
            column=np.asarray(columns, dtype=np.int32),
            average=self.average,
            **sets.fields(CatRule.LIGHTGBM),
        )
        return b.add(node, op, X, self.per_iteration, accept=Accept.ANY, cast_f32=False)


def _lgb_booster(node: Node) -> Tuple[_LgbModel, Optional[int]]:
    booster = node.get("_Booster")
    if not isinstance(booster, Record) or booster.path != "lightgbm.basic.Booster":
        raise node.fail("_Booster is not a lightgbm.basic.Booster")
    return _lgb_from_booster(Node(booster, f"{node.where}._Booster"))


def _lgb_from_booster(booster: Node) -> Tuple[_LgbModel, Optional[int]]:
    # the model text is `handle` up to lightgbm 3.3, `_handle` from 4.0
    text = booster.get("_handle" if "_handle" in booster.state else "handle")
    model = _LgbModel(text, booster.where)
    if booster.state.get("pandas_categorical") not in (None, []):
        raise UnsupportedModelError(
            f"{booster.where}: pandas categorical columns are not served yet"
        )
    best = booster.state.get("best_iteration", 0)
    if isinstance(best, bool) or not isinstance(best, (int, np.integer)):
        raise booster.fail(f"best_iteration is {best!r}")
    return model, int(best) if best > 0 else None


def _lgb_link(node: Node, b: Builders, model: _LgbModel, raw: Cols) -> Cols:
    obj = model.objective
    if obj in (
        "regression",
        "regression_l1",
        "huber",
        "fair",
        "quantile",
        "mape",
        "lambdarank",
        "rank_xendcg",
        "custom",
    ):
        return raw
    if obj in ("poisson", "gamma", "tweedie"):
        return b.add(node, Post(rule=PostRule.EXP), raw, len(raw))
    raise UnsupportedModelError(
        f"{node.where}: LightGBM objective {obj!r} is not served for regression"
    )


@register("lightgbm", "LGBMClassifier")
def build_lgb_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    model, best = _lgb_booster(node)
    classes = node.get("_classes")
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size < 2:
        raise node.fail("_classes is not an array of two or more classes")
    k = classes.size
    raw = model.raw(node, b, X, best)
    outputs: Dict[str, Out] = {}
    if model.objective == "binary" and k == 2 and len(raw) == 1:
        if model.sigmoid != 1.0:
            raise UnsupportedModelError(f"{node.where}: sigmoid={model.sigmoid} is not served yet")
        proba = b.add(node, Proba(rule=ProbaRule.EXPIT_OVR, n_classes=2), raw, 2)
        # LGBMClassifier.predict: the argmax of predict_proba
        labels = b.add(node, Labels(rule=LabelRule.ARGMAX), proba, 1)
    elif model.objective in ("multiclass", "softmax") and len(raw) == k:
        proba = b.add(node, Proba(rule=ProbaRule.SOFTMAX, n_classes=k), raw, k)
        labels = b.add(node, Labels(rule=LabelRule.ARGMAX), proba, 1)
    else:
        raise UnsupportedModelError(
            f"{node.where}: LGBMClassifier with objective "
            f"{model.objective!r} for {k} classes is not served"
        )
    outputs["predict_proba"] = Out(proba)
    outputs["predict"] = Out(labels, classes=classes, squeeze=True)
    return Built(
        node.name,
        "classifier",
        outputs,
        model.n_features,
        feature_names_in=_lgb_names(node),
        first_name=node.name,
        strings=Strings.REFUSE,
    )


def _lgb_names(node: Node) -> Optional[np.ndarray]:
    """The wrapper's feature_names_in_ (a DataFrame's columns), when it was
    fitted on names."""
    if not node.state.get("_fitted_with_feature_names", False):
        return None
    booster = node.get("_Booster")
    state = booster.state if isinstance(booster, Record) else None
    text = state.get("_handle", state.get("handle")) if isinstance(state, dict) else None
    if not isinstance(text, str):
        return None
    header, _, _ = lightgbm_document(text, node.where)
    names = header.get("feature_names", "").split()
    return np.asarray(names, dtype=object) if names else None


@register("lightgbm", "LGBMRegressor", "LGBMRanker")
def build_lgb_regressor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    model, best = _lgb_booster(node)
    if model.per_iteration != 1:
        raise UnsupportedModelError(
            f"{node.where}: {model.per_iteration} trees per iteration in a regressor"
        )
    raw = _lgb_link(node, b, model, model.raw(node, b, X, best))
    return Built(
        node.name,
        "regressor",
        {"predict": Out(raw, squeeze=True)},
        model.n_features,
        feature_names_in=_lgb_names(node),
        first_name=node.name,
        strings=Strings.REFUSE,
    )


@register_exact("lightgbm.basic.Booster")
def build_lgb_booster(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    """A Booster pickled on its own: predict is Booster.predict's answer."""
    model, best = _lgb_from_booster(node)
    raw = model.raw(node, b, X, best)
    obj = model.objective
    if obj == "binary":
        out = b.add(node, Proba(rule=ProbaRule.EXPIT_OVR, n_classes=2), raw, 2)
        out = Cols(out.slots[1:])
    elif obj in ("multiclass", "softmax"):
        out = b.add(node, Proba(rule=ProbaRule.SOFTMAX, n_classes=len(raw)), raw, len(raw))
    else:
        out = _lgb_link(node, b, model, raw)
    return Built(
        node.name,
        "regressor",
        {"predict": Out(out, squeeze=len(out) == 1)},
        model.n_features,
        first_name=node.name,
        strings=Strings.REFUSE,
    )


# ---- the libraries' own model files ------------------------------------------------


class _FileNode(Node):
    """A model file read on its own (no pickle): the Booster it would be."""

    def __init__(self, name: str, state: dict):  # noqa: super-init-not-called
        self.record = None  # type: ignore[assignment]  # no pickle: no record
        self.where = "model"
        self.path = name
        self.name = name.rsplit(".", 1)[-1]
        self.state = state
        self.version = (0,)


def native_kind(head: bytes) -> Optional[str]:
    """Which library wrote a model file, from its first bytes (None: a
    pickle or joblib file, or something else)."""
    if head[:1] == b"{":
        # an XGBoost document, JSON or UBJSON; no pickle opens with '{'
        return "xgboost"
    if head.startswith((b"tree\nversion=", b"tree\r\nversion=")):
        return "lightgbm"
    if head.startswith(b"CBM1"):
        return "catboost"
    return None


def build_file(kind: str, data: bytes, b: Builders) -> Built:
    """A model file XGBoost (save_model: JSON, UBJSON) or LightGBM
    (save_model: text) wrote, built as the Booster that pickles it."""
    if kind == "xgboost":
        return build_xgb_booster(_FileNode("xgboost.core.Booster", {"handle": data}), b, None)
    if kind == "lightgbm":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFormatError("model: a LightGBM model text that is not UTF-8") from None
        return build_lgb_booster(
            _FileNode("lightgbm.basic.Booster", {"_handle": text.replace("\r\n", "\n")}), b, None
        )
    return build_cb_file(data, b)


# ---- CatBoost ---------------------------------------------------------------------

#: deepest oblivious tree read (CatBoost's own limit is 16)
_CB_MAX_DEPTH = 16
_CB_MAX_NODES = 1 << 26


class _CbModel:
    """A CatBoost model of float features: oblivious trees, each level one
    split ``(float)x > border`` (bit 1), a leaf's index the bits of its
    levels (level j is bit j); raw = scale * (sum of leaves) + bias."""

    def __init__(self, data: Any, where: str):
        if not isinstance(data, (bytes, bytearray)):
            raise ModelFormatError(
                f"{where}: the CatBoost model is a {type(data).__name__}, expected its bytes"
            )
        core = catboost_core(bytes(data), where)
        self.where = where
        trees = core.table(1)
        if trees is None:
            raise ModelFormatError(f"{where}: a CatBoost model without trees")
        for slot, what in (
            (4, "categorical features (one-hot and CTR)"),
            (6, "one-hot features"),
            (7, "CTR features"),
            (12, "text features"),
            (13, "estimated features"),
            (18, "embedding features"),
        ):
            if trees.length(slot):
                raise UnsupportedModelError(
                    f"{where}: CatBoost {what} are not served yet; models of float features are"
                )
        if trees.length(10) or trees.length(11):
            raise UnsupportedModelError(
                f"{where}: CatBoost non-symmetric trees "
                "(grow_policy Depthwise or Lossguide) are not served yet"
            )
        self.dim = trees.scalar(0, "i", 0)
        if not 1 <= self.dim <= 1 << 16:
            raise ModelFormatError(f"{where}: ApproxDimension is {self.dim}")
        # the binary features a split names: every float feature's borders in order
        columns, borders, nan_left = [], [], []
        n_features = 0
        for f in trees.tables(5):
            column = f.scalar(2, "i", -1)
            b = f.vector(3, "f")
            if column < 0 or column >= 1 << 20:
                raise ModelFormatError(f"{where}: a float feature at column {column}")
            n_features = max(n_features, column + 1)
            treatment = f.scalar(5, "b", 0)
            columns.extend([column] * b.size)
            borders.extend(b.tolist())
            # NaN is below every border (AsFalse, AsIs: NaN > b is false) or above (AsTrue)
            nan_left.extend([treatment != 2] * b.size)
        self.n_features = n_features
        self.split_column = np.asarray(columns, dtype=np.int64)
        self.split_border = np.asarray(borders, dtype=np.float32).astype(np.float64)
        self.split_nan_left = np.asarray(nan_left, dtype=bool)
        self.tree_splits = trees.vector(1, "i").astype(np.int64)
        self.tree_sizes = trees.vector(2, "i").astype(np.int64)
        self.leaf_values = trees.vector(8, "d")
        self.scale = float(trees.scalar(14, "d", 1.0))
        bias = trees.vector(16, "d")
        self.bias = bias if bias.size else np.full(self.dim, trees.scalar(15, "d", 0.0))
        if self.bias.size != self.dim:
            raise ModelFormatError(f"{where}: {self.bias.size} biases for {self.dim} outputs")
        info = {}
        for kv in core.tables(2):
            info[kv.string(0)] = kv.string(1)
        self.info = info

    def info_json(self, key: str) -> Any:
        text = self.info.get(key)
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise ModelFormatError(f"{self.where}: its {key} is not JSON") from None

    def loss(self) -> str:
        params = self.info_json("params")
        loss = params.get("loss_function") if isinstance(params, dict) else None
        name = loss.get("type") if isinstance(loss, dict) else None
        if not isinstance(name, str):
            raise ModelFormatError(f"{self.where}: its params name no loss_function")
        return name

    def raw(self, node: Node, b: Builders, X: Optional[Cols]) -> Cols:
        sizes, splits = self.tree_sizes, self.tree_splits
        if np.any(sizes < 0) or np.any(sizes > _CB_MAX_DEPTH) or int(sizes.sum()) != splits.size:
            raise ModelFormatError(
                f"{self.where}: tree sizes do not match the {splits.size} splits"
            )
        if splits.size and (splits.min() < 0 or splits.max() >= self.split_column.size):
            raise ModelFormatError(f"{self.where}: a split names a feature border out of range")
        n_nodes = int(np.sum((2 << sizes) - 1))
        n_leaves = int(np.sum(1 << sizes))
        if n_nodes > _CB_MAX_NODES or n_leaves * self.dim != self.leaf_values.size:
            raise ModelFormatError(
                f"{self.where}: {self.leaf_values.size} leaf values for "
                f"{n_leaves} leaves of {self.dim} outputs"
            )
        if not sizes.size:
            raise UnsupportedModelError(f"{self.where}: a CatBoost model without trees")
        trees = _Trees()
        start = value_at = 0
        for d in sizes.tolist():
            levels = splits[start : start + d]
            start += d
            n = (2 << d) - 1
            inner = (1 << d) - 1
            ids = np.arange(n)
            level = np.floor(np.log2(ids + 1)).astype(np.int64)
            is_leaf = ids >= inner
            split = np.where(is_leaf, 0, levels[np.minimum(level, max(d - 1, 0))] if d else 0)
            left = np.where(is_leaf, -1, 2 * ids + 1)
            right = np.where(is_leaf, -1, 2 * ids + 2)
            feature = np.where(is_leaf, 0, self.split_column[split])
            threshold = np.where(is_leaf, 0.0, self.split_border[split])
            flags = (~is_leaf & self.split_nan_left[split]).astype(np.uint8)
            # the leaf reached by the heap path p (level 0 its highest bit)
            # is CatBoost's leaf whose index has level j as bit j
            p = np.arange(1 << d)
            index = np.zeros_like(p)
            for j in range(d):
                index |= ((p >> (d - 1 - j)) & 1) << j
            leaf_values = self.leaf_values[value_at : value_at + (1 << d) * self.dim]
            leaf_values = leaf_values.reshape(1 << d, self.dim)[index]
            values = np.zeros((n, self.dim))
            values[inner:] = leaf_values
            value_at += (1 << d) * self.dim
            trees.add(left, right, feature, threshold, flags, values)
        X = b.input(node, X, self.n_features)
        op = trees.op(self.n_features, self.dim)
        raw = b.add(node, op, X, self.dim, accept=Accept.ANY, cast_f32=True)
        return b.add(node, Affine(mul=np.full(self.dim, self.scale), add=self.bias), raw, self.dim)


def _cb_model(node: Node) -> _CbModel:
    return _CbModel(node.get("__model"), f"{node.where}.__model")


@register("catboost", "CatBoostClassifier")
def build_cb_classifier(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    model = _cb_model(node)
    loss = model.loss()
    params = model.info_json("class_params")
    names = params.get("class_names") if isinstance(params, dict) else None
    if not isinstance(names, list) or len(names) < 2:
        raise node.fail("its model names no classes")
    label_type = params.get("class_label_type")
    if label_type == "Integer":
        classes = np.asarray([int(float(c)) for c in names])
    elif label_type == "Float":
        classes = np.asarray([float(c) for c in names])
    elif label_type in ("String", None):
        classes = np.asarray([str(c) for c in names], dtype=object)
    else:
        raise UnsupportedModelError(f"{node.where}: class labels of type {label_type!r}")
    k = classes.size
    raw = model.raw(node, b, X)
    outputs: Dict[str, Out] = {}
    if loss in ("Logloss", "CrossEntropy") and k == 2 and model.dim == 1:
        proba = b.add(node, Proba(rule=ProbaRule.EXPIT_OVR, n_classes=2), raw, 2)
        labels = b.add(node, Labels(rule=LabelRule.THRESHOLD, threshold=0.0), raw, 1)
    elif loss == "MultiClass" and model.dim == k:
        proba = b.add(node, Proba(rule=ProbaRule.SOFTMAX, n_classes=k), raw, k)
        labels = b.add(node, Labels(rule=LabelRule.ARGMAX), raw, 1)
    else:
        raise UnsupportedModelError(
            f"{node.where}: CatBoostClassifier with loss {loss!r} for {k} classes is not served"
        )
    outputs["predict_proba"] = Out(proba)
    outputs["predict"] = Out(labels, classes=classes, squeeze=True)
    return Built(
        node.name,
        "classifier",
        outputs,
        model.n_features,
        first_name=node.name,
        strings=Strings.REFUSE,
    )


@register("catboost", "CatBoostRegressor")
def build_cb_regressor(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    model = _cb_model(node)
    loss = model.loss()
    if model.dim != 1:
        raise UnsupportedModelError(f"{node.where}: multi-output CatBoostRegressor")
    raw = model.raw(node, b, X)
    if loss.startswith(("Poisson", "Tweedie")):
        raw = b.add(node, Post(rule=PostRule.EXP), raw, 1)
    elif loss in ("RMSEWithUncertainty",) or loss.startswith(("Multi", "Survival")):
        raise UnsupportedModelError(f"{node.where}: CatBoostRegressor with loss {loss!r}")
    return Built(
        node.name,
        "regressor",
        {"predict": Out(raw, squeeze=True)},
        model.n_features,
        first_name=node.name,
        strings=Strings.REFUSE,
    )


def build_cb_file(data: bytes, b: Builders) -> Built:
    """A .cbm file: a classifier when its model names classes, else a regressor."""
    model = _CbModel(data, "model")
    node = _FileNode("catboost.core.CatBoost", {"__model": data})
    if model.info_json("class_params"):
        return build_cb_classifier(node, b, None)
    return build_cb_regressor(node, b, None)
