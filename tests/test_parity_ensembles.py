"""Differential tests: VotingClassifier/Regressor, StackingClassifier/Regressor,
BaggingClassifier/Regressor, AdaBoostClassifier/Regressor, DummyClassifier/
Regressor and RandomTreesEmbedding, with members from every served family
(linear models, trees, forests, boosting, pipelines, and each other).

scikit-learn is the oracle: every method it has gives the same answer --
labels equal with the same dtype, floats within rtol=atol=1e-12 with the same
shape and dtype -- and a method it lacks is an AttributeError.  Where the
members are computed exactly (trees), the ensemble's own arithmetic must be
bit for bit scikit-learn's: ``EXACT`` cases check ``==``, so a sum taken in
another order (numpy's pairwise sum, a chunk of bagged members, a weighted
count) fails them even when it would pass 1e-12.

A failure names the case, the file variant, the input and the method, e.g.
``predict_proba: case=bagging-fewer-classes | variant=joblib | input=f32``.
"""

from __future__ import annotations

import pickle
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import pandas as pd
import pytest
from sklearn import dummy, ensemble, linear_model, svm, tree
from sklearn.datasets import make_classification, make_regression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from support.parity import (
    assert_same_output,
    check_attributes,
    check_methods,
    fit,
    quietly,
)
from support.representatives import Representative
from support.variants import load_variant

import mlfast

pytestmark = pytest.mark.usefixtures("one_openmp_thread")


# -- data -------------------------------------------------------------------------------

N_FEATURES = 6


def classification(n_classes: int, seed: int = 0, n: int = 240):
    X, y = make_classification(
        n_samples=n,
        n_features=N_FEATURES,
        n_informative=4,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=seed,
    )
    return X, y


def regression(seed: int = 0, n: int = 200):
    X, y = make_regression(
        n_samples=n, n_features=N_FEATURES, n_informative=4, noise=0.5, random_state=seed
    )
    return X, y


def sample_rows(seed: int = 7, n: int = 40) -> np.ndarray:
    X = np.random.default_rng(seed).normal(size=(n, N_FEATURES)) * 1.7
    X[0] = 0.0
    X[1] = 1.0 / 3.0
    return np.vstack([X, 40.0 * X[2:4], -40.0 * X[4:6]])


LABELS = np.array(["ant", "bee", "cat", "doe"])


def _trees(n: int, regressor: bool = False) -> List[Tuple[str, Any]]:
    cls = tree.DecisionTreeRegressor if regressor else tree.DecisionTreeClassifier
    return [(f"t{i}", cls(max_depth=2 + i % 4, random_state=i)) for i in range(n)]


def _mixed_classifiers() -> List[Tuple[str, Any]]:
    return [
        ("lr", make_pipeline(StandardScaler(), linear_model.LogisticRegression())),
        ("rf", ensemble.RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0)),
        ("hgb", ensemble.HistGradientBoostingClassifier(max_iter=8, random_state=0)),
        ("gb", ensemble.GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0)),
    ]


# Each case: (name, factory, data, exact).  data: "c2"/"c3"/"c4s" (4 string
# labels)/"r"/"X" (unsupervised).  exact: members computed bit for bit, so the
# ensemble's answers must be too (see check_methods).
CASES: List[Tuple[str, Callable[[], Any], str, Any]] = [
    # voting
    ("voting-hard", lambda: ensemble.VotingClassifier(_mixed_classifiers()), "c3", False),
    (
        "voting-hard-weights-trees",
        lambda: ensemble.VotingClassifier(
            _trees(9), weights=[0.3, 1.7, 0.2, 2.5, 1.0, 0.9, 1.1, 0.4, 0.6]
        ),
        "c4s",
        True,
    ),
    (
        "voting-hard-negative-weights",
        lambda: ensemble.VotingClassifier(_trees(5), weights=[-1.0, -0.5, -2.0, -0.25, -1.5]),
        "c3",
        True,
    ),
    (
        "voting-soft",
        lambda: ensemble.VotingClassifier(_mixed_classifiers(), voting="soft"),
        "c3",
        False,
    ),
    (
        "voting-soft-binary",
        lambda: ensemble.VotingClassifier(
            _mixed_classifiers(), voting="soft", weights=[2, 1, 1, 3]
        ),
        "c2",
        False,
    ),
    (
        "voting-soft-weights-trees",
        lambda: ensemble.VotingClassifier(
            _trees(9), voting="soft", weights=np.linspace(0.1, 2.3, 9).tolist()
        ),
        "c4s",
        True,
    ),
    (
        "voting-soft-unflattened",
        lambda: ensemble.VotingClassifier(_trees(3), voting="soft", flatten_transform=False),
        "c3",
        True,
    ),
    (
        "voting-drop",
        lambda: ensemble.VotingClassifier(
            [
                ("a", tree.DecisionTreeClassifier(max_depth=3)),
                ("b", "drop"),
                ("c", ensemble.ExtraTreesClassifier(n_estimators=5, random_state=0)),
            ],
            voting="soft",
            weights=[1, 5, 2],
        ),
        "c3",
        True,
    ),
    (
        "voting-regressor",
        lambda: ensemble.VotingRegressor(
            [
                ("lin", linear_model.Ridge()),
                ("rf", ensemble.RandomForestRegressor(n_estimators=6, max_depth=4, random_state=0)),
                ("hgb", ensemble.HistGradientBoostingRegressor(max_iter=8)),
            ]
        ),
        "r",
        False,
    ),
    (
        "voting-regressor-11-trees-weights",
        lambda: ensemble.VotingRegressor(
            _trees(11, regressor=True), weights=np.linspace(0.5, 3.0, 11).tolist()
        ),
        "r",
        True,
    ),
    (
        "voting-regressor-11-trees",
        lambda: ensemble.VotingRegressor(_trees(11, regressor=True)),
        "r",
        True,
    ),
    # stacking
    *[
        (
            f"stacking-{method}-{data}",
            (
                lambda method=method: ensemble.StackingClassifier(
                    [
                        ("dt", tree.DecisionTreeClassifier(max_depth=3, random_state=0))
                        if method != "decision_function"
                        else ("svc", svm.LinearSVC()),
                        ("lr", linear_model.LogisticRegression()),
                        ("gb", ensemble.GradientBoostingClassifier(n_estimators=5, random_state=0)),
                    ],
                    stack_method=method,
                )
            ),
            data,
            False,
        )
        for method in ("auto", "predict_proba", "decision_function", "predict")
        for data in ("c2", "c3")
    ],
    (
        "stacking-predict-labels-passthrough",
        lambda: ensemble.StackingClassifier(
            _trees(3),
            final_estimator=tree.DecisionTreeClassifier(max_depth=4, random_state=0),
            stack_method="predict",
            passthrough=True,
        ),
        "c4s",
        True,
    ),
    (
        "stacking-passthrough-drop",
        lambda: ensemble.StackingClassifier(
            [
                ("a", "drop"),
                ("rf", ensemble.RandomForestClassifier(n_estimators=5, random_state=0)),
                ("svc", svm.LinearSVC()),
            ],
            final_estimator=ensemble.RandomForestClassifier(n_estimators=5, random_state=1),
            passthrough=True,
        ),
        "c3",
        False,
    ),
    (
        "stacking-regressor",
        lambda: ensemble.StackingRegressor(
            [("lin", linear_model.Ridge()), ("dt", tree.DecisionTreeRegressor(max_depth=4))],
            passthrough=True,
        ),
        "r",
        False,
    ),
    (
        "stacking-regressor-trees",
        lambda: ensemble.StackingRegressor(
            _trees(3, regressor=True), final_estimator=tree.DecisionTreeRegressor(max_depth=5)
        ),
        "r",
        True,
    ),
    # bagging
    (
        "bagging-trees",
        lambda: ensemble.BaggingClassifier(
            n_estimators=12, max_features=0.7, bootstrap_features=True, random_state=0
        ),
        "c4s",
        True,
    ),
    (
        "bagging-fewer-classes-n_jobs",
        lambda: ensemble.BaggingClassifier(
            tree.DecisionTreeClassifier(), n_estimators=11, max_samples=6, n_jobs=3, random_state=0
        ),
        "c4s",
        True,
    ),
    (
        "bagging-logistic",
        lambda: ensemble.BaggingClassifier(
            linear_model.LogisticRegression(), n_estimators=7, max_features=4, random_state=0
        ),
        "c3",
        False,
    ),
    (
        "bagging-votes-by-predict",
        lambda: ensemble.BaggingClassifier(
            linear_model.RidgeClassifier(), n_estimators=7, max_samples=12, random_state=0
        ),
        "c3",
        False,
    ),
    (
        "bagging-regressor",
        lambda: ensemble.BaggingRegressor(n_estimators=9, max_features=3, n_jobs=2, random_state=0),
        "r",
        True,
    ),
    (
        "bagging-regressor-linear",
        lambda: ensemble.BaggingRegressor(
            make_pipeline(MinMaxScaler(), linear_model.LinearRegression()),
            n_estimators=5,
            random_state=0,
        ),
        "r",
        False,
    ),
    # AdaBoost
    (
        "adaboost",
        lambda: ensemble.AdaBoostClassifier(n_estimators=25, random_state=0),
        "c4s",
        "but exp",
    ),
    (
        "adaboost-binary",
        lambda: ensemble.AdaBoostClassifier(
            tree.DecisionTreeClassifier(max_depth=2), n_estimators=25, random_state=0
        ),
        "c2",
        "but exp",
    ),
    (
        "adaboost-logistic",
        lambda: ensemble.AdaBoostClassifier(
            linear_model.LogisticRegression(), n_estimators=5, random_state=0
        ),
        "c3",
        False,
    ),
    (
        "adaboost-regressor",
        lambda: ensemble.AdaBoostRegressor(n_estimators=40, random_state=0),
        "r",
        True,
    ),
    (
        "adaboost-regressor-square",
        lambda: ensemble.AdaBoostRegressor(
            tree.DecisionTreeRegressor(max_depth=2), n_estimators=30, loss="square", random_state=0
        ),
        "r",
        True,
    ),
    # Dummy
    *[
        (f"dummy-{s}", (lambda s=s: dummy.DummyClassifier(strategy=s)), "c4s", True)
        for s in ("most_frequent", "prior")
    ],
    ("dummy-constant", lambda: dummy.DummyClassifier(strategy="constant", constant=2), "c3", True),
    *[
        (f"dummy-regressor-{s}", (lambda s=s: dummy.DummyRegressor(strategy=s)), "r", True)
        for s in ("mean", "median")
    ],
    (
        "dummy-regressor-quantile",
        lambda: dummy.DummyRegressor(strategy="quantile", quantile=0.8),
        "r",
        True,
    ),
    (
        "dummy-regressor-constant-int",
        lambda: dummy.DummyRegressor(strategy="constant", constant=3),
        "r",
        True,
    ),
    # RandomTreesEmbedding
    (
        "random-trees-embedding",
        lambda: ensemble.RandomTreesEmbedding(n_estimators=6, max_depth=3, random_state=0),
        "X",
        True,
    ),
    (
        "random-trees-embedding-dense",
        lambda: ensemble.RandomTreesEmbedding(
            n_estimators=4, max_depth=4, sparse_output=False, random_state=0
        ),
        "X",
        True,
    ),
    (
        "random-trees-embedding-logistic",
        lambda: make_pipeline(
            ensemble.RandomTreesEmbedding(n_estimators=5, max_depth=3, random_state=0),
            linear_model.LogisticRegression(),
        ),
        "c3",
        False,
    ),
    # nesting
    (
        "nested-stacking-of-ensembles",
        lambda: ensemble.StackingClassifier(
            [
                ("vote", ensemble.VotingClassifier(_trees(3), voting="soft")),
                (
                    "bag",
                    ensemble.BaggingClassifier(
                        make_pipeline(StandardScaler(), linear_model.LogisticRegression()),
                        n_estimators=3,
                        random_state=0,
                    ),
                ),
                ("ada", ensemble.AdaBoostClassifier(n_estimators=5, random_state=0)),
                ("dummy", dummy.DummyClassifier()),
            ],
            final_estimator=ensemble.VotingClassifier(_trees(2), voting="soft"),
        ),
        "c3",
        False,
    ),
    (
        "nested-bagging-of-voting",
        lambda: ensemble.BaggingRegressor(
            ensemble.VotingRegressor(_trees(3, regressor=True)),
            n_estimators=3,
            max_features=5,
            random_state=0,
        ),
        "r",
        True,
    ),
]

CASE_IDS = [c[0] for c in CASES]
_FITTED: Dict[str, Tuple[Any, np.ndarray]] = {}


def fitted(case) -> Tuple[Any, np.ndarray]:
    """The case's estimator fitted on its data, and test rows (cached)."""
    name, factory, data, _ = case
    if name not in _FITTED:
        est = factory()
        if data == "r":
            X, y = regression()
            fit(est, X, y)
        elif data == "X":
            X, _ = classification(3)
            fit(est, X)
        else:
            n_classes = int(data[1])
            X, y = classification(n_classes, seed=n_classes)
            fit(est, X, LABELS[y] if data.endswith("s") else y)
        _FITTED[name] = (est, sample_rows())
    return _FITTED[name]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_parity(case, tmp_path):
    """Every method, from a joblib file, on float64 rows, a single row and
    float32 and integer inputs; the model pickled and loaded again too."""
    name, _, _, exact = case
    est, X = fitted(case)
    model = load_variant(est, "joblib", tmp_path)
    context = f"case={name} | variant=joblib"
    check_methods(model, est, X, context=f"{context} | input=f64", exact=exact)
    check_methods(model, est, X[5:6], context=f"{context} | input=one row", exact=exact)
    check_methods(model, est, X.astype(np.float32), context=f"{context} | input=f32", exact=exact)
    check_methods(
        model, est, np.rint(X).astype(np.int64), context=f"{context} | input=int64", exact=exact
    )
    again = pickle.loads(pickle.dumps(model))
    check_methods(again, est, X, context=f"case={name} | variant=Model pickled again", exact=exact)
    check_attributes(model, est, context)


def test_every_registered_ensemble_estimator_is_covered():
    from mlfast._builders import _REGISTRY

    names = {
        name for name, (_, fn) in _REGISTRY.items() if fn.__module__ == "mlfast._builders.ensemble"
    }
    covered = {type(fitted(case)[0]).__name__ for case in CASES}
    covered |= {
        type(step).__name__ for case in CASES for _, step in getattr(fitted(case)[0], "steps", [])
    }
    missing = names - covered
    assert not missing, f"ensemble estimators without a parity case: {sorted(missing)}"


def representatives():
    """Nested ensembles of every kind, a bagged vote, AdaBoost (bit for bit
    but for exp) and RandomTreesEmbedding's one-hot transform for every file
    variant, pickling, inspect and repr (test_parity_shared.py)."""

    def make(name):
        def make_model():
            case = CASES[CASE_IDS.index(name)]
            est, X = fitted(case)
            return Representative(est, X, exact=case[3])

        return make_model

    return {
        name: make(name)
        for name in (
            "nested-stacking-of-ensembles",
            "nested-bagging-of-voting",
            "adaboost",
            "random-trees-embedding",
        )
    }


@pytest.mark.parametrize(
    "name",
    [
        "bagging-fewer-classes-n_jobs",
        "voting-soft-weights-trees",
        "adaboost",
        "adaboost-regressor",
        "random-trees-embedding",
        "nested-bagging-of-voting",
    ],
)
def test_large_batch_across_threads(name):
    """Thousands of rows, split across mlfast's threads, answer as one call."""
    case = CASES[CASE_IDS.index(name)]
    est, _ = fitted(case)
    X = np.random.default_rng(3).normal(size=(6000, N_FEATURES)) * 2
    model = mlfast.compile(est)
    check_methods(model, est, X, context=f"case={name} | rows=6000", exact=case[3])


def test_dataframe_feature_names():
    """An ensemble fitted on a DataFrame keeps its column names."""
    X, y = classification(3)
    columns = [f"c{i}" for i in range(N_FEATURES)]
    df = pd.DataFrame(X, columns=columns)
    for est in (
        ensemble.VotingClassifier(_trees(3), voting="soft"),
        ensemble.BaggingClassifier(n_estimators=4, random_state=0),
        ensemble.AdaBoostClassifier(n_estimators=4, random_state=0),
        ensemble.StackingClassifier(_trees(2)),
    ):
        fit(est, df, y)
        model = mlfast.compile(est)
        assert list(model.feature_names_in_) == columns
        rows = pd.DataFrame(sample_rows(), columns=columns)
        check_methods(model, est, rows, context=f"{type(est).__name__} | input=DataFrame")


# -- what scikit-learn refuses, mlfast refuses the same way ------------------------------


@pytest.mark.parametrize("kind", ["nan", "inf"])
@pytest.mark.parametrize("cls", [ensemble.AdaBoostClassifier, ensemble.AdaBoostRegressor])
def test_adaboost_checks_x_itself(cls, kind):
    """AdaBoost validates X before its members (which might accept NaN): the
    message names AdaBoost, and float32 input is named as float32."""
    X, y = regression() if cls is ensemble.AdaBoostRegressor else classification(3)
    est = fit(cls(n_estimators=3, random_state=0), X, y)
    model = mlfast.compile(est)
    bad = sample_rows()
    bad[4, 2] = np.nan if kind == "nan" else np.inf
    for rows in (bad, bad.astype(np.float32)):
        with pytest.raises(ValueError) as expected:
            est.predict(rows)
        with pytest.raises(ValueError) as got:
            model.predict(rows)
        assert str(got.value) == str(expected.value)


def test_bagging_passes_nan_to_members_that_take_it():
    """Bagging itself accepts NaN (ensure_all_finite=False); trees of 1.4+
    route it, so the answers are the members'."""
    X, y = classification(3)
    X = X.copy()
    X[::7, 1] = np.nan
    est = fit(ensemble.BaggingClassifier(n_estimators=5, random_state=0), X, y)
    rows = sample_rows()
    rows[::3, 1] = np.nan
    check_methods(mlfast.compile(est), est, rows, context="bagging with NaN", exact=True)


# -- what mlfast does not serve, and why ---------------------------------------------------


def test_dummy_stratified_is_refused():
    X, y = classification(3)
    est = fit(dummy.DummyClassifier(strategy="stratified", random_state=0), X, y)
    with pytest.raises(mlfast.UnsupportedModelError, match="at random"):
        mlfast.compile(est)


def test_dummy_uniform_serves_its_probabilities_only():
    """'uniform' draws predict at random; its probabilities are 1/k."""
    X, y = classification(4)
    est = fit(dummy.DummyClassifier(strategy="uniform"), X, y)
    model = mlfast.compile(est)
    rows = sample_rows()
    for method in ("predict_proba", "predict_log_proba"):
        assert_same_output(
            getattr(model, method)(rows), quietly(getattr(est, method), rows), method
        )
    assert not hasattr(model, "predict")


def test_soft_voting_member_without_predict_proba_is_named():
    X, y = classification(3)
    est = ensemble.VotingClassifier(
        [("dt", tree.DecisionTreeClassifier()), ("svc", svm.LinearSVC())], voting="soft"
    )
    fit(est, X, y)
    with pytest.raises(
        mlfast.UnsupportedModelError, match=r"estimators_\[1\] \(LinearSVC\) has no predict_proba"
    ):
        mlfast.compile(est)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ensemble.VotingClassifier(
            [("a", linear_model.LogisticRegression()), ("b", linear_model.LogisticRegression())]
        ),
        lambda: ensemble.BaggingClassifier(
            linear_model.LogisticRegression(), n_estimators=2, random_state=0
        ),
        lambda: ensemble.AdaBoostClassifier(
            tree.DecisionTreeClassifier(max_depth=1), n_estimators=3, random_state=0
        ),
    ],
    ids=["voting", "bagging", "adaboost"],
)
def test_a_regressor_among_a_classifiers_members_is_named(make):
    """A file can put a regressor where a classifier's member belongs: the
    error names it rather than failing on its missing classes."""
    X, y = classification(3)
    est = fit(make(), X, y)
    est.estimators_[1] = fit(tree.DecisionTreeRegressor(max_depth=1), X, y)
    with pytest.raises(
        mlfast.ModelFormatError,
        match=r"estimators_\[1\] predicts no classes \(it is not a classifier\)",
    ):
        mlfast.compile(est)


def test_random_trees_embedding_with_an_unseen_leaf_is_refused():
    """A leaf no training row reached (here: made by hand) is an unknown
    category to the fitted one-hot encoder, which scikit-learn refuses."""
    X, _ = classification(3)
    est = fit(ensemble.RandomTreesEmbedding(n_estimators=2, max_depth=2, random_state=0), X)
    est.one_hot_encoder_.categories_[0] = est.one_hot_encoder_.categories_[0][1:]
    with pytest.raises(mlfast.UnsupportedModelError, match="never held a training row"):
        mlfast.compile(est)


def test_multilabel_stacking_is_refused():
    X, y = classification(3)
    Y = np.c_[y == 0, y == 1].astype(int)
    est = fit(
        ensemble.StackingClassifier(
            [("dt", tree.DecisionTreeClassifier(max_depth=3))],
            final_estimator=tree.DecisionTreeClassifier(),
        ),
        X,
        Y,
    )
    with pytest.raises(mlfast.UnsupportedModelError, match="multilabel"):
        mlfast.compile(est)


# -- the ops refuse what does not fit, whoever built them ---------------------------------


@pytest.mark.parametrize(
    "op, n_in, message",
    [
        ("vote-map", 2, "class map entry"),
        ("vote-offsets", 2, "offsets"),
        ("bag-widths", 3, "do not fit"),
        ("samme-classes", 1, "n_classes"),
        ("take-offsets", 2, "offsets"),
        ("average-scale", 4, "add up to 0"),
        ("constant-kind", 1, "out_kind"),
    ],
)
def test_ops_check_their_fields(op, n_in, message):
    from mlfast._builders import ir

    ops = {
        "vote-map": ir.Vote(
            n_classes=2, class_map=np.array([0, 5]), map_offsets=np.array([0, 1, 2])
        ),
        "vote-offsets": ir.Vote(
            n_classes=2, class_map=np.array([0, 1]), map_offsets=np.array([0, 3, 2])
        ),
        "bag-widths": ir.Bag(
            n_outputs=2,
            widths=np.array([2, 2]),
            votes=np.array([0, 0]),
            class_map=np.array([0, 1, 0, 1]),
            map_offsets=np.array([0, 2, 4]),
            chunk_starts=np.array([0, 2]),
        ),
        "samme-classes": ir.Samme(n_classes=1, weights=np.ones(1)),
        "take-offsets": ir.Take(table=np.zeros(3), offsets=np.array([0, 1, 9])),
        "average-scale": ir.Average(weights=np.ones(2), scale=0.0, weighted=True),
        "constant-kind": ir.Constant(values=np.ones(1), out_kind=7),
    }
    node = ir.Node(ops[op], np.arange(n_in, dtype=np.int64), 2, "x")
    output = ir.Output(np.array([n_in], dtype=np.int64))
    with pytest.raises(ValueError, match=message):
        mlfast._core.Graph(n_in, [node], {"predict": output})
