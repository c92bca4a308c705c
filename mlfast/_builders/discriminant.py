"""Discriminant analysis.

LinearDiscriminantAnalysis is a linear classifier (``X @ coef_.T +
intercept_``, every solver) whose probabilities are expit (two classes) or
softmax, whose log probabilities raise a probability of 0 to the smallest
normal float first, and whose ``transform`` (solvers svd and eigen) is
``(X - xbar_) @ scalings_`` or ``X @ scalings_``, cut to ``_max_components``.
QuadraticDiscriminantAnalysis has its own op (csrc/discriminant.c).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from mlfast._builders import Builders, Node, classifier, register
from mlfast._builders.ir import (
    Accept,
    Affine,
    Built,
    Cast,
    CastRule,
    Cols,
    DaPost,
    DaPostRule,
    LabelRule,
    Labels,
    Linear,
    Out,
    Post,
    PostRule,
    ProbaRule,
    Qda,
)
from mlfast._builders.linear import _classes, _coef, _raw


@register("sklearn.discriminant_analysis", "LinearDiscriminantAnalysis")
def build_lda(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    coef, intercept, _, f32 = _coef(node)
    classes = _classes(node)
    k = classes.size
    if k == 2 and coef.shape[0] == 1:
        label_rule, raw_1d, proba_rule = LabelRule.THRESHOLD, True, ProbaRule.EXPIT_OVR
    elif k > 2 and coef.shape[0] == k:
        label_rule, raw_1d, proba_rule = LabelRule.ARGMAX, False, ProbaRule.SOFTMAX
    else:
        raise node.fail(f"coef_ has {coef.shape[0]} rows for {k} classes")
    raw, n = _raw(node, b, X, coef, intercept, f32)
    built = classifier(
        node,
        b,
        raw,
        classes,
        n,
        label_rule=label_rule,
        proba_rule=proba_rule,
        raw_1d=raw_1d,
        log_proba=False,
    )
    proba = built.outputs["predict_proba"].cols
    built.outputs["predict_log_proba"] = Out(
        b.add(node, DaPost(rule=DaPostRule.LOG_TINY), proba, k)
    )
    solver = node.get("solver", "svd")
    if solver in ("svd", "eigen"):
        built.outputs["transform"] = Out(_lda_transform(node, b, X, n, solver))
    elif solver != "lsqr":
        raise node.fail(f"solver is {solver!r}")
    # a classifier that transforms: its kind stays classifier
    return built


def _lda_transform(node: Node, b: Builders, X: Optional[Cols], n: int, solver: str) -> Cols:
    scalings = node.array("scalings_", ndim=(2,), kinds="f")
    m = node.integer("_max_components")
    if scalings.shape[0] != n or not 1 <= m:
        raise node.fail(
            f"scalings_ has shape {scalings.shape} and _max_components is {m} for {n} features"
        )
    m = min(m, scalings.shape[1])
    coef = np.ascontiguousarray(scalings[:, :m].T, dtype=np.float64)
    X = b.input(node, X, n)
    # validate_data keeps float32; float32 X - xbar_ (float64) is float64
    X = b.add(node, Cast(rule=CastRule.FLOAT64), X, n, accept=Accept.FINITE)
    if solver == "svd":
        xbar = node.vector("xbar_", n)
        X = b.add(node, Affine(sub=xbar), X, n)
    return b.add(node, Linear(coef=coef, intercept=np.zeros(m), f32=False), X, m)


@register("sklearn.discriminant_analysis", "QuadraticDiscriminantAnalysis")
def build_qda(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    classes = node.get("classes_")
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size < 2:
        raise node.fail("classes_ must be a 1-D array of at least two labels")
    k = int(classes.size)
    means = node.array("means_", ndim=(2,), kinds="f")
    if means.shape[0] != k or means.shape[1] < 1:
        raise node.fail(f"means_ has shape {means.shape}, expected ({k}, n_features)")
    d = means.shape[1]
    rotations, scalings = node.get("rotations_"), node.get("scalings_")
    if (
        not isinstance(rotations, list)
        or not isinstance(scalings, list)
        or len(rotations) != k
        or len(scalings) != k
    ):
        raise node.fail(f"rotations_ and scalings_ must be lists of {k} arrays")
    priors = node.array("priors_", ndim=(1,), kinds="f")
    if priors.shape != (k,):
        raise node.fail(f"priors_ has shape {priors.shape}, expected ({k},)")
    weights, u = [], []
    with np.errstate(all="ignore"):
        for i in range(k):
            R = node.array(f"rotations_[{i}]", ndim=(2,), kinds="f", value=rotations[i])
            S = node.array(f"scalings_[{i}]", ndim=(1,), kinds="f", value=scalings[i])
            if R.shape[0] != d or R.shape[1] != S.shape[0] or S.shape[0] < 1:
                raise node.fail(
                    f"rotations_[{i}] has shape {R.shape} and scalings_[{i}] "
                    f"{S.shape} for {d} features"
                )
            # QuadraticDiscriminantAnalysis._decision_function's terms, as it computes them
            weights.append(R * (S ** (-0.5)))
            u.append(np.sum(np.log(S)))
        log_prior = np.log(priors)
    rank = max(w.shape[1] for w in weights)
    # a class of fewer samples than features has a smaller rank: its extra
    # columns are zeros, whose squares add nothing
    packed = np.zeros((k, d, rank))
    for i, w in enumerate(weights):
        packed[i, :, : w.shape[1]] = w
    n = node.n_features(d)
    X = b.input(node, X, n)
    scores = b.add(
        node,
        Qda(
            n_classes=k,
            rank=rank,
            means=np.ascontiguousarray(means, np.float64),
            weights=packed.ravel(),
            u=np.asarray(u, np.float64),
            log_prior=np.ascontiguousarray(log_prior, np.float64),
        ),
        X,
        k,
        accept=Accept.FINITE,
    )
    labels = b.add(node, Labels(rule=LabelRule.ARGMAX), scores, 1)
    outputs = {"predict": Out(labels, classes=np.ascontiguousarray(classes), squeeze=True)}
    if k == 2:
        outputs["decision_function"] = Out(
            b.add(node, DaPost(rule=DaPostRule.DIFF), scores, 1), squeeze=True
        )
    else:
        outputs["decision_function"] = Out(scores)
    if node.version >= (1, 6) or node.version == (0,):
        # DiscriminantAnalysisPredictionMixin: log probabilities first
        log_proba = b.add(node, DaPost(rule=DaPostRule.LOG_PROBA), scores, k)
        proba = b.add(node, Post(rule=PostRule.EXP), log_proba, k)
    else:
        proba = b.add(node, DaPost(rule=DaPostRule.PROBA_OLD), scores, k)
        log_proba = b.add(node, Post(rule=PostRule.LOG), proba, k)
    outputs["predict_proba"] = Out(proba)
    outputs["predict_log_proba"] = Out(log_proba)
    return Built(
        node.name,
        "classifier",
        outputs,
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
    )
