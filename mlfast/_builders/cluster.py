"""Clustering estimators that predict from their fitted centres: KMeans,
MiniBatchKMeans, BisectingKMeans, Birch, MeanShift, AffinityPropagation.

predict is the first nearest centre (``nearest`` op, SCORES, then the first
maximum), mapped to the labels scikit-learn returns (KMeans' int32, the
argmin's int64, Birch's subcluster labels); transform is
``euclidean_distances`` to the centres.  BisectingKMeans walks its tree of
centres (``bisect`` op).
"""

from __future__ import annotations

from typing import Any, List, Optional

import numpy as np

from mlfast._builders import Builders, Node, register
from mlfast._builders.ir import (
    Accept,
    Bisect,
    Built,
    Cols,
    LabelRule,
    Labels,
    Nearest,
    NearestRule,
    Out,
    Strings,
)
from mlfast._core import Record
from mlfast.errors import UnsupportedModelError

MAX_CENTERS = 1 << 20
MAX_TREE_NODES = 1 << 20


def _centers(node: Node, key: str) -> np.ndarray:
    c = node.array(key, ndim=(2,), kinds="f")
    if not 1 <= c.shape[0] <= MAX_CENTERS or c.shape[1] < 1:
        raise node.fail(f"{key} has shape {c.shape}")
    return np.ascontiguousarray(c, dtype=np.float64)


def _norms(centers: np.ndarray) -> np.ndarray:
    """row_norms(centers, squared=True)."""
    return np.einsum("ij,ij->i", centers, centers)


def _built(
    node: Node,
    b: Builders,
    X: Cols,
    n: int,
    centers: np.ndarray,
    norms: np.ndarray,
    classes: np.ndarray,
    transform: bool,
) -> Built:
    k = centers.shape[0]
    scores = b.add(
        node,
        Nearest(rule=int(NearestRule.SCORES), centers=centers, norms=norms),
        X,
        k,
        accept=Accept.FINITE,
    )
    labels = b.add(node, Labels(rule=LabelRule.ARGMAX), scores, 1)
    outputs = {"predict": Out(labels, classes=classes, squeeze=True)}
    if transform:
        outputs["transform"] = Out(
            b.add(
                node,
                Nearest(rule=int(NearestRule.DISTANCES), centers=centers, norms=_norms(centers)),
                X,
                k,
                accept=Accept.FINITE,
            )
        )
    return Built(
        node.name,
        "clusterer",
        outputs,
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=Strings.CONVERT,
    )


@register("sklearn.cluster", "KMeans", "MiniBatchKMeans")
def build_kmeans(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    centers = _centers(node, "cluster_centers_")
    k, d = centers.shape
    n = node.n_features(d)
    X = b.input(node, X, n)
    # _labels_inertia's labels are int32
    return _built(node, b, X, n, centers, _norms(centers), np.arange(k, dtype=np.int32), True)


@register("sklearn.cluster", "MeanShift")
def build_mean_shift(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    centers = _centers(node, "cluster_centers_")
    k, d = centers.shape
    n = node.n_features(d)
    X = b.input(node, X, n)
    return _built(node, b, X, n, centers, _norms(centers), np.arange(k, dtype=np.int64), False)


@register("sklearn.cluster", "AffinityPropagation")
def build_affinity_propagation(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    if node.get("affinity", "euclidean") == "precomputed" or "cluster_centers_" not in node.state:
        raise UnsupportedModelError(
            f"{node.where} (AffinityPropagation): affinity='precomputed' keeps no centres; "
            "scikit-learn cannot predict with it either"
        )
    centers = node.array("cluster_centers_", ndim=(2,), kinds="fiub")
    if centers.shape[0] == 0:
        raise UnsupportedModelError(
            f"{node.where} (AffinityPropagation): the fit did not converge and found no "
            "cluster; scikit-learn labels every row -1 with a warning"
        )
    centers = (
        _centers(node, "cluster_centers_")
        if centers.dtype.kind == "f"
        else np.ascontiguousarray(centers, dtype=np.float64)
    )
    k, d = centers.shape
    n = node.n_features(d)
    X = b.input(node, X, n)
    return _built(node, b, X, n, centers, _norms(centers), np.arange(k, dtype=np.int64), False)


@register("sklearn.cluster", "Birch")
def build_birch(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    centers = _centers(node, "subcluster_centers_")
    k, d = centers.shape
    norms = node.vector("_subcluster_norms", k)
    labels = node.array("subcluster_labels_", ndim=(1,), kinds="iuf")
    if labels.shape != (k,):
        raise node.fail(f"subcluster_labels_ has shape {labels.shape}, expected ({k},)")
    n = node.n_features(d)
    X = b.input(node, X, n)
    return _built(node, b, X, n, centers, norms, np.ascontiguousarray(labels), True)


def _tree(node: Node, root: Any, x_mean: Optional[np.ndarray], d: int):
    """The _BisectingTree in preorder: left, right, label, centres."""
    left: List[int] = []
    right: List[int] = []
    label: List[int] = []
    centers: List[np.ndarray] = []
    stack = [(root, -1, 0)]  # (tree node, parent index, 0 left / 1 right)
    seen = set()
    while stack:
        tree, parent, side = stack.pop()
        if len(left) >= MAX_TREE_NODES:
            raise node.fail("_bisecting_tree is too large")
        if id(tree) in seen:
            raise node.fail("_bisecting_tree is not a tree: a node is reached twice")
        seen.add(id(tree))
        if not isinstance(tree, Record) or not isinstance(tree.state, dict):
            raise node.fail("_bisecting_tree holds a node that is not a _BisectingTree")
        st = tree.state
        i = len(left)
        if parent >= 0:
            (left if side == 0 else right)[parent] = i
        c = node.array("_bisecting_tree.center", ndim=(1,), kinds="f", value=st.get("center"))
        if c.shape != (d,):
            raise node.fail(f"_bisecting_tree.center has shape {c.shape}, expected ({d},)")
        c = c.astype(np.float64)
        centers.append(c + x_mean if x_mean is not None else c)
        left.append(-1)
        right.append(-1)
        lt, rt = st.get("left"), st.get("right")
        if (lt is None) != (rt is None):
            raise node.fail("_bisecting_tree has a node with one child")
        if lt is None:
            lab = st.get("label")
            if isinstance(lab, bool) or not isinstance(lab, (int, np.integer)):
                raise node.fail(f"_bisecting_tree has a leaf labelled {lab!r}")
            label.append(int(lab))
        else:
            label.append(-1)
            stack.append((rt, i, 1))
            stack.append((lt, i, 0))
    return (
        np.array(left, np.int64),
        np.array(right, np.int64),
        np.array(label, np.int64),
        np.ascontiguousarray(np.stack(centers)),
    )


@register("sklearn.cluster", "BisectingKMeans")
def build_bisecting_kmeans(node: Node, b: Builders, X: Optional[Cols]) -> Built:
    centers = _centers(node, "cluster_centers_")
    k, d = centers.shape
    x_mean = node.state.get("_X_mean")
    if x_mean is not None:
        x_mean = node.vector("_X_mean", d)
    left, right, label, tree_centers = _tree(node, node.get("_bisecting_tree"), x_mean, d)
    if np.any((label < -1) | (label >= k)):
        raise node.fail("_bisecting_tree has a label outside the clusters")
    n = node.n_features(d)
    X = b.input(node, X, n)
    # the children's centres plus _X_mean, as _predict_recursive stacks them
    op = Bisect(
        n_clusters=k,
        left=left,
        right=right,
        label=label,
        centers=tree_centers,
        norms=_norms(tree_centers),
    )
    onehot = b.add(node, op, X, k, accept=Accept.FINITE)
    labels = b.add(node, Labels(rule=LabelRule.ARGMAX), onehot, 1)
    distances = b.add(
        node,
        Nearest(rule=int(NearestRule.DISTANCES), centers=centers, norms=_norms(centers)),
        X,
        k,
        accept=Accept.FINITE,
    )
    outputs = {
        "predict": Out(labels, classes=np.arange(k, dtype=np.int32), squeeze=True),
        "transform": Out(distances),
    }
    return Built(
        node.name,
        "clusterer",
        outputs,
        n,
        feature_names_in=node.feature_names(),
        first_name=node.name,
        strings=Strings.CONVERT,
    )
