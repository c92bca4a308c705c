"""Builders: from the value tree of a model file to the C IR.

Each family module registers small functions, one per scikit-learn class,
that read a Record's state (``coef_``, ``mean_``, ``steps`` ...) and return
parts of a chain: transform steps and at most one final estimator.  Version
differences of scikit-learn (``_sklearn_version`` in every estimator's state)
are decided here, in Python, where they are easy to read.  Nothing in a
Record can run; a builder only reads values and checks their shapes.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from mlfast._core import Record
from mlfast.errors import ModelFormatError, UnsupportedModelError

# accept codes of mlfast.h
ACCEPT_FINITE, ACCEPT_NAN, ACCEPT_ANY = 0, 1, 2
# label rules (mf_label_rule)
LABEL_NONE, LABEL_THRESHOLD, LABEL_ARGMAX, LABEL_THRESHOLD_GE, LABEL_PROBA_ARGMAX = range(5)
# proba rules (mf_proba_rule)
(PROBA_NONE, PROBA_EXPIT_OVR, PROBA_SOFTMAX, PROBA_SOFTMAX_BINARY, PROBA_MODIFIED_HUBER,
 PROBA_IDENTITY, PROBA_NORMALIZE, PROBA_EXPIT2) = range(8)
# post rules (mf_post_rule)
POST_NONE, POST_EXP, POST_IFOREST = range(3)
# what the first stage does with string arrays (MF_STRINGS_*)
STRINGS_REFUSE, STRINGS_CONVERT, STRINGS_IMPUTER = range(3)

MAX_NESTING = 32


@dataclass
class Step:
    """A transform step: the tuple Chain takes, and its widths."""

    spec: tuple
    n_in: int
    n_out: int
    name: str
    strings: int = STRINGS_CONVERT       # transformers read X as float
    string_prefix: Optional[str] = None


@dataclass
class Final:
    """A final estimator."""

    spec: tuple
    name: str
    n_in: int
    kind: str  # "classifier" or "regressor"
    label_rule: int = LABEL_NONE
    proba_rule: int = PROBA_NONE
    classes: Optional[np.ndarray] = None
    raw_1d: bool = False
    coef_f32: bool = False
    methods: Tuple[str, ...] = ("predict",)
    post_rule: int = POST_NONE
    post_params: Tuple[float, float] = (0.0, 0.0)
    strings: int = STRINGS_REFUSE        # dtype='numeric' refuses strings
    string_prefix: Optional[str] = None
    # multi-output classification: one classes_ array per output; raw holds
    # their distributions side by side (normalised by the Model if asked)
    multi_classes: Optional[List[np.ndarray]] = None
    normalize_outputs: bool = False


@dataclass
class Parts:
    steps: List[Step] = field(default_factory=list)
    final: Optional[Final] = None
    names: List[str] = field(default_factory=list)      # estimator chain, for repr
    n_features_in: Optional[int] = None
    feature_names_in: Optional[np.ndarray] = None
    sklearn_version: Optional[str] = None


def parse_version(text: Any) -> Tuple[int, ...]:
    """'1.4.2' -> (1, 4, 2); '1.5.dev0' -> (1, 5); unknown -> (0,)."""
    if not isinstance(text, str):
        return (0,)
    nums = []
    for part in text.split("."):
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
            state = state[0]          # (dict, slotstate) from objects with __slots__
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

    def array(self, key: str, ndim: Tuple[int, ...] = (1, 2), kinds: str = "fiub",
              value: Any = _MISSING) -> np.ndarray:
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


Builder = Callable[[Node, "Builders"], Parts]

#: class name -> (scikit-learn subpackage it must come from, builder)
_REGISTRY: Dict[str, Tuple[str, Builder]] = {}


def register(package: str, *names: str):
    def deco(fn: Builder) -> Builder:
        for name in names:
            _REGISTRY[name] = (package, fn)
        return fn

    return deco


def supported() -> List[str]:
    return sorted(_REGISTRY)


class Builders:
    """Walks the tree, dispatching each Record to its builder."""

    def __init__(self) -> None:
        self.depth = 0

    def build(self, obj: Any, where: str) -> Parts:
        if not isinstance(obj, Record):
            raise UnsupportedModelError(
                f"{where} is a {type(obj).__name__}, not a scikit-learn estimator"
            )
        path = obj.path
        name = path.rsplit(".", 1)[-1]
        entry = _REGISTRY.get(name)
        module = path.rsplit(".", 1)[0]
        if entry is None or not (module == entry[0] or module.startswith(entry[0] + ".")):
            raise UnsupportedModelError(
                f"{where} is a {path}, which mlfast does not serve yet. "
                f"Supported estimators: {', '.join(supported())}"
            )
        if self.depth >= MAX_NESTING:
            raise UnsupportedModelError(f"{where}: estimators nested deeper than {MAX_NESTING}")
        self.depth += 1
        try:
            node = Node(obj, where)
            parts = entry[1](node, self)
        except (ModelFormatError, UnsupportedModelError):
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            # a state the builder did not foresee (a missing field, an array
            # where a name belongs...): from a file, that is a malformed file
            raise ModelFormatError(f"{where} ({name}): malformed state: {exc}") from None
        finally:
            self.depth -= 1
        if parts.sklearn_version is None:
            parts.sklearn_version = node.state.get("_sklearn_version")
        return parts


def transformer(node: Node, spec: tuple, n_in: int, n_out: int, **kw) -> Parts:
    """Parts of a single transform step."""
    return Parts(
        steps=[Step(spec, n_in, n_out, node.name, **kw)],
        names=[node.name],
        n_features_in=n_in,
        feature_names_in=node.feature_names(),
    )


def is_nan(v: Any) -> bool:
    return isinstance(v, (float, np.floating)) and math.isnan(v)


# importing the family modules fills the registry
from mlfast._builders import linear, pipeline, preprocessing, trees  # noqa: E402,F401
