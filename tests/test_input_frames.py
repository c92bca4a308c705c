"""DataFrames of other kinds, against scikit-learn: pandas' nullable and
pyarrow-backed dtypes (Int64, Float64, boolean, string with python and
pyarrow storage, int64[pyarrow], ...), polars DataFrames and pyarrow
Tables, given to a numeric pipeline and to a titanic-style pipeline of
string columns.  Column names are checked as scikit-learn checks them (the
same message for a renamed column; a ColumnTransformer fitted on names
selects its columns from a frame in any order).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

import mlfast

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(1, 80, n).round(1)),
            "sibsp": rng.integers(0, 4, n),
            "fare": rng.exponential(30, n).round(2),
            "sex": rng.choice(["male", "female"], n).astype(object),
            "deck": rng.choice(list("ABCDEFG"), n).astype(object),
        }
    )


NUMERIC = ["age", "sibsp", "fare"]


@pytest.fixture(scope="module")
def fitted():
    train = frame(400, 0)
    y = ((train.sex == "female") ^ (train.fare > 40)).to_numpy().astype(int)
    numeric = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression()).fit(
        train[NUMERIC], y
    )
    tables = make_pipeline(
        ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["sex", "deck"]),
            ]
        ),
        LogisticRegression(),
    ).fit(train, y)
    forest = make_pipeline(
        ColumnTransformer(
            [
                (
                    "cat",
                    OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                    ["sex", "deck"],
                )
            ],
            remainder="passthrough",
        ),
        RandomForestClassifier(n_estimators=10, random_state=0),
    ).fit(train, y)
    return {"numeric": numeric, "tables": tables, "forest": forest}


def pandas_forms(df: pd.DataFrame) -> dict:
    """The same rows in pandas' other dtypes."""
    return {
        "numpy": df,
        "nullable Int64/Float64": df.astype(
            {"sibsp": "Int64", "age": "Float64", "fare": "Float64"}
        ),
        "string[python]": df.astype({"sex": "string[python]", "deck": "string[python]"}),
        "string[pyarrow]": df.astype({"sex": "string[pyarrow]", "deck": "string[pyarrow]"}),
        "category": df.astype({"sex": "category", "deck": "category"}),
        "convert_dtypes": df.convert_dtypes(),
        "pyarrow backend": df.convert_dtypes(dtype_backend="pyarrow"),
    }


def other_frames(df: pd.DataFrame) -> dict:
    return {
        "polars": pl.from_pandas(df),
        "pyarrow Table": pa.Table.from_pandas(df, preserve_index=False),
    }


def select(X, cols):
    if isinstance(X, pd.DataFrame):
        return X[cols]
    return X.select(cols)


def oracle(est, method, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return getattr(est, method)(X)


def close(got, want, what):
    assert got.dtype == want.dtype, what
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("case", ["numeric", "tables", "forest"])
def test_pandas_dtypes(fitted, case):
    est = fitted[case]
    model = mlfast.compile(est)
    test = frame(60, 1)
    test.loc[3, "deck"] = "Z"  # unseen
    for name, X in pandas_forms(test).items():
        X = select(X, NUMERIC) if case == "numeric" else X
        for method in ("predict", "predict_proba"):
            try:
                want = oracle(est, method, X)
            except (ValueError, KeyError):
                # scikit-learn refuses pd.NA passed through a
                # ColumnTransformer's remainder (and its pyarrow-backed
                # columns there); mlfast reads NA as NaN
                assert (case, name) in REMAINDER_NA, (case, name)
                continue
            got = getattr(model, method)(X)
            if method == "predict":
                np.testing.assert_array_equal(got, want, err_msg=name)
            else:
                close(got, want, f"{case} {name}")


REMAINDER_NA = {
    ("forest", "nullable Int64/Float64"),
    ("forest", "convert_dtypes"),
    ("forest", "pyarrow backend"),
}


@pytest.mark.parametrize("case", ["numeric", "tables", "forest"])
@pytest.mark.parametrize("kind", ["polars", "pyarrow Table"])
def test_polars_and_pyarrow(fitted, case, kind):
    est = fitted[case]
    model = mlfast.compile(est)
    test = frame(60, 2)
    test.loc[5, "sex"] = "unknown"
    X = other_frames(test)[kind]
    X = select(X, NUMERIC) if case == "numeric" else X
    if (case, kind) == ("forest", "pyarrow Table"):
        # scikit-learn's ColumnTransformer has no adapter to pass a pyarrow
        # Table's columns through its remainder (mlfast reads them)
        with pytest.raises(ValueError, match="registered adapter"):
            est.predict_proba(X)
        return
    close(model.predict_proba(X), oracle(est, "predict_proba", X), f"{case} {kind}")
    np.testing.assert_array_equal(model.predict(X), oracle(est, "predict", X))
    one = X.slice(0, 1)
    close(model.predict_proba(one), oracle(est, "predict_proba", one), f"{case} {kind} one row")


@pytest.mark.parametrize("kind", ["polars", "pyarrow Table"])
def test_columns_by_name_in_any_order(fitted, kind):
    """A ColumnTransformer fitted on names selects them; a numeric pipeline
    checks them (a renamed column: scikit-learn's message)."""
    test = frame(30, 3)
    shuffled = other_frames(test[["deck", "fare", "sex", "sibsp", "age"]])[kind]
    est = fitted["tables"]
    close(mlfast.compile(est).predict_proba(shuffled), oracle(est, "predict_proba", shuffled), kind)
    renamed = other_frames(test[NUMERIC].rename(columns={"fare": "price"}))[kind]
    est = fitted["numeric"]
    with pytest.raises(ValueError) as want:
        est.predict(renamed)
    with pytest.raises(ValueError) as got:
        mlfast.compile(est).predict(renamed)
    assert str(got.value) == str(want.value)


@pytest.mark.parametrize("kind", ["polars", "pyarrow Table"])
def test_nulls_are_missing_values(fitted, kind):
    """A null in a numeric column is NaN (the imputer fills it), as
    scikit-learn reads it."""
    test = frame(40, 4)
    test.loc[::4, "fare"] = np.nan
    X = other_frames(test)[kind]
    if kind == "polars":
        X = X.with_columns(pl.col("fare").fill_nan(None))
    est = fitted["tables"]
    close(mlfast.compile(est).predict_proba(X), oracle(est, "predict_proba", X), kind)
