"""Builders: from the value tree of a model file to the C IR.

Each family module registers small functions, one per scikit-learn class,
that read a Record's state (``coef_``, ``mean_``, ``steps`` ...) and add the
estimator to the model's graph (``ir.GraphBuilder``): the ops it runs, over
the columns it is given, and which columns each of its methods returns
(``ir.Built``).  A meta-estimator builds its members over its own input and
combines their outputs.  Version differences of scikit-learn
(``_sklearn_version`` in every estimator's state) are decided here, in
Python, where they are easy to read.  Nothing in a Record can run; a builder
only reads values and checks their shapes.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from mlfast._builders.ir import (
    Accept,
    Built,
    Cols,
    GraphBuilder,
    Labels,
    Out,
    Post,
    PostRule,
    Proba,
    Strings,
)
from mlfast._core import GLOBAL_KINDS, Record
from mlfast.errors import ModelFormatError, UnsupportedModelError

MAX_NESTING = 32


def parse_version(version: Any) -> Tuple[int, ...]:
    """'1.4.2' -> (1, 4, 2); '1.5.dev0' -> (1, 5); unknown -> (0,)."""
    if not isinstance(version, str):
        return (0,)
    nums = []
    for part in version.split("."):
        m = re.match(r"\d+", part)
        if m is None:
            break
        nums.append(int(m.group()))
        if m.group() != part:
            break
    return tuple(nums) or (0,)


class Node:
    """One estimator Record of the tree, with checked accessors.

    ``where`` is its path from the root (``model.steps[1]``); every error a
    builder raises names it, the class and the attribute.
    """

    _MISSING = object()

    def __init__(self, record: Record, where: str):
        self.record = record
        self.where = where
        self.path = record.path
        self.name = self.path.rsplit(".", 1)[-1]
        state = record.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = state[0]  # (dict, slotstate) from objects with __slots__
        if not isinstance(state, dict):
            raise ModelFormatError(
                f"{where} ({self.name}): expected its state to be a dict, "
                f"found {type(state).__name__}"
            )
        self.state = state
        self.version = parse_version(state.get("_sklearn_version"))

    def fail(self, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.where} ({self.name}): {message}")

    def get(self, key: str, default: Any = _MISSING) -> Any:
        if key in self.state:
            return self.state[key]
        if default is Node._MISSING:
            raise self.fail(f"has no attribute {key!r}; the file is not a fitted estimator")
        return default

    def array(
        self, key: str, ndim: Tuple[int, ...] = (1, 2), kinds: str = "fiub", value: Any = _MISSING
    ) -> np.ndarray:
        """A numeric ndarray attribute (a Python or numpy scalar is taken as 0-d)."""
        v = self.get(key) if value is Node._MISSING else value
        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
            v = np.asarray(v)
        if not isinstance(v, np.ndarray):
            raise self.fail(f"{key} is a {type(v).__name__}, expected an array")
        if v.dtype.kind not in kinds:
            raise self.fail(f"{key} has dtype {v.dtype}, expected a numeric array")
        if v.ndim not in ndim:
            raise self.fail(f"{key} has {v.ndim} dimensions, expected {ndim}")
        return v

    def vector(self, key: str, n: int, value: Any = _MISSING) -> np.ndarray:
        """A float64 vector of n items, contiguous, for the C IR."""
        v = self.array(key, ndim=(0, 1), value=value)
        if v.ndim == 0:
            v = np.full(n, float(v))
        if v.shape != (n,):
            raise self.fail(f"{key} has shape {v.shape}, expected ({n},)")
        return np.ascontiguousarray(v, dtype=np.float64)

    def integer(self, key: str, default: Any = _MISSING) -> int:
        v = self.get(key, default)
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise self.fail(f"{key} is {v!r}, expected an integer")
        return int(v)

    def n_features(self, fallback: int) -> int:
        n = self.state.get("n_features_in_", fallback)
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
            raise self.fail(f"n_features_in_ is {n!r}, expected a positive integer")
        if n != fallback:
            raise self.fail(f"n_features_in_ is {n} but its parameters fit {fallback} features")
        return int(n)

    def feature_names(self) -> Optional[np.ndarray]:
        names = self.state.get("feature_names_in_")
        if names is None:
            return None
        if not isinstance(names, np.ndarray) or names.ndim != 1:
            raise self.fail("feature_names_in_ is not a 1-D array")
        if not all(isinstance(x, str) for x in names.tolist()):
            raise self.fail("feature_names_in_ holds non-string names")
        return names


Builder = Callable[[Node, "Builders", Optional[Cols]], Built]

#: class name -> (scikit-learn subpackage it must come from, builder)
_REGISTRY: Dict[str, Tuple[str, Builder]] = {}


def register(package: str, *names: str):
    def deco(fn: Builder) -> Builder:
        for name in names:
            _REGISTRY[name] = (package, fn)
        return fn

    return deco


#: full class path -> builder, for classes whose bare name is not unique
#: (``xgboost.core.Booster``, ``lightgbm.basic.Booster``)
_EXACT: Dict[str, Builder] = {}


def register_exact(*paths: str):
    def deco(fn: Builder) -> Builder:
        for path in paths:
            _EXACT[path] = fn
        return fn

    return deco


def supported() -> List[str]:
    return sorted(list(_REGISTRY) + list(_EXACT))


def _entry(path: str) -> Optional[Tuple[str, Builder]]:
    """The builder of a class path, if mlfast serves it."""
    if path in _EXACT:
        return (path.rsplit(".", 1)[0], _EXACT[path])
    name = path.rsplit(".", 1)[-1]
    module = path.rsplit(".", 1)[0]
    entry = _REGISTRY.get(name)
    if entry is None or not (module == entry[0] or module.startswith(entry[0] + ".")):
        return None
    return entry


# Attributes that hold no fitted estimator a model runs: unfitted templates
# (the fitted copies sit in the attribute with a trailing underscore) and a
# search's records of what it tried.
_NOT_MEMBERS = frozenset(
    (
        "cv_results_",
        "param_grid",
        "param_distributions",
        "scorer_",
        "_checked_cv_orig",
        "multimetric_",
        "best_params_",
        # read by their meta-estimator's builder as its own parts
        "label_binarizer_",
        "calibrators",
    )
)
#: classes a meta-estimator's builder reads as its own parts
_PARTS = frozenset(("sklearn.multiclass._ConstantPredictor",))
_TEMPLATES = frozenset(("estimator", "base_estimator", "estimators", "transformers"))
_SURVEY_BUDGET = 100_000
# a class from a module the unpickler's table does not know (a user's own)
_UNKNOWN = GLOBAL_KINDS["unknown"]


def unserved(root: Any, where: str) -> List[Tuple[str, str]]:
    """(where, class path) of every estimator in the tree mlfast does not
    serve, in the order a builder would meet them; an unserved estimator's
    own members are not looked at.  Bounded in time: each container is seen
    once, depth and size are capped."""
    found: List[Tuple[str, str]] = []
    seen = set()
    budget = [_SURVEY_BUDGET]

    def visit(obj: Any, path: str, depth: int) -> None:
        budget[0] -= 1
        if budget[0] < 0 or depth > 4 * MAX_NESTING or len(found) >= 20:
            return
        if isinstance(obj, (Record, list, tuple, dict, np.ndarray)):
            if id(obj) in seen:
                return
            seen.add(id(obj))
        if isinstance(obj, Record):
            if obj.cls.kind == _UNKNOWN and _entry(obj.path) is None:
                found.append((path, obj.path))
                return
            state = obj.state
            if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
                state = state[0]
            if not isinstance(state, dict):
                return
            if "_sklearn_version" in state and _entry(obj.path) is None and obj.path not in _PARTS:
                found.append((path, obj.path))
                return
            keys = [k for k in state if isinstance(k, str)]
            fitted = any(
                k.endswith(
                    ("estimator_", "estimators_", "transformers_", "calibrated_classifiers_")
                )
                for k in keys
            )
            for k in keys:
                if (
                    k in _NOT_MEMBERS
                    or (k in _TEMPLATES and fitted)
                    or (not k.endswith("_") and k + "_" in state)
                ):
                    continue
                visit(state[k], f"{path}.{k}", depth + 1)
        elif isinstance(obj, (list, tuple)):
            for i, item in enumerate(obj[:10_000]):
                if (
                    isinstance(item, tuple)
                    and len(item) in (2, 3)
                    and isinstance(item[0], str)
                    and isinstance(item[1], Record)
                ):
                    # (name, estimator) pairs read as steps[i]; triples
                    # (name, transformer, columns) as transformers_[i][1]
                    visit(
                        item[1], f"{path}[{i}]" if len(item) == 2 else f"{path}[{i}][1]", depth + 1
                    )
                else:
                    visit(item, f"{path}[{i}]", depth + 1)
        elif isinstance(obj, dict):
            for k, v in list(obj.items())[:10_000]:
                visit(v, f"{path}[{str(k)[:40]!r}]", depth + 1)
        elif isinstance(obj, np.ndarray) and obj.dtype.kind == "O":
            for i, item in enumerate(obj.ravel()[:10_000]):
                visit(item, f"{path}[{i}]", depth + 1)

    visit(root, where, 0)
    return found


def _not_served(root: Any, root_where: str, first: Tuple[str, str]) -> str:
    """The message for a model holding estimators mlfast does not serve:
    every one of them, where it sits, and where to look next."""
    found = unserved(root, root_where)
    if first not in found:
        found.insert(0, first)
    from mlfast._builders.unpredictable import reason

    def entry(where: str, path: str) -> str:
        why = reason(path)
        return f"{where} is a {path}" + (
            f", which cannot predict from its fitted state ({why})" if why else ""
        )

    listed = "; ".join(entry(where, path) for where, path in found)
    ours = all(path.startswith("sklearn.") for _, path in found)
    if len(found) == 1 and reason(found[0][1]):
        head = listed
    elif len(found) == 1:
        head = f"{listed}, which mlfast does not serve{' yet' if ours else ''}"
    else:
        head = (
            f"mlfast does not serve {len(found)} estimators of this model"
            f"{' yet' if ours else ''}: {listed}"
        )
    tail = ""
    if any(path.startswith("__main__.") for _, path in found):
        tail = (
            "; a __main__ class was defined in the script or notebook that saved the "
            "model, and mlfast never imports code"
        )
    return (
        f"{head}. mlfast.supported_estimators() lists the {len(_REGISTRY) + len(_EXACT)} classes it "
        f"serves{tail}"
    )


class Builders:
    """Walks the tree, dispatching each Record to its builder, which adds
    the estimator to one graph."""

    def __init__(self) -> None:
        self.depth = 0
        self.graph = GraphBuilder()
        self.root: Optional[Tuple[Record, str]] = None

    def input(self, node: Node, X: Optional[Cols], n: int) -> Cols:
        """The columns an estimator of n features reads: X, or the model's
        input when it is the first to read it."""
        if X is None:
            try:
                return self.graph.input(n)
            except ValueError as exc:
                raise node.fail(str(exc)) from None
        if len(X) != n:
            raise node.fail(f"takes {n} columns but receives {len(X)}")
        return X

    def keys(self, node: Node, X: Cols) -> Cols:
        """The same columns read as keys (categories of any type)."""
        try:
            return self.graph.keys(X, node.name)
        except ValueError as exc:
            raise node.fail(str(exc)) from None

    def add(self, node: Node, op, X: Cols, n_out: int, accept: int = Accept.ANY, **kw) -> Cols:
        """An op of this estimator, named after it in messages."""
        return self.graph.add(op, X, n_out, node.name, accept=accept, **kw)

    def build(self, obj: Any, where: str, X: Optional[Cols] = None) -> Built:
        if not isinstance(obj, Record):
            raise UnsupportedModelError(
                f"{where} is a {type(obj).__name__}, not a scikit-learn estimator"
            )
        if self.root is None:
            self.root = (obj, where)
        path = obj.path
        entry = _entry(path)
        if entry is None:
            raise UnsupportedModelError(_not_served(self.root[0], self.root[1], (where, path)))
        if self.depth >= MAX_NESTING:
            raise UnsupportedModelError(f"{where}: estimators nested deeper than {MAX_NESTING}")
        self.depth += 1
        try:
            node = Node(obj, where)
            built = entry[1](node, self, X)
        except (ModelFormatError, UnsupportedModelError):
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            # a state the builder did not foresee (a missing field, an array
            # where a name belongs...): from a file, that is a malformed file
            name = path.rsplit(".", 1)[-1]
            raise ModelFormatError(f"{where} ({name}): malformed state: {exc}") from None
        finally:
            self.depth -= 1
        if built.sklearn_version is None:
            version = node.state.get("_sklearn_version")
            built.sklearn_version = version if isinstance(version, str) else None
        return built


def transformer(
    node: Node,
    b: Builders,
    X: Optional[Cols],
    op,
    n_in: int,
    n_out: int,
    accept: int,
    strings: int = Strings.CONVERT,
    string_prefix: Optional[str] = None,
    unnamed: bool = False,
) -> Built:
    """A transformer that is one op."""
    X = b.input(node, X, n_in)
    cols = b.add(node, op, X, n_out, accept=accept, unnamed=unnamed)
    return Built(
        node.name,
        "transformer",
        {"transform": Out(cols)},
        n_in,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=strings,
        string_prefix=string_prefix,
    )


def classifier(
    node: Node,
    b: Builders,
    raw: Cols,
    classes: np.ndarray,
    n_in: int,
    *,
    label_rule: int,
    proba_rule: Optional[int] = None,
    proba: Optional[Cols] = None,
    decision: bool = True,
    raw_1d: bool = False,
    log_proba: bool = True,
    strings: int = Strings.REFUSE,
    label_from_proba: bool = False,
) -> Built:
    """A classifier's methods over its raw scores: decision_function (raw),
    predict_proba (a proba op over raw, or `proba` as given), its log, and
    predict (a labels op over raw, or over the probabilities)."""
    k = int(classes.size)
    outputs: Dict[str, Out] = {}
    if decision:
        outputs["decision_function"] = Out(raw, squeeze=raw_1d)
    if proba is None and proba_rule is not None:
        proba = b.add(node, Proba(rule=proba_rule, n_classes=k), raw, k)
    if proba is not None:
        outputs["predict_proba"] = Out(proba)
        if log_proba:
            outputs["predict_log_proba"] = Out(b.add(node, Post(rule=PostRule.LOG), proba, k))
    scores = raw
    if label_from_proba:
        if proba is None:
            raise TypeError(f"{node.name}: label_from_proba without proba or proba_rule")
        scores = proba
    labels = b.add(node, Labels(rule=label_rule), scores, 1)
    outputs["predict"] = Out(labels, classes=classes, squeeze=True)
    return Built(
        node.name,
        "classifier",
        outputs,
        n_in,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=strings,
    )


def regressor(
    node: Node,
    raw: Cols,
    n_in: int,
    *,
    raw_1d: bool,
    strings: int = Strings.REFUSE,
    kind: str = "regressor",
) -> Built:
    """A regressor whose predict is these columns."""
    return Built(
        node.name,
        kind,
        {"predict": Out(raw, squeeze=raw_1d)},
        n_in,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=strings,
    )


def is_nan(v: Any) -> bool:
    return isinstance(v, (float, np.floating)) and math.isnan(v)


# importing the family modules fills the registry
from mlfast._builders import (  # noqa: E402,F401
    bayes,
    cluster,
    compose,
    decomposition,
    discriminant,
    encoders,
    ensemble,
    feature_selection,
    functions,
    gbdt,
    glm,
    kernel_approximation,
    linear,
    mixture,
    multiclass,
    neighbors,
    neural,
    pipeline,
    preprocessing,
    svm,
    text,
    transforms,
    trees,
)
