"""The model IR, Python side: what the builders hand over to C.

A model is a graph.  Its slots are the columns of a row: the input X fills
slots ``0..n_features-1``; each :class:`Node` reads some slots (a
:class:`Cols`) and writes ``n_out`` new ones.  Each op kind is one dataclass
below with the fields of its C struct in ``csrc/mlfast.h``, by the same
names: C reads them by name (``_core.OPS`` lists them, and a test checks the
two sides agree).  The enums come from C (``_core.CODES``), never retyped.

Builders add nodes to a :class:`GraphBuilder` and return a :class:`Built`:
which slots each method of the estimator returns.  ``GraphBuilder.finish``
drops the nodes no method needs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from mlfast import _core


def _codes(name: str, key: str) -> Any:
    """An IntEnum of one of C's code tables.  Its members come from C at
    import, so a type checker cannot list them: typed Any, and
    tests/test_graph_contract.py checks every member the builders name."""
    return IntEnum(name, _core.CODES[key])


Accept = _codes("Accept", "accept")
ProbaRule = _codes("ProbaRule", "proba")
LabelRule = _codes("LabelRule", "labels")
PostRule = _codes("PostRule", "post")
Strings = _codes("Strings", "strings")
Slot = _codes("Slot", "slots")
CalibrateRule = _codes("CalibrateRule", "calibrate")
NormalizeRule = _codes("NormalizeRule", "normalize")
EcocRule = _codes("EcocRule", "ecoc")
Analyzer = _codes("Analyzer", "analyzers")
TextNorm = _codes("TextNorm", "text_norms")
CastRule = _codes("CastRule", "cast")
XgbRule = _codes("XgbRule", "xgb_link")
CatRule = _codes("CatRule", "cat_rule")
SvmPostRule = _codes("SvmPostRule", "svm_post")
DaPostRule = _codes("DaPostRule", "da_post")
ActivationRule = _codes("ActivationRule", "activation")
#: numpy's name -> code, of the functions a FunctionTransformer may name
FUNCTIONS: Dict[str, int] = dict(_core.CODES["functions"])
METHODS: Tuple[str, ...] = tuple(_core.CODES["methods"])


# ---- ops ---------------------------------------------------------------------------


def _coerce(value: Any, kind: str, dtype: Optional[np.dtype], optional: int) -> Any:
    """A field value as C reads it: arrays contiguous, aligned, of the C
    dtype (a copy only where needed, e.g. an array unpickled at an odd
    offset); scalars as plain Python values."""
    if kind == "array":
        if value is None and optional:
            return None
        return np.require(value, dtype=dtype, requirements=["C", "A"])
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return bool(value)


#: every op dataclass, by its C name
OP_TYPES: Dict[str, type] = {}


@dataclass
class Op:
    """Base of the op dataclasses; ``op_name`` names the C op."""

    op_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        OP_TYPES[cls.op_name] = cls

    def __post_init__(self) -> None:
        for name, kind, dtype, _ndim, optional in _core.OPS[self.op_name]:
            setattr(self, name, _coerce(getattr(self, name), kind, dtype, optional))

    def arrays(self) -> List[np.ndarray]:
        return [
            v
            for v in (getattr(self, f.name) for f in dataclasses.fields(self))
            if isinstance(v, np.ndarray)
        ]

    def state(self) -> dict:
        """Plain values, for a pickled Model."""
        out = {"op": self.op_name}
        out.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        return out


@dataclass
class Affine(Op):
    """The scalers: x = clip(((x - sub) * mul / div) + add), each optional."""

    op_name: ClassVar[str] = "affine"
    sub: Optional[np.ndarray] = None
    mul: Optional[np.ndarray] = None
    div: Optional[np.ndarray] = None
    add: Optional[np.ndarray] = None
    cast_params: bool = False
    clip: bool = False
    clip_lo: float = 0.0
    clip_hi: float = 0.0


@dataclass
class Impute(Op):
    """SimpleImputer: fill, keep some columns, add missing indicators."""

    op_name: ClassVar[str] = "impute"
    missing: float = float("nan")
    fill: np.ndarray = field(default_factory=lambda: np.zeros(0))
    keeps_int: bool = False
    keep: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    indicator: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class Encode(Op):
    """HistGradientBoosting's ordinal encoding of numeric categories."""

    op_name: ClassVar[str] = "encode"
    perm: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    categories: np.ndarray = field(default_factory=lambda: np.zeros(0))
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))


@dataclass
class Linear(Op):
    """raw = X @ coef.T + intercept; f32: the product stays float32 for
    float32 input (a float32 coef_)."""

    op_name: ClassVar[str] = "linear"
    coef: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    intercept: np.ndarray = field(default_factory=lambda: np.zeros(1))
    f32: bool = False


@dataclass
class Forest(Op):
    """Any tree ensemble, as per-node arrays of all trees concatenated."""

    op_name: ClassVar[str] = "forest"
    n_features: int = 0
    n_raw: int = 0
    left: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    right: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    feature: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    threshold: np.ndarray = field(default_factory=lambda: np.zeros(0))
    flags: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    node_values: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)))
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    column: Optional[np.ndarray] = None
    cats: Optional[np.ndarray] = None
    init: Optional[np.ndarray] = None
    average: bool = False
    sum_f32: bool = False
    cat_words: Optional[np.ndarray] = None
    cat_offsets: Optional[np.ndarray] = None
    cat_rule: int = 0


@dataclass
class PackedForest(Op):
    """A forest in the layout C made of a :class:`Forest` (what a Model keeps)."""

    op_name: ClassVar[str] = "forest_packed"
    n_features: int = 0
    n_raw: int = 0
    packed_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    packed_roots: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    packed_values: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)))
    column: Optional[np.ndarray] = None
    cats: Optional[np.ndarray] = None
    init: Optional[np.ndarray] = None
    average: bool = False
    sum_f32: bool = False
    cat_words: Optional[np.ndarray] = None
    cat_offsets: Optional[np.ndarray] = None
    cat_rule: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.packed_nodes.ctypes.data % 8:
            # the nodes are structs of doubles read in place
            self.packed_nodes = self.packed_nodes.copy()


@dataclass
class Proba(Op):
    """From raw scores to predict_proba."""

    op_name: ClassVar[str] = "proba"
    rule: int = 0
    n_classes: int = 0


@dataclass
class Labels(Op):
    """One column: each row's class index."""

    op_name: ClassVar[str] = "labels"
    rule: int = 0
    threshold: float = 0.0


@dataclass
class Post(Op):
    """Element-wise: exp (log links), isolation-forest scores, log."""

    op_name: ClassVar[str] = "post"
    rule: int = 0
    denominator: float = 0.0
    offset: float = 0.0


@dataclass
class Average(Op):
    """np.average over member blocks of equal width (soft voting, VotingRegressor)."""

    op_name: ClassVar[str] = "average"
    weights: np.ndarray = field(default_factory=lambda: np.ones(1))
    scale: float = 1.0
    weighted: bool = False


@dataclass
class Vote(Op):
    """Hard voting: each class's weighted count of the members' labels."""

    op_name: ClassVar[str] = "vote"
    n_classes: int = 0
    weights: Optional[np.ndarray] = None
    class_map: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    map_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))


@dataclass
class Take(Op):
    """Class indices to their values (a member's labels as numbers)."""

    op_name: ClassVar[str] = "take"
    table: np.ndarray = field(default_factory=lambda: np.zeros(0))
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    int_out: bool = False


@dataclass
class Bag(Op):
    """Bagging: members' answers summed (or log-added) by chunk, then averaged."""

    op_name: ClassVar[str] = "bag"
    n_outputs: int = 0
    widths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    votes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    class_map: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    map_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    chunk_starts: np.ndarray = field(default_factory=lambda: np.zeros(2, np.int64))
    divisor: float = 1.0
    log: bool = False
    log_offset: float = 0.0
    keep_type: bool = False


@dataclass
class Samme(Op):
    """AdaBoostClassifier's decision function (SAMME, or SAMME.R when real)."""

    op_name: ClassVar[str] = "samme"
    n_classes: int = 0
    real: bool = False
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    others: Optional[np.ndarray] = None
    class_map: Optional[np.ndarray] = None
    map_offsets: Optional[np.ndarray] = None
    total: float = 1.0
    inv_classes: float = 0.0
    eps: float = 0.0


@dataclass
class WeightedMedian(Op):
    """AdaBoostRegressor: the weighted median of the members' predictions."""

    op_name: ClassVar[str] = "wmedian"
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class OneHot(Op):
    """Column indices to a dense one-hot row (RandomTreesEmbedding's leaves)."""

    op_name: ClassVar[str] = "onehot"
    n_outputs: int = 0


@dataclass
class Constant(Op):
    """The same row whatever the input (the Dummy estimators)."""

    op_name: ClassVar[str] = "constant"
    values: np.ndarray = field(default_factory=lambda: np.zeros(1))
    out_kind: int = 0  # 0 float64, 1 int64, 2 float32


@dataclass
class Check(Op):
    """The input unchanged, after the node's accept rule."""

    op_name: ClassVar[str] = "check"


# ---- keys: categories of any type (csrc/keys.c) ------------------------------------


def encode_keys(values: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The keys of a 1-D array of categories (tags, nums, text,
    text_offsets): made by the C function that makes the caller's keys."""
    return _core.encode_keys(values)


def _u8() -> np.ndarray:
    return np.zeros(0, np.uint8)


@dataclass
class CatMap(Op):
    """OneHotEncoder and OrdinalEncoder: each input key's category, looked up
    in its column's categories, writes values[c] (one-hot: sets that output
    column; ordinal: is the output), an unknown one unknown[j] or, where
    refuse[j], refuses the row."""

    op_name: ClassVar[str] = "catmap"
    tags: np.ndarray = field(default_factory=_u8)
    nums: np.ndarray = field(default_factory=lambda: np.zeros(0))
    text: np.ndarray = field(default_factory=_u8)
    text_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    columns: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    unknown: np.ndarray = field(default_factory=lambda: np.zeros(0))
    refuse: np.ndarray = field(default_factory=_u8)
    n_outputs: int = 0
    out_type: int = int(np.dtype(np.float64).num)


@dataclass
class KeyFill(Op):
    """SimpleImputer on object data: keys 0..n-1 fill each column where it
    holds key n (the missing value); keep: the columns returned."""

    op_name: ClassVar[str] = "keyfill"
    tags: np.ndarray = field(default_factory=_u8)
    nums: np.ndarray = field(default_factory=lambda: np.zeros(0))
    text: np.ndarray = field(default_factory=_u8)
    text_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    keep: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class KeyMissing(Op):
    """MissingIndicator over keys: 1 where a feature holds the one key."""

    op_name: ClassVar[str] = "keymissing"
    tags: np.ndarray = field(default_factory=_u8)
    nums: np.ndarray = field(default_factory=lambda: np.zeros(0))
    text: np.ndarray = field(default_factory=_u8)
    text_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    features: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    out_type: int = int(np.dtype(np.bool_).num)


@dataclass
class ToKey(Op):
    """Numbers read as keys (an encoder after a numeric step)."""

    op_name: ClassVar[str] = "tokey"


@dataclass
class Calibrate(Op):
    """_CalibratedClassifier.predict_proba: each score column through its
    calibrator (sigmoid: a, b; isotonic: thresholds x, y between offsets,
    clipped to lo, hi) into its class column, then normalised; or
    temperature scaling (beta) of all the columns."""

    op_name: ClassVar[str] = "calibrate"
    rule: int = 0
    n_classes: int = 0
    columns: Optional[np.ndarray] = None
    a: Optional[np.ndarray] = None
    b: Optional[np.ndarray] = None
    x: Optional[np.ndarray] = None
    y: Optional[np.ndarray] = None
    offsets: Optional[np.ndarray] = None
    lo: Optional[np.ndarray] = None
    hi: Optional[np.ndarray] = None
    beta: float = 1.0
    from_proba: bool = False


@dataclass
class Normalize(Op):
    """Rows over their sums (one column p: [1 - p, p] first)."""

    op_name: ClassVar[str] = "normalize"
    rule: int = 0
    complement: bool = False


@dataclass
class OvrArgmax(Op):
    """One-vs-rest's running maximum: a row of 0 with a 1 at the estimator
    it keeps (the last equal to it, estimators in order or reversed)."""

    op_name: ClassVar[str] = "ovr_argmax"
    reverse: bool = False


@dataclass
class OvoVotes(Op):
    """One-vs-one votes and confidences: pairs' class indices, then their
    confidences."""

    op_name: ClassVar[str] = "ovo_votes"
    n_classes: int = 2


@dataclass
class Ecoc(Op):
    """Minus each code word's Euclidean distance (output codes)."""

    op_name: ClassVar[str] = "ecoc"
    rule: int = 0
    code_book: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    code_norms: np.ndarray = field(default_factory=lambda: np.zeros(1))


@dataclass
class Cast(Op):
    """The input as is, returned as float64, or as the type numpy's loop for
    a function reads."""

    op_name: ClassVar[str] = "cast"
    rule: int = 0
    code: int = 0


@dataclass
class Function(Op):
    """A numpy function of FUNCTIONS, element by element, by numpy's loops."""

    op_name: ClassVar[str] = "function"
    code: int = 0


@dataclass
class Sparse(Op):
    """A document's packed sparse row (a key slot), weighed as scikit-learn's
    vectorizers and TfidfTransformer weigh it, then multiplied by coef.T
    (+ intercept), or written out dense."""

    op_name: ClassVar[str] = "sparse"
    n_features: int = 1
    binary: bool = False
    pre_norm: int = 0
    sublinear: bool = False
    idf: Optional[np.ndarray] = None
    norm: int = 0
    coef: Optional[np.ndarray] = None
    intercept: Optional[np.ndarray] = None
    counts: bool = False
    reverse: bool = False


# ---- naive Bayes (csrc/bayes.c) ----------------------------------------------------


@dataclass
class GaussianNB(Op):
    """GaussianNB's joint log likelihood: log_prior + (norm - 0.5 * sum((x - theta)**2 / var))."""

    op_name: ClassVar[str] = "gaussian_nb"
    theta: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    var: np.ndarray = field(default_factory=lambda: np.ones((1, 1)))
    log_prior: np.ndarray = field(default_factory=lambda: np.zeros(1))
    norm: np.ndarray = field(default_factory=lambda: np.zeros(1))
    f32: bool = False


@dataclass
class BernoulliNB(Op):
    """BernoulliNB with binarize: (x > threshold) @ coef.T + intercept."""

    op_name: ClassVar[str] = "bernoulli_nb"
    coef: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    intercept: np.ndarray = field(default_factory=lambda: np.zeros(1))
    threshold: float = 0.0


@dataclass
class CategoricalNB(Op):
    """CategoricalNB: each feature's table row of its category, summed, + log_prior."""

    op_name: ClassVar[str] = "categorical_nb"
    n_classes: int = 1
    tables: np.ndarray = field(default_factory=lambda: np.zeros(0))
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    n_categories: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    log_prior: np.ndarray = field(default_factory=lambda: np.zeros(1))


@dataclass
class NbLogProba(Op):
    """Each row minus its logsumexp (naive Bayes' predict_log_proba)."""

    op_name: ClassVar[str] = "nb_log_proba"


# ---- support vector machines (csrc/svm.c) -------------------------------------------


@dataclass
class Svm(Op):
    """libsvm's decision values: one per pair of classes (n_classes >= 2), or one
    (n_classes 0: regression, one class)."""

    op_name: ClassVar[str] = "svm"
    kernel: int = 2
    degree: int = 3
    gamma: float = 1.0
    coef0: float = 0.0
    n_classes: int = 0
    support_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)))
    dual_coef: np.ndarray = field(default_factory=lambda: np.zeros((1, 0)))
    intercept: np.ndarray = field(default_factory=lambda: np.zeros(1))
    n_support: Optional[np.ndarray] = None


@dataclass
class SvmPost(Op):
    """From decision values: libsvm's vote, one-vs-rest input, sign flip,
    offset, or Platt probabilities coupled pairwise."""

    op_name: ClassVar[str] = "svm_post"
    rule: int = 0
    n_classes: int = 0
    offset: float = 0.0
    prob_a: Optional[np.ndarray] = None
    prob_b: Optional[np.ndarray] = None


# ---- discriminant analysis (csrc/discriminant.c) --------------------------------------


@dataclass
class Qda(Op):
    """QuadraticDiscriminantAnalysis's log posteriors, one column per class."""

    op_name: ClassVar[str] = "qda"
    n_classes: int = 1
    rank: int = 1
    means: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    weights: np.ndarray = field(default_factory=lambda: np.zeros(1))
    u: np.ndarray = field(default_factory=lambda: np.zeros(1))
    log_prior: np.ndarray = field(default_factory=lambda: np.zeros(1))


@dataclass
class DaPost(Op):
    """Discriminant analysis: binary difference, log probabilities, probabilities."""

    op_name: ClassVar[str] = "da_post"
    rule: int = 0


# ---- neural networks (csrc/nn.c) -----------------------------------------------------


@dataclass
class Activation(Op):
    """An MLP activation: logistic, tanh, relu, exp, or softmax by row."""

    op_name: ClassVar[str] = "activation"
    rule: int = 0


# ---- nearest neighbours (csrc/neighbors.c) --------------------------------------------


@dataclass
class Knn(Op):
    """k nearest training rows: k indices, then k distances, nearest first."""

    op_name: ClassVar[str] = "knn"
    mode: int = 0
    metric: int = 1
    p: float = 2.0
    k: int = 1
    data: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    idx_array: Optional[np.ndarray] = None
    nodes: Optional[np.ndarray] = None
    bounds: Optional[np.ndarray] = None
    radius: Optional[np.ndarray] = None
    n_nodes: int = 0


@dataclass
class KnnVote(Op):
    """KNeighborsClassifier: class weights of the neighbours."""

    op_name: ClassVar[str] = "knn_vote"
    n_classes: int = 1
    n_train: int = 1
    labels: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    distance: bool = False
    mode_counts: bool = False


@dataclass
class KnnMean(Op):
    """KNeighborsRegressor: the neighbours' (weighted) mean target."""

    op_name: ClassVar[str] = "knn_mean"
    targets: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    distance: bool = False


def op_from_state(state: dict) -> Op:
    """The op of a pickled Model's plain state; unknown keys are refused."""
    kind = state.get("op")
    cls = OP_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown op {kind!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    extra = set(state) - names - {"op"}
    if extra:
        raise ValueError(f"op {kind}: unknown fields {sorted(map(str, extra))[:5]}")
    return cls(**{k: v for k, v in state.items() if k != "op"})


@dataclass
class XgbLink(Op):
    """XGBoost's float32 transforms of its margins."""

    op_name: ClassVar[str] = "xgb_link"
    rule: int = 0


# ---- nodes and outputs ------------------------------------------------------------


@dataclass
class Node:
    """One op over some slots; C reads these fields by name."""

    op: Op
    inputs: np.ndarray
    n_out: int
    name: str
    accept: int = Accept.ANY
    cast_f32: bool = False  # the input is read as float32 (scikit-learn's trees)
    unnamed: bool = False  # an inf message names no input (an encoder's check)

    def state(self) -> dict:
        return {
            "op": self.op.state(),
            "inputs": self.inputs,
            "n_out": self.n_out,
            "name": self.name,
            "accept": int(self.accept),
            "cast_f32": self.cast_f32,
            "unnamed": self.unnamed,
        }


@dataclass
class Output:
    """What a method returns: slots, and with classes, labels.  C reads
    slots, classes and squeeze; the rest (multi-output answers, rare) the
    Model applies to what C returns."""

    slots: np.ndarray
    classes: Optional[np.ndarray] = None
    squeeze: bool = False  # one column is returned 1-D
    split: Optional[List[int]] = None  # a list of arrays of these widths
    # each column holds an index into its own classes (multi-output predict);
    # the labels take column_dtype, or numpy's promotion of the classes
    column_classes: Optional[List[np.ndarray]] = None
    column_dtype: Optional[np.dtype] = None
    # with split: the parts stacked into one 3-D array (np.asarray of them)
    stacked: bool = False
    # the estimator's classes_ where it is not what the columns index: a
    # multilabel OneVsRestClassifier's label indices (each column is 0 or 1)
    estimator_classes: Optional[np.ndarray] = None

    def state(self) -> dict:
        return {
            "slots": self.slots,
            "classes": self.classes,
            "squeeze": self.squeeze,
            "split": self.split,
            "column_classes": self.column_classes,
            "column_dtype": None if self.column_dtype is None else self.column_dtype.str,
            "stacked": self.stacked,
            "estimator_classes": self.estimator_classes,
        }


class Cols:
    """A list of slots: the columns an estimator reads or writes."""

    __slots__ = ("slots",)

    def __init__(self, slots: Union[Sequence[int], np.ndarray]):
        self.slots = np.ascontiguousarray(slots, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.slots.size)

    def __getitem__(self, index: Any) -> "Cols":
        return Cols(np.atleast_1d(self.slots[index]))

    @staticmethod
    def concat(parts: Iterable["Cols"]) -> "Cols":
        arrays = [p.slots for p in parts]
        return Cols(np.concatenate(arrays) if arrays else np.zeros(0, np.int64))

    def __repr__(self) -> str:
        return f"Cols({self.slots.tolist()[:8]}{'...' if len(self) > 8 else ''})"


@dataclass
class Out:
    """A method of a built estimator: its columns; classifiers' predict also
    names the classes its columns index (see Output for the other fields)."""

    cols: Cols
    classes: Optional[np.ndarray] = None
    squeeze: bool = False
    split: Optional[List[int]] = None
    column_classes: Optional[List[np.ndarray]] = None
    column_dtype: Optional[np.dtype] = None
    stacked: bool = False
    estimator_classes: Optional[np.ndarray] = None

    def output(self) -> Output:
        return Output(
            self.cols.slots,
            self.classes,
            self.squeeze,
            self.split,
            self.column_classes,
            self.column_dtype,
            self.stacked,
            self.estimator_classes,
        )


@dataclass
class Built:
    """An estimator as the graph now computes it."""

    name: str  # for repr: 'Pipeline(A -> B)'
    kind: str  # classifier, regressor, transformer, ...
    outputs: Dict[str, Out]
    n_features_in: int
    feature_names_in: Optional[np.ndarray] = None
    first_name: str = ""  # the estimator that checks X first
    strings: int = Strings.CONVERT  # what that estimator does with strings
    string_prefix: Optional[str] = None
    sklearn_version: Optional[str] = None
    # the estimator that warns of an array given to a model fitted on
    # names (default first_name), and, for a ColumnTransformer fitted on a
    # DataFrame, the columns it selects by name from a DataFrame
    warn_name: Optional[str] = None
    names_required: Optional[np.ndarray] = None

    @property
    def classes(self) -> Optional[np.ndarray]:
        """The classes a single-output classifier's predict indexes."""
        predict = self.outputs.get("predict")
        return predict.classes if predict is not None else None


class GraphBuilder:
    """Nodes as the builders add them, in the order scikit-learn runs them.

    Slots: the input's numbers are 0..n_features-1, the nodes' outputs
    follow; a key slot of the input (an input column read as categories)
    is numbered -(t + 1) until :meth:`finish` places it after the input's
    numbers."""

    def __init__(self) -> None:
        self.n_features: Optional[int] = None
        self.nodes: List[Node] = []
        self.kinds: List[int] = []  # each node's output kind (Slot)
        self.n_slots = 0
        self.key_inputs: List[int] = []  # key slot t reads input column key_inputs[t]
        self.key_columns: Optional[np.ndarray] = None  # set by finish
        # a vectorizer's analysis of the documents, the model's input (Spec.text)
        self.text: Optional[Dict[str, Any]] = None
        # input column -> the analysis of the documents it holds, for a
        # vectorizer that reads one column (a ColumnTransformer's branch)
        self.text_columns: Dict[int, Dict[str, Any]] = {}
        # a DictVectorizer reading the model's input: its feature names (in
        # column order), separator and dtype, for the Python side to turn
        # dicts into rows
        self.dict_input: Optional[Dict[str, Any]] = None
        # a FeatureHasher reading the model's input: its parameters
        self.hash_input: Optional[Dict[str, Any]] = None

    def input(self, n_features: int) -> Cols:
        """The input X; its width is fixed by the first estimator that reads it."""
        if self.n_features is None:
            self.n_features = int(n_features)
            self.n_slots = self.n_features
        elif self.n_features != n_features:
            raise ValueError(f"the input has {self.n_features} columns, not {n_features}")
        return Cols(np.arange(self.n_features))

    def _bases(self) -> np.ndarray:
        return np.cumsum([self.n_features or 0] + [n.n_out for n in self.nodes])

    def kind_of(self, slots: np.ndarray) -> np.ndarray:
        """Each slot's kind (Slot.NUM or Slot.KEY)."""
        slots = np.asarray(slots, dtype=np.int64)
        out = np.full(slots.shape, int(Slot.NUM), dtype=np.int64)
        out[slots < 0] = int(Slot.KEY)
        nodes = slots >= (self.n_features or 0)
        if nodes.any():
            owner = np.searchsorted(self._bases(), slots[nodes], side="right") - 1
            out[nodes] = np.asarray(self.kinds, dtype=np.int64)[owner]
        return out

    def keys(self, inputs: Cols, name: str) -> Cols:
        """The same columns as keys: an input column's key slot, a key slot
        as it is, numbers a node wrote through a tokey node."""
        slots = inputs.slots.copy()
        kinds = self.kind_of(slots)
        for i, s in enumerate(slots.tolist()):
            if 0 <= s < (self.n_features or 0):
                if s not in self.key_inputs:
                    self.key_inputs.append(s)
                slots[i] = -(self.key_inputs.index(s) + 1)
        computed = np.flatnonzero((kinds == int(Slot.NUM)) & (slots >= (self.n_features or 0)))
        if computed.size:
            made = self.add(ToKey(), Cols(slots[computed]), computed.size, name)
            slots[computed] = made.slots
        return Cols(slots)

    def add(
        self,
        op: Op,
        inputs: Cols,
        n_out: int,
        name: str,
        accept: int = Accept.ANY,
        cast_f32: bool = False,
        unnamed: bool = False,
    ) -> Cols:
        if len(inputs) < 1:
            raise ValueError(f"{name}: a node reads at least one column")
        in_kind, out_kind = _core.OP_KINDS[op.op_name]
        if np.any(self.kind_of(inputs.slots) != in_kind):
            raise ValueError(
                f"{name}: {op.op_name} reads {'keys' if in_kind == Slot.KEY else 'numbers'} only"
            )
        node = Node(op, inputs.slots, int(n_out), name, accept, cast_f32, unnamed)
        self.nodes.append(node)
        self.kinds.append(int(out_kind))
        first = self.n_slots
        self.n_slots += node.n_out
        return Cols(np.arange(first, self.n_slots))

    def finish(self, outputs: Dict[str, Output]) -> Tuple[List[Node], Dict[str, Output]]:
        """The nodes some output needs, with slots numbered again (the
        input's key slots after its numbers; ``key_columns`` says which
        input column each reads)."""
        if self.n_features is None:
            raise ValueError("nothing reads the input")
        nf = self.n_features
        bases = self._bases()

        def owner(slots: np.ndarray) -> np.ndarray:
            slots = np.asarray(slots)
            return np.where(slots < nf, 0, np.searchsorted(bases, slots, side="right"))

        need = np.zeros(len(self.nodes) + 1, dtype=bool)  # index 0: the input
        need_keys = np.zeros(len(self.key_inputs), dtype=bool)
        for out in outputs.values():
            need[owner(out.slots)] = True
        for k in range(len(self.nodes), 0, -1):
            if need[k]:
                inputs = self.nodes[k - 1].inputs
                need[owner(inputs)] = True
                keys = inputs[inputs < 0]
                need_keys[-keys - 1] = True
        key_map = np.cumsum(need_keys) - 1
        n_keys = int(need_keys.sum())
        self.key_columns = np.asarray(self.key_inputs, dtype=np.int64)[need_keys]
        widths = np.array([nf] + [n.n_out for n in self.nodes], dtype=np.int64)
        kept = np.where(need, widths, 0)
        kept[0] = nf + n_keys
        new_base = np.zeros(len(self.nodes) + 1, dtype=np.int64)
        new_base[1:] = np.cumsum(kept)[:-1]
        old_base = np.concatenate([[0], bases[:-1]])

        def renumber(slots: np.ndarray) -> np.ndarray:
            slots = np.asarray(slots, dtype=np.int64)
            k = owner(slots)
            out = new_base[k] + (slots - old_base[k])
            is_key = slots < 0
            out[is_key] = nf + key_map[-slots[is_key] - 1]
            return np.ascontiguousarray(out, dtype=np.int64)

        nodes = [
            dataclasses.replace(n, inputs=renumber(n.inputs))
            for k, n in enumerate(self.nodes, start=1)
            if need[k]
        ]
        outs = {m: dataclasses.replace(o, slots=renumber(o.slots)) for m, o in outputs.items()}
        return nodes, outs


# ---- distances to stored points (csrc/distances.c) ---------------------------------

MixtureRule = _codes("MixtureRule", "mixture")
KernelRule = _codes("KernelRule", "kernel")


@dataclass
class QuadForm(Op):
    """mul * (x - loc) @ prec @ (x - loc) + add: Mahalanobis distances,
    Gaussian log-likelihoods."""

    op_name: ClassVar[str] = "quadform"
    loc: np.ndarray = field(default_factory=lambda: np.zeros(1))
    prec: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    mul: float = 1.0
    add: float = 0.0


@dataclass
class Mixture(Op):
    """Gaussian mixtures: weighted log probabilities, their logsumexp, the
    responsibilities."""

    op_name: ClassVar[str] = "mixture"
    rule: int = 0
    n_components: int = 0
    prec: np.ndarray = field(default_factory=lambda: np.zeros(0))
    shift: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    base: np.ndarray = field(default_factory=lambda: np.zeros(0))
    adds: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    log_2pi_d: float = 0.0
    f32_terms: int = 0
    log_2pi_d_f32: float = 0.0


@dataclass
class KernelDual(Op):
    """kernel(x, fit) @ dual (KernelRidge)."""

    op_name: ClassVar[str] = "kernel_dual"
    rule: int = 0
    fit: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    dual: Optional[np.ndarray] = None
    fit_norms: Optional[np.ndarray] = None
    gamma: float = 0.0
    coef0: float = 0.0
    degree: float = 0.0


# ---- preprocessing (csrc/preprocess.c) ---------------------------------------------

InterpRule = _codes("InterpRule", "interp")
RowNormRule = _codes("RowNormRule", "rownorm")
PowerRule = _codes("PowerRule", "power")


@dataclass
class Interp(Op):
    """np.interp tables per column: IsotonicRegression, QuantileTransformer."""

    op_name: ClassVar[str] = "interp"
    rule: int = 0
    x: np.ndarray = field(default_factory=lambda: np.zeros(1))
    y: np.ndarray = field(default_factory=lambda: np.zeros(1))
    x2: Optional[np.ndarray] = None
    y2: Optional[np.ndarray] = None
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(2, np.int64))
    lo: Optional[np.ndarray] = None
    hi: Optional[np.ndarray] = None


@dataclass
class RowNorm(Op):
    """Normalizer: each row divided by its l1, l2 or max norm."""

    op_name: ClassVar[str] = "rownorm"
    rule: int = 0


@dataclass
class Bins(Op):
    """KBinsDiscretizer: bin numbers or their one-hot columns."""

    op_name: ClassVar[str] = "bins"
    edges: np.ndarray = field(default_factory=lambda: np.zeros(0))
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    onehot: bool = False
    round_f32: bool = False
    out_type: int = 0


@dataclass
class CenterKernel(Op):
    """KernelCenterer."""

    op_name: ClassVar[str] = "center_kernel"
    fit_rows: np.ndarray = field(default_factory=lambda: np.zeros(1))
    fit_all: float = 0.0


@dataclass
class Power(Op):
    """PowerTransformer's Box-Cox or Yeo-Johnson transform."""

    op_name: ClassVar[str] = "power"
    rule: int = 0
    lambdas: np.ndarray = field(default_factory=lambda: np.zeros(1))


# ---- clustering (csrc/distances.c) ---------------------------------------------------

NearestRule = _codes("NearestRule", "nearest")


@dataclass
class Nearest(Op):
    """Scores or Euclidean distances to stored centres."""

    op_name: ClassVar[str] = "nearest"
    rule: int = 0
    centers: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    norms: np.ndarray = field(default_factory=lambda: np.zeros(1))


@dataclass
class Bisect(Op):
    """BisectingKMeans' tree of centres."""

    op_name: ClassVar[str] = "bisect"
    n_clusters: int = 0
    left: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    right: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    label: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    centers: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    norms: np.ndarray = field(default_factory=lambda: np.zeros(1))


SplineRule = _codes("SplineRule", "spline")


@dataclass
class Spline(Op):
    """SplineTransformer: each column's B-spline basis."""

    op_name: ClassVar[str] = "spline"
    rule: int = 0
    degree: int = 0
    knots: np.ndarray = field(default_factory=lambda: np.zeros((1, 2)))
    coef: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    include_bias: bool = True
