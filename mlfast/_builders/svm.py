"""Kernel SVMs (SVC, NuSVC, SVR, NuSVR, OneClassSVM): libsvm's decision
values (the svm op), then what scikit-learn makes of them (svm_post):
libsvm's vote for predict, _ovr_decision_function for
decision_function_shape='ovr', the sign flip of binary SVC, OneClassSVM's
offset, Platt scaling with pairwise coupling for predict_proba.

The fitted state read is what BaseLibSVM hands libsvm: ``support_vectors_``,
``_dual_coef_``, ``_intercept_`` (libsvm's signs, not the public
``dual_coef_``/``intercept_`` that binary SVC flips), ``_n_support``,
``_gamma`` (``gamma`` resolved at fit), ``_probA``/``_probB``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from mlfast._builders import Builders, Node, register, regressor
from mlfast._builders.ir import (
    Accept,
    Built,
    Cols,
    LabelRule,
    Labels,
    Out,
    OvoVotes,
    Post,
    PostRule,
    Svm,
    SvmPost,
    SvmPostRule,
)
from mlfast._core import Record
from mlfast.errors import UnsupportedModelError

#: libsvm's kernel codes
KERNELS = {"linear": 0, "poly": 1, "rbf": 2, "sigmoid": 3}
#: BaseLibSVM._impl -> whether it classifies
IMPLS = {"c_svc": True, "nu_svc": True, "epsilon_svr": False, "nu_svr": False, "one_class": False}
#: sparse matrices whose (data, indices, indptr) a sparse fit's support vectors are
_CSR = ("csr_matrix", "csr_array")


def _number(node: Node, key: str, default: Any = None) -> float:
    v = node.get(key, default)
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise node.fail(f"{key} is {v!r}, expected a number")
    return float(v)


def _dense(node: Node, key: str) -> np.ndarray:
    """A matrix attribute: a dense array, or the scipy CSR matrix of a sparse
    fit made dense (libsvm's sparse kernels add the same products in the same
    order: the zeros a dense row adds change no sum)."""
    sv = node.get(key)
    if isinstance(sv, np.ndarray):
        sv = node.array(key, ndim=(2,), kinds="f")
        return np.ascontiguousarray(sv, dtype=np.float64)
    if (
        not isinstance(sv, Record)
        or sv.path.rsplit(".", 1)[-1] not in _CSR
        or not sv.path.startswith("scipy.sparse")
    ):
        raise node.fail(f"{key} is a {type(sv).__name__}, expected an array or a scipy CSR matrix")
    state = sv.state
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
        state = state[0]
    if not isinstance(state, dict):
        raise node.fail(f"{key} (a CSR matrix) has no state")
    shape = state.get("_shape")
    if not (
        isinstance(shape, tuple)
        and len(shape) == 2
        and all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and 0 <= n < 2**31
            for n in shape
        )
    ):
        raise node.fail(f"{key} has shape {shape!r}")
    n_rows, n_cols = int(shape[0]), int(shape[1])
    data = node.array(f"{key}.data", ndim=(1,), kinds="f", value=state.get("data"))
    indices = node.array(f"{key}.indices", ndim=(1,), kinds="iu", value=state.get("indices"))
    indptr = node.array(f"{key}.indptr", ndim=(1,), kinds="iu", value=state.get("indptr"))
    if n_rows * max(n_cols, 1) > 2**28:
        raise UnsupportedModelError(
            f"{node.where} ({node.name}): {key} of {n_rows} x {n_cols} is too large to serve dense"
        )
    indptr = indptr.astype(np.int64)
    indices = indices.astype(np.int64)
    if (
        indptr.shape != (n_rows + 1,)
        or indptr[0] != 0
        or np.any(np.diff(indptr) < 0)
        or indptr[-1] != data.size
        or indices.size != data.size
        or (indices.size and (indices.min() < 0 or indices.max() >= n_cols))
    ):
        raise node.fail(f"{key} (a CSR matrix) has indices or indptr out of range")
    dense = np.zeros((n_rows, n_cols))
    rows = np.repeat(np.arange(n_rows), np.diff(indptr))
    dense[rows, indices] = data
    return dense


@register("sklearn.svm", "SVC", "NuSVC", "SVR", "NuSVR", "OneClassSVM")
def build_svm(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    # _impl is a class attribute: the class says which libsvm problem it is
    impl = {
        "SVC": "c_svc",
        "NuSVC": "nu_svc",
        "SVR": "epsilon_svr",
        "NuSVR": "nu_svr",
        "OneClassSVM": "one_class",
    }[node.name]
    kernel = node.get("kernel")
    if not isinstance(kernel, str):
        raise UnsupportedModelError(
            f"{node.where} ({node.name}) has a callable kernel ({type(kernel).__name__}): "
            "mlfast never calls a function from a file; use one of 'linear', 'poly', 'rbf', "
            "'sigmoid'"
        )
    if kernel not in KERNELS:
        if kernel == "precomputed":
            raise UnsupportedModelError(
                f"{node.where} ({node.name}) has kernel='precomputed': its input is a kernel "
                "matrix against the training rows, which the file does not hold"
            )
        raise node.fail(f"kernel is {kernel!r}")
    sv = _dense(node, "support_vectors_")
    dual = _dense(node, "_dual_coef_")
    intercept = node.array("_intercept_", ndim=(1,), kinds="f")
    gamma = _number(node, "_gamma")
    coef0 = _number(node, "coef0", 0.0)
    degree = node.integer("degree", 3)
    classify = IMPLS[impl]
    n_sv, d = sv.shape
    if classify:
        classes = node.get("classes_")
        if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size < 2:
            raise node.fail("classes_ must be a 1-D array of at least two labels")
        k = int(classes.size)
        key = "_n_support" if "_n_support" in node.state else "n_support_"
        n_support = node.array(key, ndim=(1,), kinds="iu")
        if n_support.shape != (k,) or int(n_support.sum()) != n_sv or np.any(n_support < 0):
            raise node.fail(
                f"{key} is {n_support.tolist()[:8]} for {n_sv} support vectors of {k} classes"
            )
        pairs = k * (k - 1) // 2
        if dual.shape != (k - 1, n_sv) or intercept.shape != (pairs,):
            raise node.fail(
                f"_dual_coef_ has shape {dual.shape} and _intercept_ "
                f"{intercept.shape}, expected ({k - 1}, {n_sv}) and ({pairs},)"
            )
    else:
        k, pairs, n_support = 0, 1, None
        if dual.shape != (1, n_sv) or intercept.shape != (1,):
            raise node.fail(
                f"_dual_coef_ has shape {dual.shape} and _intercept_ "
                f"{intercept.shape}, expected (1, {n_sv}) and (1,)"
            )
    n = node.n_features(d)
    X = b.input(node, X, n)
    dec = b.add(
        node,
        Svm(
            kernel=KERNELS[kernel],
            degree=degree,
            gamma=gamma,
            coef0=coef0,
            n_classes=k,
            support_vectors=sv,
            dual_coef=dual,
            intercept=np.ascontiguousarray(intercept, dtype=np.float64),
            n_support=None
            if n_support is None
            else np.ascontiguousarray(n_support, dtype=np.int64),
        ),
        X,
        pairs,
        accept=Accept.FINITE,
    )
    if impl in ("epsilon_svr", "nu_svr"):
        return regressor(node, dec, n, raw_1d=True)
    if impl == "one_class":
        offset = node.vector("offset_", 1)[0] if "offset_" in node.state else -float(intercept[0])
        score = b.add(node, SvmPost(rule=SvmPostRule.ADD, offset=offset), dec, 1)
        labels = b.add(node, Labels(rule=LabelRule.THRESHOLD, threshold=0.0), dec, 1)
        outputs = {
            "predict": Out(labels, classes=np.array([-1, 1], dtype=np.intp), squeeze=True),
            "decision_function": Out(dec, squeeze=True),
            "score_samples": Out(score, squeeze=True),
        }
        return Built(
            node.name,
            "outlier_detector",
            outputs,
            n,
            feature_names_in=node.feature_names(),
            first_name=node.name,
        )
    return _classifier(node, b, dec, np.ascontiguousarray(classes), n, pairs)


def _classifier(
    node: Node, b: Builders, dec: Cols, classes: np.ndarray, n: int, pairs: int
) -> Built:
    k = int(classes.size)
    shape = node.get("decision_function_shape", "ovr")
    if shape not in ("ovr", "ovo"):
        raise node.fail(f"decision_function_shape is {shape!r}")
    break_ties = bool(node.get("break_ties", False))
    outputs: Dict[str, Out] = {}
    if k == 2:
        outputs["decision_function"] = Out(
            b.add(node, SvmPost(rule=SvmPostRule.NEGATE), dec, 1), squeeze=True
        )
    elif shape == "ovr":
        votes_in = b.add(node, SvmPost(rule=SvmPostRule.OVR, n_classes=k), dec, 2 * pairs)
        outputs["decision_function"] = Out(b.add(node, OvoVotes(n_classes=k), votes_in, k))
    else:
        outputs["decision_function"] = Out(dec)
    if break_ties and shape == "ovr" and k > 2:
        labels = b.add(node, Labels(rule=LabelRule.ARGMAX), outputs["decision_function"].cols, 1)
    else:
        # break_ties with 'ovo' makes scikit-learn's predict raise
        if break_ties and shape == "ovo":
            raise UnsupportedModelError(
                f"{node.where} ({node.name}) has break_ties=True with "
                "decision_function_shape='ovo', whose predict scikit-learn refuses"
            )
        votes = b.add(node, SvmPost(rule=SvmPostRule.VOTE, n_classes=k), dec, k)
        labels = b.add(node, Labels(rule=LabelRule.ARGMAX), votes, 1)
    outputs["predict"] = Out(labels, classes=classes, squeeze=True)
    probability = node.get("probability", False)
    prob_key = "_probA" if "_probA" in node.state else "probA_"
    if probability is True and prob_key in node.state:
        prob_a = node.array(prob_key, ndim=(1,), kinds="f")
        prob_b = node.array(prob_key.replace("A", "B"), ndim=(1,), kinds="f")
        if prob_a.size and prob_b.size:
            if prob_a.shape != (pairs,) or prob_b.shape != (pairs,):
                raise node.fail(
                    f"probA and probB have shapes {prob_a.shape} and "
                    f"{prob_b.shape}, expected ({pairs},)"
                )
            if k > 64:
                raise UnsupportedModelError(
                    f"{node.where} ({node.name}): predict_proba of {k} classes (mlfast "
                    "couples at most 64)"
                )
            proba = b.add(
                node,
                SvmPost(
                    rule=SvmPostRule.PROBA,
                    n_classes=k,
                    prob_a=np.ascontiguousarray(prob_a, np.float64),
                    prob_b=np.ascontiguousarray(prob_b, np.float64),
                ),
                dec,
                k,
            )
            outputs["predict_proba"] = Out(proba)
            outputs["predict_log_proba"] = Out(b.add(node, Post(rule=PostRule.LOG), proba, k))
    return Built(
        node.name,
        "classifier",
        outputs,
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
    )
