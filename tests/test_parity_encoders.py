"""Differential tests: OneHotEncoder, OrdinalEncoder, SimpleImputer on
object data, and the titanic- and adult-style pipelines they sit in
(ColumnTransformer of numeric and categorical branches, then a linear model
or a forest), against scikit-learn.

Data: string columns with None and NaN, integer and float categories,
unseen categories at predict time; input as a DataFrame, one row, a dict, a
list of dicts, a 2-D object array, and batches split across threads.
Labels are equal, floats equal within 1e-12 (the one-hot and ordinal codes
bit for bit), an unknown category is scikit-learn's ValueError word for word.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from support.parity import assert_same_output, check_across_threads, dense, quietly
from support.representatives import Representative

import mlfast


def titanic(n: int, seed: int = 0, unseen: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    embarked = rng.choice(
        np.array(["S", "C", "Q", None, np.nan], dtype=object), n, p=[0.6, 0.2, 0.1, 0.05, 0.05]
    )
    deck = rng.choice(list("ABCDEFG") + ["T"], n, p=[0.14] * 7 + [0.02])
    if unseen:
        embarked[::7] = "X"
        deck[::5] = "Z"
    return pd.DataFrame(
        {
            "pclass": rng.integers(1, 4, n),
            "sex": rng.choice(["male", "female"], n).astype(object),
            "age": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(0.5, 80, n).round(1)),
            "sibsp": rng.integers(0, 4, n),
            "fare": rng.exponential(30, n).round(2),
            "embarked": embarked,
            "deck": deck.astype(object),
            "alone": rng.random(n) < 0.5,
        }
    )


def adult(n: int, seed: int = 1, unseen: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    work = rng.choice(
        ["Private", "Self-emp", "Gov", "Never-worked", "?"], n, p=[0.6, 0.15, 0.15, 0.02, 0.08]
    ).astype(object)
    edu = rng.choice(
        ["HS", "Some-college", "Bachelors", "Masters", "Doctorate", "Preschool"],
        n,
        p=[0.3, 0.25, 0.2, 0.15, 0.07, 0.03],
    ).astype(object)
    if unseen:
        work[::9] = "Space"
        edu[::11] = "Kindergarten"
    return pd.DataFrame(
        {
            "age": rng.integers(17, 90, n),
            "workclass": work,
            "education": edu,
            "hours": rng.integers(1, 99, n).astype(float),
            "gain": np.where(rng.random(n) < 0.9, 0.0, rng.exponential(5000, n)),
            "country": rng.choice(["US", "MX", "PH", "DE", "CN", "IN", "CA"], n).astype(object),
        }
    )


def target(df: pd.DataFrame) -> np.ndarray:
    h = pd.util.hash_pandas_object(df, index=False).to_numpy()
    return (h % 3 == 0).astype(int)


def compare(est, model, X, methods, msg, exact=False):
    """The answers of ``methods`` (an encoder's transform, a pipeline's
    predict), as scikit-learn's."""
    for m in methods:
        want = dense(quietly(getattr(est, m), X))
        got = quietly(getattr(model, m), X)
        assert_same_output(got, want, f"{m}: {msg}", exact=exact)


# ---- OneHotEncoder --------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("one_openmp_thread")

CAT = ["pclass", "sex", "embarked", "deck"]

OHE_CASES = {
    "ignore": dict(handle_unknown="ignore"),
    "infrequent_if_exist-min3": dict(handle_unknown="infrequent_if_exist", min_frequency=30),
    "infrequent-max3": dict(handle_unknown="infrequent_if_exist", max_categories=3),
    "ignore-infrequent": dict(handle_unknown="ignore", min_frequency=0.1),
    "warn-infrequent": dict(handle_unknown="warn", min_frequency=30),
    "drop-first-ignore": dict(drop="first", handle_unknown="ignore"),
    "drop-if_binary": dict(drop="if_binary", handle_unknown="ignore"),
    "drop-first-infrequent": dict(
        drop="first", handle_unknown="infrequent_if_exist", max_categories=4
    ),
    "drop-array": dict(drop=[2, "male", "S", "A"], handle_unknown="ignore"),
    "float32": dict(handle_unknown="ignore", dtype=np.float32),
    "int8-dense": dict(handle_unknown="ignore", dtype=np.int8, sparse_output=False),
    "given-categories": dict(
        categories=[[1, 2, 3], ["female", "male"], ["C", "Q", "S"], list("ABCDEFGT")],
        handle_unknown="ignore",
    ),
}


@pytest.mark.parametrize("case", sorted(OHE_CASES))
def test_one_hot_encoder(case):
    train = titanic(400)[CAT]
    if case == "given-categories":
        train = train.assign(embarked=train.embarked.fillna("S"))
    est = quietly(OneHotEncoder(**OHE_CASES[case]).fit, train)
    model = mlfast.compile(est)
    for name, X in (
        ("train", train),
        ("unseen", titanic(300, 5, unseen=True)[CAT]),
        ("one-row", titanic(1, 9, unseen=True)[CAT]),
    ):
        compare(est, model, X, ["transform"], f"{case} {name}", exact=True)


def test_one_hot_encoder_refuses_unknown_as_scikit_learn():
    train = titanic(300)[CAT]
    est = OneHotEncoder().fit(train)
    model = mlfast.compile(est)
    bad = titanic(200, 3, unseen=True)[CAT]
    with pytest.raises(ValueError) as want:
        est.transform(bad)
    with pytest.raises(ValueError) as got:
        model.transform(bad)
    assert str(got.value) == str(want.value)
    assert "in column 2 during transform" in str(got.value)
    # a numeric column lists its unknowns sorted, as numpy scalars
    num = train.copy()
    est = OneHotEncoder().fit(num[["pclass"]])
    model = mlfast.compile(est)
    bad = pd.DataFrame({"pclass": [3, 7, 1, 5, 7]})
    with pytest.raises(ValueError) as want:
        est.transform(bad)
    with pytest.raises(ValueError) as got:
        model.transform(bad)
    assert str(got.value) == str(want.value)
    # None and NaN unknown: listed after the others
    est = OneHotEncoder().fit(pd.DataFrame({"c": ["a", "b"]}))
    bad = pd.DataFrame({"c": pd.Series(["a", None, np.nan, "q"], dtype=object)})
    with pytest.raises(ValueError) as want:
        est.transform(bad)
    with pytest.raises(ValueError) as got:
        mlfast.compile(est).transform(bad)
    assert str(got.value) == str(want.value)


def test_mixed_types_and_missing_values_as_python_compares_them():
    """1 == 1.0 == True, 'a' != b'a', None != NaN: categories given by hand."""
    cats = [np.array([0, 1, 2.5, "a", b"a", None, np.nan], dtype=object)]
    est = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    est.fit(pd.DataFrame({"c": np.array(["a"], dtype=object)}))
    # scikit-learn cannot sort such categories at fit; set them as a file may hold them
    est.categories_ = cats
    est._n_features_outs = [len(cats[0])]
    model = mlfast.compile(est)
    values = np.array(
        [
            True,
            1,
            1.0,
            np.float32(2.5),
            "a",
            b"a",
            None,
            float("nan"),
            np.nan,
            False,
            -0.0,
            2**60,
            "b",
            b"b",
            np.int64(2),
        ],
        dtype=object,
    )
    X = pd.DataFrame({"c": values})
    compare(est, model, X, ["transform"], "mixed", exact=True)


# ---- OrdinalEncoder -------------------------------------------------------------------

ORD_CASES = {
    "default": dict(),
    "unknown-minus1": dict(handle_unknown="use_encoded_value", unknown_value=-1),
    "unknown-nan-missing-minus2": dict(
        handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=-2
    ),
    "infrequent": dict(handle_unknown="use_encoded_value", unknown_value=-1, min_frequency=40),
    "max-categories": dict(
        handle_unknown="use_encoded_value", unknown_value=99, max_categories=3, dtype=np.float32
    ),
}


@pytest.mark.parametrize("case", sorted(ORD_CASES))
def test_ordinal_encoder(case):
    train = titanic(400)[CAT]
    est = OrdinalEncoder(**ORD_CASES[case]).fit(train)
    model = mlfast.compile(est)
    compare(est, model, train, ["transform"], f"{case} train", exact=True)
    if case != "default":
        for name, X in (
            ("unseen", titanic(300, 5, unseen=True)[CAT]),
            ("one-row", titanic(1, 9, unseen=True)[CAT]),
        ):
            compare(est, model, X, ["transform"], f"{case} {name}", exact=True)


# ---- SimpleImputer on object data -----------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        dict(strategy="most_frequent"),
        dict(strategy="constant", fill_value="missing"),
        dict(strategy="most_frequent", add_indicator=True),
    ],
    ids=["most_frequent", "constant", "indicator"],
)
def test_object_imputer_then_encoder(kw):
    train = titanic(300)[["sex", "embarked", "deck"]]
    est = make_pipeline(SimpleImputer(**kw), OneHotEncoder(handle_unknown="ignore"))
    est.fit(train)
    model = mlfast.compile(est)
    for name, X in (("train", train), ("unseen", titanic(200, 4, unseen=True)[train.columns])):
        compare(est, model, X, ["transform"], f"{kw} {name}", exact=True)


# ---- pipelines ----------------------------------------------------------------------------


def titanic_pipeline(final):
    num = ["age", "fare", "sibsp"]
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), num),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                CAT,
            ),
        ]
    )
    return make_pipeline(pre, final)


def adult_pipeline(final):
    cat = ["workclass", "education", "country"]
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "hours", "gain"]),
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), cat),
        ],
        remainder="drop",
    )
    return make_pipeline(pre, final)


PIPELINES = {
    "titanic-logreg": (titanic, lambda: titanic_pipeline(LogisticRegression(max_iter=500))),
    "titanic-forest": (
        titanic,
        lambda: titanic_pipeline(RandomForestClassifier(20, max_depth=6, random_state=0)),
    ),
    "adult-logreg": (adult, lambda: adult_pipeline(LogisticRegression(max_iter=500))),
    "adult-ridge": (adult, lambda: adult_pipeline(Ridge())),
}


def fitted(case):
    data, make = PIPELINES[case]
    train = data(500)
    y = target(train)
    est = make()
    if case.endswith("ridge"):
        y = train["hours"].to_numpy() * 0.1 + y
    return quietly(est.fit, train, y), data


@pytest.mark.parametrize("case", sorted(PIPELINES))
def test_pipelines(case):
    est, data = fitted(case)
    model = mlfast.compile(est)
    methods = [m for m in ("predict", "predict_proba", "decision_function") if hasattr(est, m)]
    X = data(300, 7, unseen=True)
    compare(est, model, X, methods, f"{case} DataFrame")
    compare(est, model, X.iloc[[3]], methods, f"{case} one row")
    # a dict (one row) and a list of dicts, keyed by column name
    row = X.iloc[3].to_dict()
    for m in methods:
        want = quietly(getattr(est, m), X.iloc[[3]])
        assert_same_output(getattr(model, m)(row), want, f"{case} dict {m}")
        many = X.iloc[:20].to_dict("records")
        assert_same_output(
            getattr(model, m)(many), quietly(getattr(est, m), X.iloc[:20]), f"{case} records {m}"
        )
    # a 2-D object array: as scikit-learn reads it by position
    arr = X.to_numpy(dtype=object)
    if "forest" not in case:
        compare(est, model, X, methods[:1], f"{case} again")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = model.predict(arr)
    assert got.shape == (len(X),)


@pytest.mark.parametrize("case", ["titanic-logreg", "titanic-forest"])
def test_batches_across_threads(case):
    est, data = fitted(case)
    model = mlfast.compile(est)
    X = data(6000, 11, unseen=True)
    check_across_threads(
        model, est, X, ["predict", "predict_proba"], f"{case} 6000 rows", threads=(2,)
    )


def representatives():
    """The titanic and adult pipelines (one-hot and ordinal encoders of
    strings with missing values, then a linear model or a forest) for every
    file variant, pickling, inspect and repr (test_parity_shared.py), asked
    about rows with unseen categories."""

    def make(case):
        def make_model():
            est, data = fitted(case)
            return Representative(est, data(100, 3, unseen=True))

        return make_model

    return {case: make(case) for case in ("titanic-logreg", "titanic-forest", "adult-logreg")}


def test_pipeline_unknown_category_error_names_the_encoder_column():
    train = titanic(300)
    y = target(train)
    est = make_pipeline(
        ColumnTransformer(
            [("num", StandardScaler(), ["fare"]), ("cat", OneHotEncoder(), ["sex", "deck"])]
        ),
        LogisticRegression(),
    ).fit(train, y)
    model = mlfast.compile(est)
    bad = titanic(50, 2, unseen=True)
    with pytest.raises(ValueError) as want:
        est.predict(bad)
    with pytest.raises(ValueError) as got:
        model.predict(bad)
    assert str(got.value) == str(want.value)


# ---- HistGradientBoosting on categories -------------------------------------------------


@pytest.mark.parametrize("how", ["from_dtype", "by-name"])
def test_hist_gradient_boosting_on_string_categories(how):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    def data(n, seed, unseen=False):
        rng = np.random.default_rng(seed)
        df = pd.DataFrame(
            {
                "a": rng.normal(size=n),
                "colour": pd.Categorical(
                    rng.choice(["red", "green", "blue", None], n),
                    categories=["blue", "green", "red"],
                ),
                "town": rng.choice(["Oslo", "Lima", "Pune", "Kyiv"], n).astype(object),
                "b": rng.normal(size=n),
            }
        )
        if unseen:
            df.loc[::5, "town"] = "Quito"
        return df

    train = data(600, 0)
    y = ((train.a > 0) ^ (train.colour == "red")).astype(int).to_numpy()
    kw = (
        {"categorical_features": "from_dtype"}
        if how == "from_dtype"
        else {"categorical_features": ["colour", "town"]}
    )
    X = train.drop(columns="town") if how == "from_dtype" else train
    clf = HistGradientBoostingClassifier(max_iter=15, **kw).fit(X, y)
    reg = HistGradientBoostingRegressor(max_iter=15, **kw).fit(X, train.b.to_numpy())
    test = data(300, 3, unseen=True)[X.columns]
    for est, methods in ((clf, ["predict", "predict_proba"]), (reg, ["predict"])):
        model = mlfast.compile(est)
        compare(est, model, test, methods, f"{type(est).__name__} {how}")
        compare(est, model, test.iloc[[5]], methods, f"{type(est).__name__} {how} one row")


@pytest.mark.parametrize(
    "make",
    [
        lambda: SimpleImputer(strategy="most_frequent"),
        lambda: SimpleImputer(strategy="constant", fill_value="missing"),
        lambda: ColumnTransformer([("impute", SimpleImputer(strategy="most_frequent"), [1])]),
    ],
    ids=["imputer-most-frequent", "imputer-constant", "in-a-column-transformer"],
)
def test_a_model_answering_object_values_is_unsupported_not_malformed(make):
    """scikit-learn answers these with an object array of the input's own
    values (strings): a valid model whose answer the engine does not return,
    so UnsupportedModelError naming why, never a format error."""
    X = titanic(40)[["embarked", "deck"]].to_numpy(dtype=object)
    est = make().fit(X)
    assert est.transform(X).dtype == object
    for load in (mlfast.compile, lambda e: mlfast.loads(pickle.dumps(e))):
        with pytest.raises(mlfast.UnsupportedModelError, match="as an object array"):
            load(est)
