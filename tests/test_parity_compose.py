"""Compositions against scikit-learn: ColumnTransformer, FeatureUnion,
Pipeline's passthrough steps and the fitted search objects.

Every case is fitted on a DataFrame or an array, saved, loaded by mlfast and
compared method by method with scikit-learn (labels equal, floats within
1e-12), on the rows it was fitted on and on new rows, as a DataFrame (in
order, reordered, with extra columns) and as an array.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import loguniform, randint, uniform
from sklearn.compose import ColumnTransformer, make_column_selector, make_column_transformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import (
    GridSearchCV,
    HalvingGridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
)
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline, make_union
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from support.parity import assert_same_output
from support.representatives import Representative
from support.variants import load_variant

import mlfast

METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")
pytestmark = pytest.mark.usefixtures("one_openmp_thread")
COLUMNS = ["age", "fare", "sibsp", "parch", "score", "height"]


def _data(n=240, seed=0, nan=False):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, len(COLUMNS)) * [10, 50, 1, 1, 3, 0.5] + [40, 30, 1, 0, 0, 1.7]
    if nan:
        X[rng.rand(*X.shape) < 0.1] = np.nan
    df = pd.DataFrame(X, columns=COLUMNS)
    y = (
        (np.nan_to_num(X[:, 0]) - 40) / 10 + np.nan_to_num(X[:, 4]) / 3 + rng.randn(n) * 0.5 > 0
    ).astype(int)
    return df, y


def check_same(est, model, X, where=""):
    """Every method the estimator has, mlfast against scikit-learn (floats
    within 1e-12 absolute, whatever their scale); only feature-name warnings
    are quiet: any other warning is a failure."""
    compared = 0
    for method in METHODS:
        if not hasattr(est, method):
            assert not hasattr(model, method), f"{where}: mlfast has {method}"
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            want = getattr(est, method)(X)
            got = getattr(model, method)(X)
        assert_same_output(got, want, f"{where}: {method}", rtol=0, atol=1e-12)
        compared += 1
    assert compared, where


def roundtrip(est):
    return mlfast.loads(pickle.dumps(est, protocol=5))


# ---- ColumnTransformer ---------------------------------------------------------------

CT_CASES = {
    "names+remainder-drop": lambda: ColumnTransformer(
        [("num", StandardScaler(), ["age", "fare"]), ("mm", MinMaxScaler(), ["score"])]
    ),
    "indices+remainder-passthrough": lambda: ColumnTransformer(
        [("num", StandardScaler(), [0, 1]), ("robust", RobustScaler(), [4])],
        remainder="passthrough",
    ),
    "slice+mask": lambda: ColumnTransformer(
        [
            ("a", StandardScaler(), slice(0, 2)),
            ("b", MaxAbsScaler(), np.array([False, False, True, True, False, False])),
        ]
    ),
    "label-slice": lambda: ColumnTransformer([("a", StandardScaler(), slice("fare", "parch"))]),
    "negative-index+one-name": lambda: ColumnTransformer(
        [("a", StandardScaler(), ["age"]), ("b", MinMaxScaler(), [-1])]
    ),
    "selector+remainder-estimator": lambda: make_column_transformer(
        (StandardScaler(), make_column_selector(pattern="^(?:age|fare)$")), remainder=MinMaxScaler()
    ),
    "dtype-selector": lambda: make_column_transformer(
        (RobustScaler(), make_column_selector(dtype_include=np.number))
    ),
    "drop+passthrough+weights": lambda: ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "fare"]),
            ("gone", "drop", ["sibsp"]),
            ("keep", "passthrough", ["parch", "score"]),
        ],
        transformer_weights={"num": 0.5, "keep": 3.0},
    ),
    "empty-selection": lambda: ColumnTransformer(
        [("num", StandardScaler(), ["age"]), ("none", MinMaxScaler(), [])],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ),
    "pipeline-branch": lambda: ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "fare", "score"]),
            ("rest", SimpleImputer(strategy="median"), ["sibsp", "parch"]),
        ]
    ),
}

FINALS = {
    "lr": lambda: LogisticRegression(max_iter=1000),
    "rf": lambda: RandomForestClassifier(15, max_depth=6, random_state=0),
    "hgb": lambda: HistGradientBoostingClassifier(max_iter=15, random_state=0),
}


@pytest.mark.parametrize("final", sorted(FINALS))
@pytest.mark.parametrize("case", sorted(CT_CASES))
def test_column_transformer_pipelines(case, final):
    df, y = _data(nan=case == "pipeline-branch")
    est = make_pipeline(CT_CASES[case](), FINALS[final]()).fit(df, y)
    model = roundtrip(est)
    new, _ = _data(60, seed=1, nan=case == "pipeline-branch")
    check_same(est, model, df, f"{case}/{final}")
    check_same(est, model, new, f"{case}/{final} new rows")
    # a DataFrame is read by name: any column order, extra columns ignored
    shuffled = new[COLUMNS[::-1]].assign(extra=1.0)
    check_same(est, model, shuffled, f"{case}/{final} reordered")
    # one row, as served
    check_same(est, model, new.iloc[:1], f"{case}/{final} one row")


@pytest.mark.parametrize("case", sorted(CT_CASES))
def test_column_transformer_transform(case):
    df, y = _data(nan=case == "pipeline-branch")
    ct = CT_CASES[case]().fit(df, y)
    model = roundtrip(ct)
    assert model.kind == "transformer"
    check_same(ct, model, df, case)


def test_column_transformer_fitted_on_an_array():
    df, y = _data()
    X = df.to_numpy()
    ct = ColumnTransformer(
        [("a", StandardScaler(), [0, 2]), ("b", MinMaxScaler(), [1])], remainder="passthrough"
    )
    est = make_pipeline(ct, LogisticRegression(max_iter=1000)).fit(X, y)
    model = roundtrip(est)
    check_same(est, model, X, "array")
    check_same(est, model, X.astype(np.float32), "float32")
    check_same(est, model, X[:1], "one row")


def test_column_transformer_missing_column_is_named():
    df, y = _data()
    est = make_pipeline(CT_CASES["names+remainder-drop"](), LogisticRegression()).fit(df, y)
    model = roundtrip(est)
    short = df.drop(columns=["fare"])
    with pytest.raises(ValueError) as want:
        est.predict(short)
    with pytest.raises(ValueError) as got:
        model.predict(short)
    assert str(got.value) == str(want.value) == "columns are missing: {'fare'}"
    # a dropped column may be missing, as in scikit-learn
    np.testing.assert_array_equal(
        model.predict(df.drop(columns=["sibsp"])), est.predict(df.drop(columns=["sibsp"]))
    )


def test_column_transformer_array_for_a_model_fitted_on_names():
    """scikit-learn refuses an array when the columns were named; mlfast
    reads it in the order of feature_names_in_ and warns, as an estimator
    fitted on names does (a JSON row of numbers must be servable)."""
    df, y = _data()
    est = make_pipeline(CT_CASES["names+remainder-drop"](), LogisticRegression()).fit(df, y)
    model = roundtrip(est)
    with pytest.warns(
        UserWarning,
        match="X does not have valid feature names, but "
        "StandardScaler was fitted with feature names",
    ):
        got = model.predict_proba(df.to_numpy())
    np.testing.assert_allclose(got, est.predict_proba(df), rtol=0, atol=1e-12)


def test_column_transformer_nan_is_refused_by_the_estimator_that_refuses_it():
    df, y = _data()
    est = make_pipeline(
        ColumnTransformer(
            [("a", StandardScaler(), ["age", "fare"]), ("b", "passthrough", ["score"])]
        ),
        LogisticRegression(),
    ).fit(df, y)
    model = roundtrip(est)
    bad = df.iloc[:5].copy()
    bad.iloc[3, 4] = np.nan
    with pytest.raises(ValueError) as want:
        est.predict(bad)
    with pytest.raises(ValueError) as got:
        model.predict(bad)
    assert str(got.value) == str(want.value)
    assert "LogisticRegression does not accept missing values" in str(got.value)


def test_column_transformer_wrong_width_names_it():
    X = _data()[0].to_numpy()
    y = _data()[1]
    est = make_pipeline(
        ColumnTransformer([("a", StandardScaler(), [0, 1])]), LogisticRegression()
    ).fit(X, y)
    model = roundtrip(est)
    with pytest.raises(ValueError) as want:
        est.predict(X[:, :4])
    with pytest.raises(ValueError) as got:
        model.predict(X[:, :4])
    assert str(got.value) == str(want.value)


def test_a_column_transformer_dropping_everything_is_unsupported():
    df, y = _data()
    ct = ColumnTransformer([("gone", "drop", ["age"])]).fit(df, y)
    with pytest.raises(mlfast.UnsupportedModelError, match="drops every column"):
        roundtrip(ct)


def test_column_transformer_across_threads():
    df, y = _data(3000, seed=3)
    est = make_pipeline(
        CT_CASES["drop+passthrough+weights"](),
        RandomForestClassifier(30, max_depth=8, random_state=0),
    ).fit(df, y)
    model = roundtrip(est)
    before = mlfast.get_num_threads()
    mlfast.set_num_threads(2)
    try:
        check_same(est, model, df, "two threads")
    finally:
        mlfast.set_num_threads(before)


# ---- FeatureUnion and Pipeline -----------------------------------------------------------

UNIONS = {
    "make_union": lambda: make_union(StandardScaler(), MinMaxScaler()),
    "weights+passthrough+drop": lambda: FeatureUnion(
        [("s", StandardScaler()), ("raw", "passthrough"), ("gone", "drop"), ("r", RobustScaler())],
        transformer_weights={"s": 2.0, "raw": 0.25},
    ),
    "passthrough-first": lambda: FeatureUnion([("raw", "passthrough"), ("m", MaxAbsScaler())]),
    "union-of-column-transformers": lambda: make_union(
        ColumnTransformer([("a", StandardScaler(), [0, 1])]),
        ColumnTransformer([("b", MinMaxScaler(), [2, 3, 4])], remainder="passthrough"),
    ),
}


@pytest.mark.parametrize("case", sorted(UNIONS))
@pytest.mark.parametrize("fit_on", ["array", "frame"])
def test_feature_union(case, fit_on):
    df, y = _data()
    X = df if fit_on == "frame" else df.to_numpy()
    union = UNIONS[case]().fit(X, y)
    check_same(union, roundtrip(union), X, case)
    est = make_pipeline(UNIONS[case](), LogisticRegression(max_iter=2000)).fit(X, y)
    check_same(est, roundtrip(est), X, f"{case} + LR")


@pytest.mark.parametrize(
    "steps",
    [
        lambda: [("skip", "passthrough"), ("s", StandardScaler()), ("lr", LogisticRegression())],
        lambda: [("s", StandardScaler()), ("skip", None), ("lr", LogisticRegression())],
        lambda: [
            ("inner", make_pipeline(StandardScaler(), MinMaxScaler())),
            ("outer", make_pipeline(RobustScaler(), LogisticRegression())),
        ],
        lambda: [("s", StandardScaler()), ("last", "passthrough")],
    ],
    ids=["passthrough-first", "none-middle", "nested", "passthrough-last"],
)
def test_pipelines_with_passthrough_and_nesting(steps):
    df, y = _data()
    est = Pipeline(steps()).fit(df.to_numpy(), y)
    check_same(est, roundtrip(est), df.to_numpy(), str(est))


def test_deep_nesting():
    """A ColumnTransformer inside a FeatureUnion inside a Pipeline inside a
    GridSearchCV."""
    df, y = _data()
    inner = make_pipeline(
        make_union(
            ColumnTransformer([("a", StandardScaler(), ["age", "fare"])]),
            ColumnTransformer([("b", RobustScaler(), ["score"])], remainder=MinMaxScaler()),
        ),
        LogisticRegression(max_iter=1000),
    )
    search = GridSearchCV(inner, {"logisticregression__C": [0.1, 1.0]}, cv=3).fit(df, y)
    model = roundtrip(search)
    assert model.estimator.startswith("GridSearchCV(Pipeline(FeatureUnion(")
    check_same(search, model, df, "deep")


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_deep_nesting_inside_calibration(method):
    """The issue's deepest shape: a ColumnTransformer inside a FeatureUnion
    inside a Pipeline inside a GridSearchCV inside a CalibratedClassifierCV
    (three calibrated copies of the search, each with its own best model),
    ending in a soft vote of a linear model and a forest."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import VotingClassifier

    df, y = _data(nan=False)
    inner = make_pipeline(
        make_union(
            ColumnTransformer([("a", StandardScaler(), ["age", "fare"])]),
            ColumnTransformer([("b", RobustScaler(), ["score"])], remainder=MinMaxScaler()),
        ),
        VotingClassifier(
            [
                ("lr", LogisticRegression(max_iter=1000)),
                ("rf", RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0)),
            ],
            voting="soft",
        ),
    )
    search = GridSearchCV(inner, {"votingclassifier__lr__C": [0.1, 1.0]}, cv=3)
    calibrated = CalibratedClassifierCV(search, method=method, cv=3).fit(df, y)
    model = roundtrip(calibrated)
    assert model.estimator.startswith(
        "CalibratedClassifierCV(GridSearchCV(Pipeline(FeatureUnion(ColumnTransformer("
    ), model.estimator
    check_same(calibrated, model, df, f"deep {method}")
    new = _data(n=50, seed=7)[0]
    check_same(calibrated, model, new, f"deep {method}, new rows")


# ---- fitted searches ----------------------------------------------------------------------


def _searches():
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    return {
        "grid": lambda: GridSearchCV(lr, {"logisticregression__C": [0.01, 1.0]}, cv=3),
        "grid-multimetric": lambda: GridSearchCV(
            lr,
            {"logisticregression__C": [0.01, 1.0]},
            cv=3,
            scoring=["accuracy", "roc_auc"],
            refit="roc_auc",
        ),
        "randomized": lambda: RandomizedSearchCV(
            lr,
            {
                "logisticregression__C": loguniform(1e-3, 1e2),
                "logisticregression__tol": uniform(1e-5, 1e-3),
                "logisticregression__max_iter": randint(500, 1000),
            },
            n_iter=3,
            cv=3,
            random_state=0,
        ),
        "randomized-forest": lambda: RandomizedSearchCV(
            RandomForestClassifier(random_state=0),
            {"n_estimators": randint(5, 15), "max_depth": [3, None]},
            n_iter=2,
            cv=3,
            random_state=0,
        ),
        "halving-grid": lambda: HalvingGridSearchCV(
            lr, {"logisticregression__C": [0.01, 0.1, 1.0]}, cv=3, random_state=0
        ),
        "halving-random": lambda: HalvingRandomSearchCV(
            lr, {"logisticregression__C": loguniform(1e-3, 1e2)}, cv=3, random_state=0
        ),
        "grid-over-estimators": lambda: GridSearchCV(
            Pipeline([("s", StandardScaler()), ("m", LogisticRegression())]),
            {"m": [LogisticRegression(max_iter=1000), RandomForestClassifier(10, random_state=0)]},
            cv=3,
        ),
    }


@pytest.mark.parametrize("case", sorted(_searches()))
def test_fitted_searches_serve_their_best_estimator(case, tmp_path):
    df, y = _data()
    search = _searches()[case]().fit(df, y)
    for variant in ("joblib", "pickle-p2", "compile"):
        model = load_variant(search, variant, tmp_path)
        check_same(search, model, df, f"{case} ({variant})")


def test_a_search_without_refit_says_there_is_nothing_to_serve():
    df, y = _data()
    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=3, refit=False)
    search.fit(df, y)
    with pytest.raises(
        mlfast.UnsupportedModelError, match=r"refit=False: it keeps no best_estimator_"
    ):
        roundtrip(search)


def test_a_regression_search():
    df, _ = _data()
    target = df["age"].to_numpy() * 0.3 + df["score"].to_numpy()
    X = df.drop(columns=["age"])
    search = GridSearchCV(
        make_pipeline(
            ColumnTransformer(
                [("s", StandardScaler(), ["fare", "score"])], remainder="passthrough"
            ),
            RandomForestRegressor(10, random_state=0),
        ),
        {"randomforestregressor__max_depth": [3, 6]},
        cv=3,
    ).fit(X, target)
    check_same(search, roundtrip(search), X, "regression")
    ridge = GridSearchCV(Ridge(), {"alpha": [0.1, 1.0]}, cv=3).fit(X, target)
    check_same(ridge, roundtrip(ridge), X, "ridge")


# ---- representatives of the shared runs (test_parity_shared.py) -------------------------


def representatives():
    """A ColumnTransformer pipeline fitted on a DataFrame with NaN, a
    FeatureUnion and a fitted search, for every file variant, pickling,
    inspect and repr."""

    def make(est, nan=False):
        def make_model():
            df, y = _data(nan=nan)
            return Representative(est().fit(df, y), _data(60, seed=1, nan=nan)[0])

        return make_model

    return {
        "Pipeline(ColumnTransformer(pipeline-branch), HistGradientBoostingClassifier)": make(
            lambda: make_pipeline(CT_CASES["pipeline-branch"](), FINALS["hgb"]()), nan=True
        ),
        "Pipeline(ColumnTransformer(drop+passthrough+weights), LogisticRegression)": make(
            lambda: make_pipeline(CT_CASES["drop+passthrough+weights"](), FINALS["lr"]())
        ),
        "Pipeline(FeatureUnion(StandardScaler, MinMaxScaler), RandomForestClassifier)": make(
            lambda: make_pipeline(make_union(StandardScaler(), MinMaxScaler()), FINALS["rf"]())
        ),
        "GridSearchCV(Pipeline(StandardScaler, LogisticRegression))": make(_searches()["grid"]),
    }


# ---- what is not served ---------------------------------------------------------------------


def test_every_unserved_estimator_is_named_with_its_place():
    """One message names them all, short, and points to the list."""
    from sklearn.impute import KNNImputer
    from sklearn.semi_supervised import LabelSpreading

    df = pd.DataFrame({"a": np.arange(40.0), "c": np.arange(40.0) % 3})
    y = np.arange(40) % 2
    pipe = make_pipeline(
        ColumnTransformer([("n", StandardScaler(), ["a"]), ("c", KNNImputer(), ["c"])]),
        LabelSpreading(),
    ).fit(df, y)
    with pytest.raises(mlfast.UnsupportedModelError) as err:
        roundtrip(pipe)
    message = str(err.value)
    assert message.startswith(
        "mlfast does not serve 2 estimators of this model yet: "
        "model.steps[0].transformers_[1][1] is a "
        "sklearn.impute._knn.KNNImputer; model.steps[1] is "
        "a sklearn.semi_supervised._label_propagation.LabelSpreading."
    ), message
    assert "mlfast.supported_estimators()" in message and "LogisticRegression" not in message
    search = GridSearchCV(pipe, {"labelspreading__alpha": [0.1, 0.2]}, cv=2).fit(df, y)
    with pytest.raises(
        mlfast.UnsupportedModelError,
        match=r"model\.best_estimator_\.steps\[1\] is a sklearn\.semi_supervised",
    ):
        roundtrip(search)
    with pytest.raises(
        mlfast.UnsupportedModelError,
        match=r"^model is a sklearn\.semi_supervised\._label_propagation\.LabelSpreading, "
        r"which mlfast does not "
        r"serve yet\. mlfast\.supported_estimators\(\) lists the \d+ ",
    ):
        roundtrip(LabelSpreading().fit(df[["a"]], y))
