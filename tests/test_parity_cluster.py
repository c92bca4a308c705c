"""Differential tests: KMeans, MiniBatchKMeans, BisectingKMeans, Birch,
MeanShift, AffinityPropagation (predict, transform where they have it).

scikit-learn is the oracle.  KMeans fitted on float64 refuses float32 rows
in scikit-learn 1.9 (a dtype mismatch in its Cython helper) where mlfast
answers: float32 rows are checked on models fitted on float32.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.cluster import (
    AffinityPropagation,
    Birch,
    BisectingKMeans,
    KMeans,
    MeanShift,
    MiniBatchKMeans,
)
from sklearn.datasets import make_blobs
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from support.families import check, check_refuses_like, fit
from support.variants import load_variant

import mlfast
from mlfast.errors import ModelFormatError, UnsupportedModelError


def data(seed=0):
    X, _ = make_blobs(300, 4, centers=5, random_state=seed)
    X_new = np.vstack([make_blobs(60, 4, centers=5, random_state=seed + 1)[0], np.zeros((1, 4))])
    return X, X_new


CLUSTERERS = [
    ("KMeans", lambda: KMeans(5, n_init=3, random_state=0)),
    ("KMeans(elkan)", lambda: KMeans(4, algorithm="elkan", n_init=2, random_state=0)),
    ("MiniBatchKMeans", lambda: MiniBatchKMeans(5, n_init=3, random_state=0)),
    ("BisectingKMeans", lambda: BisectingKMeans(5, random_state=0)),
    (
        "BisectingKMeans(largest)",
        lambda: BisectingKMeans(7, bisecting_strategy="largest_cluster", random_state=0),
    ),
    ("Birch", lambda: Birch(n_clusters=5)),
    ("Birch(no global step)", lambda: Birch(n_clusters=None, threshold=1.0)),
    ("MeanShift", lambda: MeanShift()),
    ("AffinityPropagation", lambda: AffinityPropagation(random_state=0)),
]


@pytest.mark.parametrize("name,make", CLUSTERERS, ids=[c[0] for c in CLUSTERERS])
@pytest.mark.parametrize("variant", ["joblib", "pickle-p2", "compile"])
def test_clusterer(name, make, variant, tmp_path):
    X, X_new = data()
    est = fit(make(), X)
    model = load_variant(est, variant, tmp_path)
    assert model.kind == "clusterer"
    dtypes = (np.float64, np.int64) if "KMeans" in name else (np.float64, np.float32, np.int64)
    check(model, est, X_new, f"{name} | {variant}", dtypes=dtypes)


@pytest.mark.parametrize(
    "make",
    [lambda: KMeans(4, n_init=2, random_state=0), lambda: BisectingKMeans(4, random_state=0)],
    ids=["KMeans", "BisectingKMeans"],
)
def test_kmeans_fitted_on_float32(make, tmp_path):
    X, X_new = data(2)
    est = fit(make(), X.astype(np.float32))
    model = load_variant(est, "joblib", tmp_path)
    check(model, est, X_new, "fitted on float32", dtypes=(np.float32,), methods=("predict",))


def test_in_a_pipeline(tmp_path):
    X, X_new = data(3)
    est = fit(make_pipeline(StandardScaler(), KMeans(5, n_init=2, random_state=0)), X)
    check(
        load_variant(est, "joblib", tmp_path),
        est,
        X_new,
        "Pipeline(StandardScaler, KMeans)",
        dtypes=(np.float64,),
    )


def test_refusals(tmp_path):
    X, X_new = data(4)
    est = fit(KMeans(3, n_init=1, random_state=0), X)
    model = load_variant(est, "joblib", tmp_path)
    bad = X_new.copy()
    bad[0, 0] = np.nan
    check_refuses_like(model, est, bad, "predict", "KMeans")
    check_refuses_like(model, est, X_new[:, :3], "predict", "KMeans")
    est = fit(
        AffinityPropagation(affinity="precomputed", random_state=0),
        -((X[:, None] - X[None]) ** 2).sum(-1),
    )
    with pytest.raises(UnsupportedModelError, match="precomputed"):
        mlfast.loads(pickle.dumps(est))


def test_hostile_states():
    X, _ = data(5)
    est = fit(Birch(n_clusters=3), X)
    est.subcluster_labels_ = est.subcluster_labels_[:-1]
    with pytest.raises(ModelFormatError, match="subcluster_labels_"):
        mlfast.loads(pickle.dumps(est))
    est = fit(KMeans(3, n_init=1, random_state=0), X)
    est.cluster_centers_ = est.cluster_centers_[:, :2]
    with pytest.raises(ModelFormatError):
        mlfast.loads(pickle.dumps(est))
    # a bisecting tree whose leaf names a cluster that does not exist
    est = fit(BisectingKMeans(3, random_state=0), X)
    leaf = est._bisecting_tree
    while leaf.left is not None:
        leaf = leaf.left
    leaf.label = 99
    with pytest.raises(ModelFormatError, match="label"):
        mlfast.loads(pickle.dumps(est))
    # a node with one child
    est = fit(BisectingKMeans(3, random_state=0), X)
    est._bisecting_tree.right = None
    with pytest.raises(ModelFormatError, match="one child"):
        mlfast.loads(pickle.dumps(est))


def _cannot_predict_cases():
    from sklearn.cluster import (
        DBSCAN,
        OPTICS,
        AgglomerativeClustering,
        SpectralClustering,
    )
    from sklearn.manifold import MDS, TSNE, SpectralEmbedding

    return [
        ("DBSCAN", DBSCAN),
        ("OPTICS", lambda: OPTICS(min_samples=5)),
        ("AgglomerativeClustering", AgglomerativeClustering),
        ("SpectralClustering", lambda: SpectralClustering(3, random_state=0)),
        ("TSNE", lambda: TSNE(perplexity=5, max_iter=250, random_state=0)),
        ("MDS", lambda: MDS(max_iter=20, n_init=1, random_state=0)),
        ("SpectralEmbedding", lambda: SpectralEmbedding(random_state=0)),
    ]


@pytest.mark.parametrize(
    "name,make", _cannot_predict_cases(), ids=[c[0] for c in _cannot_predict_cases()]
)
def test_cannot_predict_is_refused_with_the_reason(name, make):
    from mlfast._builders.unpredictable import CANNOT_PREDICT

    X, _ = data(6)
    est = fit(make(), X[:60])
    assert not hasattr(est, "predict") and not hasattr(est, "transform")
    with pytest.raises(UnsupportedModelError, match="cannot predict from its fitted state") as info:
        mlfast.loads(pickle.dumps(fit(make_pipeline(StandardScaler(), make()), X[:60])))
    assert CANNOT_PREDICT[name] in str(info.value)
    assert "model.steps[1]" in str(info.value)
    with pytest.raises(UnsupportedModelError, match=name):
        mlfast.loads(pickle.dumps(est))
