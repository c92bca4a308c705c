"""Naive Bayes: each class's joint log likelihood (jll), then what _BaseNB
makes of it: predict (argmax), predict_log_proba (jll minus its
logsumexp), predict_proba (exp of that), predict_joint_log_proba (jll).

MultinomialNB, ComplementNB and BernoulliNB without binarize are products
``X @ W.T + b`` (the linear op); GaussianNB, CategoricalNB and a binarizing
BernoulliNB have ops of their own (csrc/bayes.c).  Whatever depends on the
fitted state only (log priors, the Gaussian normalisation, BernoulliNB's
``log(1 - exp(feature_log_prob_))``) is computed here with numpy, in
scikit-learn's expressions, so it is scikit-learn's value bit for bit.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from mlfast._builders import Builders, Node, classifier, register
from mlfast._builders.ir import (
    Accept,
    BernoulliNB,
    Built,
    CategoricalNB,
    Cols,
    GaussianNB,
    LabelRule,
    Linear,
    NbLogProba,
    Out,
    Post,
    PostRule,
)


def _classes(node: Node) -> np.ndarray:
    classes = node.get("classes_")
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size < 1:
        raise node.fail("classes_ must be a 1-D array of at least one label")
    if classes.dtype.kind not in "biufUSO":
        raise node.fail(f"classes_ has dtype {classes.dtype}")
    return np.ascontiguousarray(classes)


def _matrix(node: Node, key: str, k: int, d: Optional[int] = None) -> np.ndarray:
    m = node.array(key, ndim=(2,), kinds="f")
    if m.shape[0] != k or m.shape[1] < 1 or (d is not None and m.shape[1] != d):
        want = f"({k}, {d if d is not None else 'n_features'})"
        raise node.fail(f"{key} has shape {m.shape}, expected {want}")
    return m


def _log_prior(node: Node, k: int) -> np.ndarray:
    prior = node.array("class_log_prior_", ndim=(1,), kinds="f")
    if prior.shape != (k,):
        raise node.fail(f"class_log_prior_ has shape {prior.shape}, expected ({k},)")
    return prior


def _nb(node: Node, b: Builders, jll: Cols, classes: np.ndarray, n: int) -> Built:
    """predict, predict_log_proba, predict_proba and predict_joint_log_proba
    over the joint log likelihood."""
    k = int(classes.size)
    log_proba = b.add(node, NbLogProba(), jll, k)
    proba = b.add(node, Post(rule=PostRule.EXP), log_proba, k)
    built = classifier(
        node,
        b,
        jll,
        classes,
        n,
        label_rule=LabelRule.ARGMAX,
        proba=proba,
        decision=False,
        log_proba=False,
    )
    built.outputs["predict_log_proba"] = Out(log_proba)
    if node.version >= (1, 2) or node.version == (0,):
        # _BaseNB.predict_joint_log_proba is new in 1.2
        built.outputs["predict_joint_log_proba"] = Out(jll)
    return built


@register("sklearn.naive_bayes", "GaussianNB")
def build_gaussian_nb(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    classes = _classes(node)
    k = int(classes.size)
    theta = _matrix(node, "theta_", k)
    d = theta.shape[1]
    # var_ since 1.0; sigma_ (the same variances) before
    var = _matrix(node, "var_" if "var_" in node.state else "sigma_", k, d)
    prior = node.array("class_prior_", ndim=(1,), kinds="f")
    if prior.shape != (k,):
        raise node.fail(f"class_prior_ has shape {prior.shape}, expected ({k},)")
    f32 = theta.dtype == np.float32 and var.dtype == np.float32 and prior.dtype == np.float32
    if theta.dtype != var.dtype or (f32 is False and np.float32 in (theta.dtype, var.dtype)):
        raise node.fail(
            f"theta_ ({theta.dtype}), var_ ({var.dtype}) and class_prior_ "
            f"({prior.dtype}) are of different float types"
        )
    with np.errstate(all="ignore"):
        # GaussianNB._joint_log_likelihood's per-class constants, as it computes them
        log_prior = np.array([np.log(prior[i]) for i in range(k)], dtype=np.float64)
        norm = np.array(
            [-0.5 * np.sum(np.log(2.0 * np.pi * var[i, :])) for i in range(k)], dtype=np.float64
        )
    n = node.n_features(d)
    X = b.input(node, X, n)
    jll = b.add(
        node,
        GaussianNB(theta=theta, var=var, log_prior=log_prior, norm=norm, f32=f32),
        X,
        k,
        accept=Accept.FINITE,
    )
    return _nb(node, b, jll, classes, n)


@register("sklearn.naive_bayes", "MultinomialNB", "ComplementNB", "BernoulliNB")
def build_discrete_nb(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    classes = _classes(node)
    k = int(classes.size)
    flp = _matrix(node, "feature_log_prob_", k)
    prior = _log_prior(node, k)
    d = flp.shape[1]
    n = node.n_features(d)
    X = b.input(node, X, n)
    with np.errstate(all="ignore"):
        if node.name == "MultinomialNB":
            coef, intercept = flp, prior
        elif node.name == "ComplementNB":
            # the prior is added only when there is a single class
            coef, intercept = flp, (prior if k == 1 else np.zeros(k))
        else:
            neg_prob = np.log(1 - np.exp(flp))
            coef = flp - neg_prob
            intercept = prior + neg_prob.sum(axis=1)
    coef = np.ascontiguousarray(coef, dtype=np.float64)
    intercept = np.ascontiguousarray(intercept, dtype=np.float64)
    threshold = node.get("binarize", None) if node.name == "BernoulliNB" else None
    if threshold is not None:
        if isinstance(threshold, (bool, np.bool_)) or not isinstance(
            threshold, (int, float, np.integer, np.floating)
        ):
            raise node.fail(f"binarize is {threshold!r}, expected a number or None")
        jll = b.add(
            node,
            BernoulliNB(coef=coef, intercept=intercept, threshold=float(threshold)),
            X,
            k,
            accept=Accept.FINITE,
        )
    else:
        jll = b.add(
            node, Linear(coef=coef, intercept=intercept, f32=False), X, k, accept=Accept.FINITE
        )
    return _nb(node, b, jll, classes, n)


@register("sklearn.naive_bayes", "CategoricalNB")
def build_categorical_nb(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    classes = _classes(node)
    k = int(classes.size)
    prior = _log_prior(node, k)
    flp = node.get("feature_log_prob_")
    if not isinstance(flp, list) or not flp:
        raise node.fail("feature_log_prob_ must be a list of one array per feature")
    tables, counts = [], []
    for i, t in enumerate(flp):
        t = node.array(f"feature_log_prob_[{i}]", ndim=(2,), kinds="f", value=t)
        if t.shape[0] != k or t.shape[1] < 1:
            raise node.fail(
                f"feature_log_prob_[{i}] has shape {t.shape}, expected ({k}, n_categories)"
            )
        # the table as the kernel reads it: a category's classes side by side
        tables.append(np.ascontiguousarray(t.T, dtype=np.float64).ravel())
        counts.append(t.shape[1])
    n = node.n_features(len(flp))
    X = b.input(node, X, n)
    n_categories = np.asarray(counts, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_categories * k)]).astype(np.int64)
    jll = b.add(
        node,
        CategoricalNB(
            n_classes=k,
            tables=np.concatenate(tables),
            offsets=offsets,
            n_categories=n_categories,
            log_prior=np.ascontiguousarray(prior, np.float64),
        ),
        X,
        k,
        accept=Accept.FINITE,
    )
    return _nb(node, b, jll, classes, n)
