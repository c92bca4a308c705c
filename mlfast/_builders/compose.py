"""Compositions: ColumnTransformer and FeatureUnion run branches over
columns of one input and concatenate what they return; a fitted search
(GridSearchCV and the others) serves its best estimator.

No op of their own: a branch reads its columns where they are (slots), and
the concatenation is the list of the branches' output slots.  A weight is an
affine op (``res * weight``).
"""

from __future__ import annotations

from typing import Any, List, Optional

import numpy as np

from mlfast._builders import Builders, Node, register
from mlfast._builders.ir import Accept, Affine, Built, Cols, Out
from mlfast._core import Record
from mlfast.errors import UnsupportedModelError


def _is_identity(trans: Any) -> bool:
    """'passthrough', or the FunctionTransformer() fit puts in its place."""
    if isinstance(trans, str):
        return trans == "passthrough"
    if isinstance(trans, Record) and trans.path.endswith(".FunctionTransformer"):
        state = trans.state if isinstance(trans.state, dict) else {}
        return (
            state.get("func") is None
            and not state.get("kw_args")
            and state.get("validate") in (False, None)
        )
    return False


def _weight(node: Node, name: str) -> Optional[float]:
    weights = node.state.get("transformer_weights")
    if weights is None:
        return None
    if not isinstance(weights, dict):
        raise node.fail("transformer_weights must be a dict")
    w = weights.get(name)
    if w is None:
        return None
    if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)):
        raise node.fail(f"transformer_weights[{name!r}] is {type(w).__name__}, expected a number")
    return float(w)


def _weighted(node: Node, b: Builders, cols: Cols, weight: Optional[float]) -> Cols:
    """scikit-learn's `res * weight` after a branch."""
    if weight is None:
        return cols
    op = Affine(mul=np.full(len(cols), weight))
    return b.add(node, op, cols, len(cols), accept=Accept.ANY)


def _transform_of(node: Node, built: Built, where: str) -> Cols:
    out = built.outputs.get("transform")
    if out is None:
        raise node.fail(f"{where} is a {built.name}, which has no transform")
    return out.cols


# ---- ColumnTransformer -------------------------------------------------------------


def _column_indices(
    node: Node, name: str, columns: Any, n: int, names: Optional[np.ndarray]
) -> np.ndarray:
    """The input columns a fitted branch reads, as scikit-learn resolved
    them at fit: _transformer_to_input_indices where the file has it, else
    the column specification of transformers_ (ints, names, a slice, a
    boolean mask)."""
    resolved = node.state.get("_transformer_to_input_indices")
    if isinstance(resolved, dict) and name in resolved:
        idx = np.asarray(resolved[name])
        if idx.size == 0:
            return np.zeros(0, dtype=np.int64)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise node.fail(f"_transformer_to_input_indices[{name!r}] is not a list of ints")
        idx = idx.astype(np.int64)
    else:
        idx = _resolve_spec(node, name, columns, n, names)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise node.fail(f"transformer {name!r} reads columns outside 0..{n - 1}")
    return idx


def _resolve_spec(
    node: Node, name: str, columns: Any, n: int, names: Optional[np.ndarray]
) -> np.ndarray:
    position = {v: i for i, v in enumerate(names.tolist())} if names is not None else {}

    def by_name(label: Any) -> int:
        if label not in position:
            raise node.fail(
                f"transformer {name!r} names column {str(label)[:80]!r}, "
                "which is not among feature_names_in_"
            )
        return position[label]

    if isinstance(columns, (int, np.integer)) and not isinstance(columns, bool):
        return np.array([int(columns) % n if columns < 0 else int(columns)], dtype=np.int64)
    if isinstance(columns, str):
        return np.array([by_name(columns)], dtype=np.int64)
    if isinstance(columns, slice):
        if isinstance(columns.start, str) or isinstance(columns.stop, str):
            # label slices include their end, as pandas' .loc does
            start = 0 if columns.start is None else by_name(columns.start)
            stop = n if columns.stop is None else by_name(columns.stop) + 1
            return np.arange(n, dtype=np.int64)[start : stop : columns.step]
        return np.arange(n, dtype=np.int64)[columns]
    spec = np.asarray(columns) if isinstance(columns, (list, tuple, np.ndarray)) else None
    if spec is None:
        raise node.fail(f"transformer {name!r} has columns {type(columns).__name__}")
    if spec.size == 0:
        return np.zeros(0, dtype=np.int64)
    if spec.dtype.kind == "b":
        if spec.shape != (n,):
            raise node.fail(f"transformer {name!r} has a mask of {spec.size} for {n} columns")
        return np.flatnonzero(spec).astype(np.int64)
    if spec.dtype.kind in "iu" and spec.ndim == 1:
        return np.where(spec < 0, spec + n, spec).astype(np.int64)
    if spec.ndim == 1:
        return np.array([by_name(v) for v in spec.tolist()], dtype=np.int64)
    raise node.fail(f"transformer {name!r} has columns of shape {spec.shape}")


@register("sklearn.compose", "ColumnTransformer")
def build_column_transformer(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    # n_features_in_ from 0.24, _n_features before
    n = node.integer("n_features_in_" if "n_features_in_" in node.state else "_n_features")
    if n < 1:
        raise node.fail(f"n_features_in_ is {n}")
    X = b.input(node, X, n)
    names = node.feature_names()
    transformers = node.get("transformers_")
    if not isinstance(transformers, list):
        raise node.fail("transformers_ must be a list of (name, transformer, columns)")
    parts: List[Cols] = []
    labels: List[str] = []
    warn_name: Optional[str] = None
    strings = None
    needed: List[int] = []
    for i, item in enumerate(transformers):
        if not isinstance(item, tuple) or len(item) != 3 or not isinstance(item[0], str):
            raise node.fail(f"transformers_[{i}] is not a (name, transformer, columns) triple")
        name, trans, columns = item
        if isinstance(trans, str) and trans == "drop":
            continue
        idx = _column_indices(node, name, columns, n, names)
        if idx.size == 0:
            continue  # _is_empty_column_selection: scikit-learn skips it
        needed.extend(idx.tolist())
        cols = X[idx]
        if _is_identity(trans):
            out = cols
            labels.append("passthrough")
        else:
            where = f"{node.where}.transformers_[{i}][1]"
            built = b.build(trans, where, cols)
            out = _transform_of(node, built, where)
            labels.append(built.name)
            if warn_name is None:
                warn_name = built.warn_name or built.first_name
            if strings is None:
                strings = built.strings
        parts.append(_weighted(node, b, out, _weight(node, name)))
    if not parts:
        raise UnsupportedModelError(
            f"{node.where} (ColumnTransformer) drops every column: it has nothing to serve"
        )
    required = None
    if names is not None:
        required = names[np.unique(np.asarray(needed, dtype=np.int64))]
    built = Built(
        f"ColumnTransformer({', '.join(labels)})",
        "transformer",
        {"transform": Out(Cols.concat(parts))},
        n,
        feature_names_in=names,
        first_name=node.name,
        warn_name=warn_name or node.name,
        names_required=required,
    )
    if strings is not None:
        built.strings = strings
    return built


# ---- FeatureUnion -------------------------------------------------------------------


@register("sklearn.pipeline", "FeatureUnion")
def build_feature_union(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    items = node.get("transformer_list")
    if not isinstance(items, list) or not items:
        raise node.fail("transformer_list must be a non-empty list of (name, transformer)")
    for i, item in enumerate(items):
        if not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[0], str):
            raise node.fail(f"transformer_list[{i}] is not a (name, transformer) pair")
    branches = [
        (i, name, trans)
        for i, (name, trans) in enumerate(items)
        if not (isinstance(trans, str) and trans == "drop")
    ]
    built = {}
    if X is None:
        # every branch reads the whole input: the first that knows its width
        # fixes it (a passthrough adds no node, so building it first changes
        # no order scikit-learn checks in)
        first = next(((i, t) for i, _, t in branches if not _is_identity(t)), None)
        if first is None:
            X = b.input(node, X, node.integer("n_features_in_"))
        else:
            i, trans = first
            built[i] = b.build(trans, f"{node.where}.transformer_list[{i}]", None)
            X = b.graph.input(built[i].n_features_in)
    parts: List[Cols] = []
    labels: List[str] = []
    members: List[Built] = []
    for i, name, trans in branches:
        if _is_identity(trans):
            out = X
            labels.append("passthrough")
        else:
            where = f"{node.where}.transformer_list[{i}]"
            member = built[i] if i in built else b.build(trans, where, X)
            out = _transform_of(node, member, where)
            labels.append(member.name)
            members.append(member)
        parts.append(_weighted(node, b, out, _weight(node, name)))
    if not parts:
        raise UnsupportedModelError(
            f"{node.where} (FeatureUnion) drops every transformer: it has nothing to serve"
        )
    union = Built(
        f"FeatureUnion({', '.join(labels)})",
        "transformer",
        {"transform": Out(Cols.concat(parts))},
        len(X),
        feature_names_in=node.feature_names(),
        first_name=node.name,
    )
    if members:
        first_member = members[0]
        union.feature_names_in = first_member.feature_names_in
        union.first_name = first_member.first_name
        union.warn_name = first_member.warn_name
        union.names_required = first_member.names_required
        union.strings = first_member.strings
        union.string_prefix = first_member.string_prefix
    return union


# ---- fitted searches ----------------------------------------------------------------


@register(
    "sklearn.model_selection",
    "GridSearchCV",
    "RandomizedSearchCV",
    "HalvingGridSearchCV",
    "HalvingRandomSearchCV",
)
def build_search(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    best = node.state.get("best_estimator_")
    if best is None:
        refit = node.state.get("refit")
        raise UnsupportedModelError(
            f"{node.where} ({node.name}) was fitted with refit={refit!r}: it keeps no "
            "best_estimator_, so there is no model to serve. Fit it with refit=True, or "
            "save search.best_estimator_ instead"
        )
    built = b.build(best, f"{node.where}.best_estimator_", X)
    # a search exposes only the methods it names (not predict_joint_log_proba)
    built.outputs.pop("predict_joint_log_proba", None)
    built.name = f"{node.name}({built.name})"
    return built
