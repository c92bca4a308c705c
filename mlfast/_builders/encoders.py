"""Encoders of categorical columns: OneHotEncoder, OrdinalEncoder, and
SimpleImputer fitted on object data.

They read their columns as keys (``csrc/keys.c``): any Python value, with
Python's equality, looked up in tables made of ``categories_`` by the same C
function that makes the caller's keys.  Everything scikit-learn's
``_transform`` decides per category -- infrequent groups, the dropped
column, the missing category -- is folded here, once, into what each
category writes (``CatMap.values``) and what an unknown one writes
(``CatMap.unknown``), following ``sklearn/preprocessing/_encoders.py``.
"""

from __future__ import annotations

from typing import Any, List, Optional

import numpy as np

from mlfast._builders import Builders, Node, is_nan, register
from mlfast._builders.ir import (
    Built,
    CatMap,
    Cols,
    KeyFill,
    KeyMissing,
    Out,
    Strings,
    encode_keys,
)
from mlfast.errors import UnsupportedModelError

#: categories of one encoder, all columns together (the C tables' cap)
MAX_CATEGORIES = 1 << 24


def numpy_dtype(node: Node, key: str, default: Any = np.float64) -> np.dtype:
    """A dtype parameter (``dtype=np.float64``): the file holds the type as
    a global, a live estimator as the type itself."""
    value = node.state.get(key, default)
    if isinstance(value, np.dtype):
        dtype = value
    elif isinstance(value, type) and issubclass(value, (np.generic, int, float, bool)):
        dtype = np.dtype(value)
    elif getattr(value, "module", None) in ("numpy", "builtins") and isinstance(
        getattr(value, "name", None), str
    ):
        try:
            dtype = np.dtype(
                value.name
                if value.module == "numpy"
                else {"float": float, "int": int, "bool": bool}[value.name]
            )
        except (TypeError, KeyError):
            raise node.fail(f"{key}={value!r} is not a numeric dtype") from None
    elif isinstance(value, str):
        try:
            dtype = np.dtype(value)
        except TypeError:
            raise node.fail(f"{key}={value!r} is not a dtype") from None
    else:
        raise node.fail(f"{key} is a {type(value).__name__}, expected a dtype")
    if dtype.kind not in "biuf":
        raise node.fail(f"{key}={dtype} is not a numeric dtype")
    return dtype


def _categories(node: Node) -> List[np.ndarray]:
    cats = node.get("categories_")
    if not isinstance(cats, list) or not cats:
        raise node.fail("categories_ must be a non-empty list of arrays")
    total = 0
    for j, c in enumerate(cats):
        if not isinstance(c, np.ndarray) or c.ndim != 1:
            raise node.fail(f"categories_[{j}] is not a 1-D array")
        total += c.size
        if total > MAX_CATEGORIES:
            raise node.fail(f"categories_ holds more than {MAX_CATEGORIES} categories")
    return cats


def _index_list(node: Node, key: str, n: int) -> List[Optional[np.ndarray]]:
    """A per-column list of integer arrays or None (the infrequent state)."""
    value = node.get(key)
    if not isinstance(value, list) or len(value) != n:
        raise node.fail(f"{key} must be a list of {n} entries")
    out: List[Optional[np.ndarray]] = []
    for j, v in enumerate(value):
        if v is None:
            out.append(None)
            continue
        if not isinstance(v, np.ndarray) or v.ndim != 1 or v.dtype.kind not in "iu":
            raise node.fail(f"{key}[{j}] is not a 1-D integer array")
        out.append(v.astype(np.int64))
    return out


def _drop_indices(node: Node, n: int) -> List[Optional[int]]:
    """The category each column drops after infrequent grouping, or None."""
    key = "_drop_idx_after_grouping" if "_drop_idx_after_grouping" in node.state else "drop_idx_"
    value = node.state.get(key)
    if value is None:
        return [None] * n
    if not isinstance(value, np.ndarray) or value.ndim != 1 or value.size != n:
        raise node.fail(f"{key} must be an array of {n} entries")
    out: List[Optional[int]] = []
    for j, v in enumerate(value.tolist()):
        if v is None:
            out.append(None)
        elif isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0:
            out.append(int(v))
        else:
            raise node.fail(f"{key}[{j}] is {v!r}, expected an index or None")
    return out


def _keys_of(node: Node, arrays: List[np.ndarray], what: str):
    """The four key arrays of several 1-D arrays of values, concatenated."""
    parts = []
    for j, a in enumerate(arrays):
        try:
            parts.append(encode_keys(a))
        except (TypeError, ValueError) as exc:
            raise node.fail(f"{what}[{j}]: {exc}") from None
    tags = np.concatenate([p[0] for p in parts])
    nums = np.concatenate([p[1] for p in parts])
    text = np.concatenate([p[2] for p in parts])
    offsets = [np.zeros(1, np.int64)]
    base = 0
    for p in parts:
        offsets.append(p[3][1:] + base)
        base += int(p[3][-1])
    return tags, nums, text, np.concatenate(offsets)


#: CatMap.refuse's bits (csrc/mlfast.h: MF_REFUSE_UNKNOWN, MF_REFUSE_NAN)
REFUSE_UNKNOWN, REFUSE_NAN = 1, 2


def _refuse(n: int, unknown: bool, nan: bool) -> np.ndarray:
    bits = (REFUSE_UNKNOWN if unknown else 0) | (REFUSE_NAN if nan else 0)
    return np.full(n, bits, dtype=np.uint8)


def _encoder_input(node: Node, b: Builders, X: Optional[Cols], n: int) -> Cols:
    X = b.input(node, X, n)
    return b.keys(node, X)


def _built(node: Node, n: int, cols: Cols, strings: int = Strings.CONVERT) -> Built:
    return Built(
        node.name,
        "transformer",
        {"transform": Out(cols)},
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=strings,
    )


@register("sklearn.preprocessing", "OneHotEncoder")
def build_one_hot_encoder(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    cats = _categories(node)
    n = node.n_features(len(cats))
    handle = node.get("handle_unknown", "error")
    if handle not in ("error", "ignore", "infrequent_if_exist", "warn"):
        raise node.fail(f"handle_unknown={handle!r} is not served")
    infrequent = bool(node.state.get("_infrequent_enabled", False))
    mappings = _index_list(node, "_default_to_infrequent_mappings", n) if infrequent else [None] * n
    infreq_idx = _index_list(node, "_infrequent_indices", n) if infrequent else [None] * n
    drops = _drop_indices(node, n)
    dtype = numpy_dtype(node, "dtype")
    values: List[np.ndarray] = []
    unknown = np.full(n, -1.0)
    offset = 0
    for j, c in enumerate(cats):
        k = c.size
        mapping = mappings[j]
        if mapping is not None:
            if mapping.size != k or mapping.size and (mapping.min() < 0 or mapping.max() >= k):
                raise node.fail(f"_default_to_infrequent_mappings[{j}] does not fit {k} categories")
            grouped = mapping
            width = int(mapping.max()) + 1 if k else 0
        else:
            grouped = np.arange(k, dtype=np.int64)
            width = k
        drop = drops[j]
        if drop is not None and not 0 <= drop < width:
            raise node.fail(f"drop index {drop} of column {j} is outside 0..{width - 1}")
        out = grouped.astype(np.float64)
        if drop is not None:
            out = np.where(grouped == drop, -1.0, grouped - (grouped > drop) + offset)
            width -= 1
        else:
            out = out + offset
        values.append(out)
        # an unknown value: the infrequent column where handle_unknown groups
        # it there (infrequent_if_exist, warn), else none (ignore)
        infrequent_j = infreq_idx[j]
        if (
            mapping is not None
            and infrequent_j is not None
            and handle in ("infrequent_if_exist", "warn")
        ):
            g = int(mapping[infrequent_j[0]])
            unknown[j] = -1.0 if drop == g else float(g - (drop is not None and g > drop) + offset)
        offset += width
    if offset < 1:
        raise node.fail("every category is dropped: no output")
    # before 0.24 check_array refused NaN in any column (missing values
    # became categories in 0.24)
    refuse = _refuse(n, handle == "error", node.version < (0, 24))
    tags, nums, text, text_offsets = _keys_of(node, cats, "categories_")
    columns = np.concatenate([[0], np.cumsum([c.size for c in cats])]).astype(np.int64)
    op = CatMap(
        tags=tags,
        nums=nums,
        text=text,
        text_offsets=text_offsets,
        columns=columns,
        values=np.concatenate(values),
        unknown=unknown,
        refuse=refuse,
        n_outputs=offset,
        out_type=int(dtype.num),
    )
    K = _encoder_input(node, b, X, n)
    return _built(node, n, b.add(node, op, K, offset))


@register("sklearn.preprocessing", "OrdinalEncoder")
def build_ordinal_encoder(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    cats = _categories(node)
    n = node.n_features(len(cats))
    handle = node.get("handle_unknown", "error")
    if handle not in ("error", "use_encoded_value"):
        raise node.fail(f"handle_unknown={handle!r} is not served")
    unknown_value = node.state.get("unknown_value")
    unknown_fill = float("nan")
    if handle == "use_encoded_value":
        if isinstance(unknown_value, (int, np.integer)):
            unknown_fill = float(unknown_value)
        elif not is_nan(unknown_value):
            raise node.fail(f"unknown_value={unknown_value!r} is not an integer or NaN")
    missing_value = node.state.get("encoded_missing_value", float("nan"))
    if not (is_nan(missing_value) or isinstance(missing_value, (int, np.integer))):
        raise node.fail(f"encoded_missing_value={missing_value!r} is not an integer or NaN")
    missing_indices = node.state.get("_missing_indices") or {}
    if not isinstance(missing_indices, dict):
        raise node.fail("_missing_indices must be a dict")
    infrequent = bool(node.state.get("_infrequent_enabled", False))
    mappings = _index_list(node, "_default_to_infrequent_mappings", n) if infrequent else [None] * n
    dtype = numpy_dtype(node, "dtype")
    values: List[np.ndarray] = []
    for j, c in enumerate(cats):
        k = c.size
        missing = missing_indices.get(j)
        if missing is not None and (
            not isinstance(missing, (int, np.integer)) or not 0 <= missing < k
        ):
            raise node.fail(f"_missing_indices[{j}] = {missing!r} is not a category")
        mapping = mappings[j]
        codes = np.arange(k, dtype=np.float64)
        if mapping is not None:
            # the missing category was left out of the mapping
            n_mapped = k - (missing is not None)
            if mapping.size != n_mapped:
                raise node.fail(
                    f"_default_to_infrequent_mappings[{j}] does not fit {n_mapped} categories"
                )
            idx = np.arange(k)
            keep = idx != missing if missing is not None else np.ones(k, bool)
            # X_int is only remapped where it is not the missing index, and
            # a category's own index reads the mapping at that index
            remapped = (
                mapping[np.minimum(idx, max(n_mapped - 1, 0))].astype(np.float64)
                if n_mapped
                else codes
            )
            codes = np.where(keep, remapped, codes)
        if missing is not None:
            codes[int(missing)] = float(missing_value)
        values.append(codes)
    # before 1.0 check_array refused NaN in any column (OrdinalEncoder
    # took missing values one release after OneHotEncoder)
    refuse = _refuse(n, handle == "error", node.version < (1, 0))
    tags, nums, text, text_offsets = _keys_of(node, cats, "categories_")
    columns = np.concatenate([[0], np.cumsum([c.size for c in cats])]).astype(np.int64)
    op = CatMap(
        tags=tags,
        nums=nums,
        text=text,
        text_offsets=text_offsets,
        columns=columns,
        values=np.concatenate(values),
        unknown=np.full(n, unknown_fill),
        refuse=refuse,
        n_outputs=0,
        out_type=int(dtype.num),
    )
    K = _encoder_input(node, b, X, n)
    return _built(node, n, b.add(node, op, K, n))


def ordinal_codes(b: Builders, node: Node, X: Cols, categories: List[np.ndarray]) -> Cols:
    """HistGradientBoosting's OrdinalEncoder: each column's index among its
    categories (a NaN category, an unknown value and a missing one: NaN)."""
    values = []
    for c in categories:
        codes = np.arange(c.size, dtype=np.float64)
        if c.size and is_nan(c[-1]):
            codes[-1] = np.nan
        values.append(codes)
    tags, nums, text, text_offsets = _keys_of(node, categories, "categories_")
    columns = np.concatenate([[0], np.cumsum([c.size for c in categories])]).astype(np.int64)
    op = CatMap(
        tags=tags,
        nums=nums,
        text=text,
        text_offsets=text_offsets,
        columns=columns,
        values=np.concatenate(values),
        unknown=np.full(len(categories), np.nan),
        refuse=np.zeros(len(categories), np.uint8),
        n_outputs=0,
        out_type=int(np.dtype(np.float64).num),
    )
    K = b.keys(node, X)
    return b.add(node, op, K, len(categories))


def _object_missing(node: Node, stats: np.ndarray) -> np.ndarray:
    """_get_mask(statistics, np.nan) of object statistics: the NaN ones."""
    return np.array([is_nan(v) for v in stats.tolist()], dtype=bool)


def build_object_imputer(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    """SimpleImputer fitted on object data (most_frequent or constant): a
    key op filling the missing value with each column's statistic."""
    stats = node.get("statistics_")
    if not isinstance(stats, np.ndarray) or stats.ndim != 1 or stats.size < 1:
        raise node.fail("statistics_ must be a non-empty 1-D array")
    n = node.n_features(stats.size)
    strategy = node.get("strategy")
    if strategy not in ("most_frequent", "constant"):
        raise node.fail(f"strategy={strategy!r} on object data is not served")
    missing = node.get("missing_values")
    if not (is_nan(missing) or missing is None or isinstance(missing, (str, bytes, int, float))):
        raise UnsupportedModelError(
            f"{node.where} (SimpleImputer): missing_values={missing!r} is not served"
        )
    keep_all = strategy == "constant" or bool(node.state.get("keep_empty_features", False))
    keep = (
        np.arange(n, dtype=np.int64)
        if keep_all
        else np.flatnonzero(~_object_missing(node, stats)).astype(np.int64)
    )
    fill_and_missing = np.empty(n + 1, dtype=object)
    fill_and_missing[:n] = stats.tolist()
    fill_and_missing[n] = missing
    try:
        tags, nums, text, text_offsets = encode_keys(fill_and_missing)
    except (TypeError, ValueError) as exc:
        raise node.fail(f"statistics_: {exc}") from None
    K = _encoder_input(node, b, X, n)
    parts: List[Cols] = []
    if keep.size:
        op = KeyFill(tags=tags, nums=nums, text=text, text_offsets=text_offsets, keep=keep)
        parts.append(b.add(node, op, K, keep.size))
    if bool(node.state.get("add_indicator", False)):
        mi = node.get("indicator_")
        state = getattr(mi, "state", None)
        features = state.get("features_") if isinstance(state, dict) else None
        if (
            not isinstance(features, np.ndarray)
            or features.ndim != 1
            or (features.size and (features.min() < 0 or features.max() >= n))
        ):
            raise node.fail("indicator_.features_ must index the input columns")
        if features.size:
            one = np.empty(1, dtype=object)
            one[0] = missing
            mt, mn, mx, mo = encode_keys(one)
            indicator = KeyMissing(
                tags=mt,
                nums=mn,
                text=mx,
                text_offsets=mo,
                features=features.astype(np.int64),
                out_type=int(np.dtype(np.bool_).num),
            )
            parts.append(b.add(node, indicator, K, features.size))
    if not parts:
        raise node.fail("every column is empty and no indicator is added: no output")
    # before 0.24 check_array(dtype=None) kept a str array (and a list of
    # str rows) as '<U', which SimpleImputer refused; from 0.24 it reads
    # them as objects, the dtype seen at fit
    strings = Strings.IMPUTER if node.version < (0, 24) else Strings.CONVERT
    return _built(node, n, Cols.concat(parts), strings)


@register("sklearn.preprocessing", "TargetEncoder")
def build_target_encoder(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    """TargetEncoder.transform (not fit_transform, whose cross fitting is
    not kept): each category's encoding, the target mean for one unknown
    (``_transform_X_ordinal``).  Several classes: an encoding per class,
    the outputs of a feature's classes side by side."""
    cats = _categories(node)
    n = node.n_features(len(cats))
    target_type = node.get("target_type_")
    if target_type not in ("binary", "multiclass", "continuous"):
        raise node.fail(f"target_type_={target_type!r} is not binary, multiclass or continuous")
    encodings = node.get("encodings_")
    if not isinstance(encodings, list):
        raise node.fail("encodings_ must be a list of arrays")
    if target_type == "multiclass":
        classes = node.get("classes_")
        if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size < 3:
            raise node.fail("classes_ must hold three classes or more")
        n_classes = classes.size
        means = node.array("target_mean_", ndim=(1,), kinds="f")
        if means.size != n_classes:
            raise node.fail(f"target_mean_ holds {means.size} means for {n_classes} classes")
    else:
        n_classes = 1
        mean = node.get("target_mean_")
        if isinstance(mean, np.ndarray) and mean.ndim == 0:
            mean = mean.item()
        if isinstance(mean, bool) or not isinstance(mean, (int, float, np.floating)):
            raise node.fail(f"target_mean_ is {type(mean).__name__}, expected a number")
        means = np.array([float(mean)])
    if len(encodings) != n * n_classes:
        raise node.fail(
            f"encodings_ holds {len(encodings)} arrays, expected "
            f"{n * n_classes} ({n} features x {n_classes})"
        )
    for e, (enc, f) in enumerate(zip(encodings, np.repeat(np.arange(n), n_classes))):
        if (
            not isinstance(enc, np.ndarray)
            or enc.ndim != 1
            or enc.dtype.kind not in "fiu"
            or enc.size != cats[f].size
        ):
            raise node.fail(
                f"encodings_[{e}] is not {cats[f].size} numbers, one a category of feature {f}"
            )
    tags, nums, text, text_offsets = _keys_of(node, cats, "categories_")
    columns = np.concatenate([[0], np.cumsum([c.size for c in cats])]).astype(np.int64)
    K = _encoder_input(node, b, X, n)
    per_class = []
    for c in range(n_classes):
        values = np.concatenate(
            [np.asarray(encodings[f * n_classes + c], dtype=np.float64) for f in range(n)]
        )
        op = CatMap(
            tags=tags,
            nums=nums,
            text=text,
            text_offsets=text_offsets,
            columns=columns,
            values=values,
            unknown=np.full(n, means[c]),
            refuse=_refuse(n, False, False),
            n_outputs=0,
            out_type=int(np.dtype(np.float64).num),
        )
        per_class.append(b.add(node, op, K, n).slots)
    # column f * n_classes + c: feature f's encoding for class c
    slots = np.stack(per_class, axis=1).reshape(-1)
    return _built(node, n, Cols(slots))


@register("sklearn.impute", "MissingIndicator")
def build_missing_indicator(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    """MissingIndicator.transform: True where a column of ``features_`` holds
    the missing value (its columns read as keys, so numbers and objects
    alike).  With ``features='missing-only'`` and ``error_on_new``, a NaN
    in another column refuses the call, naming every such column."""
    features = node.array("features_", ndim=(1,), kinds="iu")
    n = node.n_features(node.integer("_n_features"))
    if features.size and (
        features.min() < 0 or features.max() >= n or np.unique(features).size != features.size
    ):
        raise node.fail(f"features_ must be distinct indices of the {n} input columns")
    missing = node.get("missing_values")
    if not (is_nan(missing) or missing is None or isinstance(missing, (str, bytes, int, float))):
        raise UnsupportedModelError(
            f"{node.where} (MissingIndicator): missing_values={missing!r} is not served"
        )
    which = node.get("features", "missing-only")
    if which not in ("missing-only", "all"):
        raise node.fail(f"features={which!r} is not 'missing-only' or 'all'")
    error_on_new = which == "missing-only" and bool(node.state.get("error_on_new", True))
    uncovered = np.setdiff1d(np.arange(n), features)
    if error_on_new and uncovered.size and not is_nan(missing):
        raise UnsupportedModelError(
            f"{node.where} (MissingIndicator): error_on_new with missing_values={missing!r} "
            "is not served (only with NaN)"
        )
    if not features.size:
        raise UnsupportedModelError(
            f"{node.where} (MissingIndicator): no column had missing values at fit, so "
            "transform returns no columns"
        )
    # one-hot over keys: a column of features_ has the one category (the
    # missing value) writing its output; the others have none
    one = np.empty(1, dtype=object)
    one[0] = missing
    cats = [one if j in set(features.tolist()) else np.empty(0, dtype=object) for j in range(n)]
    out_of = {int(f): t for t, f in enumerate(features.tolist())}
    values = np.array([float(out_of[j]) for j in range(n) if j in out_of])
    tags, nums, text, text_offsets = _keys_of(node, cats, "missing_values")
    columns = np.concatenate([[0], np.cumsum([c.size for c in cats])]).astype(np.int64)
    refuse = np.zeros(n, dtype=np.uint8)
    if error_on_new:
        refuse[uncovered] = REFUSE_NAN
    op = CatMap(
        tags=tags,
        nums=nums,
        text=text,
        text_offsets=text_offsets,
        columns=columns,
        values=values,
        unknown=np.full(n, -1.0),
        refuse=refuse,
        n_outputs=features.size,
        out_type=int(np.dtype(np.bool_).num),
    )
    K = _encoder_input(node, b, X, n)
    return _built(node, n, b.add(node, op, K, features.size))


@register("sklearn.feature_extraction", "DictVectorizer")
def build_dict_vectorizer(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    """DictVectorizer first in a model: its dicts become rows of
    ``feature_names_`` in Python (``_model._dict_rows``), which the graph
    reads as its input; ``sparse=True`` gives the same numbers, dense."""
    if X is not None:
        raise UnsupportedModelError(
            f"{node.where} (DictVectorizer): served as the first step only (it reads dicts)"
        )
    names = node.get("feature_names_")
    if not isinstance(names, list) or not names or not all(isinstance(f, str) for f in names):
        raise node.fail("feature_names_ must be a non-empty list of str")
    vocab = node.get("vocabulary_")
    if (
        not isinstance(vocab, dict)
        or len(vocab) != len(names)
        or any(vocab.get(f) != i for i, f in enumerate(names))
    ):
        raise node.fail("vocabulary_ does not index feature_names_")
    separator = node.get("separator", "=")
    if not isinstance(separator, str):
        raise node.fail(f"separator is {type(separator).__name__}, expected a str")
    dtype = numpy_dtype(node, "dtype")
    if dtype.name not in ("float64", "float32", "float16", "int64", "int32", "bool"):
        raise UnsupportedModelError(f"{node.where} (DictVectorizer): dtype={dtype} is not served")
    cols = b.input(node, None, len(names))
    # a list of str values is one feature a value from 0.24 (before, the
    # list was the value of the feature its key names)
    b.graph.dict_input = {
        "features": list(names),
        "separator": separator,
        "dtype": dtype.name,
        "iterables": node.version >= (0, 24),
    }
    return Built(
        node.name, "transformer", {"transform": Out(cols)}, len(names), first_name=node.name
    )


@register("sklearn.feature_extraction", "FeatureHasher")
def build_feature_hasher(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    """FeatureHasher first in a model: its samples (dicts, pairs or
    strings) hashed into rows in Python (``_model._hashed_rows``), which the
    graph reads as its input; the sparse answer given dense."""
    if X is not None:
        raise UnsupportedModelError(
            f"{node.where} (FeatureHasher): served as the first step only (it reads samples "
            "of features, not arrays)"
        )
    n = node.get("n_features", 2**20)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n < 2**31:
        raise node.fail(f"n_features={n!r} is not an integer in 1..2**31-1")
    if n > 1 << 16:
        raise UnsupportedModelError(
            f"{node.where} (FeatureHasher): n_features={n} columns are served dense, and "
            "mlfast serves up to 65536"
        )
    kind = node.get("input_type", "dict")
    if kind not in ("dict", "pair", "string"):
        raise node.fail(f"input_type={kind!r} is not dict, pair or string")
    alternate = node.get("alternate_sign", True)
    if not isinstance(alternate, bool):
        raise node.fail(f"alternate_sign is {type(alternate).__name__}, expected a bool")
    dtype = numpy_dtype(node, "dtype")
    if dtype.name not in ("float64", "float32", "float16", "int64", "int32"):
        raise UnsupportedModelError(f"{node.where} (FeatureHasher): dtype={dtype} is not served")
    cols = b.input(node, None, int(n))
    b.graph.hash_input = {
        "n_features": int(n),
        "input_type": kind,
        "alternate_sign": alternate,
        "dtype": dtype.name,
    }
    return Built(node.name, "transformer", {"transform": Out(cols)}, int(n), first_name=node.name)
