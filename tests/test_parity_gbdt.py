"""Differential tests: XGBoost and LightGBM models, through their
scikit-learn wrappers, Pipelines and native Boosters.

The oracle is each library's own predict / predict_proba.  XGBoost computes
in float32: mlfast's answers must be the same bits (and float32).
LightGBM computes in double: within 1e-12.  Labels are equal in every case.
The libraries are a test extra (``gbdt``); a module whose library has no
wheel for this Python is skipped.
"""

from __future__ import annotations

import pickle
import warnings
from typing import Any, Callable, Dict

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from support.variants import load_variant

import mlfast

RTOL = ATOL = 1e-12
N_FEATURES = 7
VARIANTS = ("joblib", "pickle-p2", "joblib-zlib3", "loads-bytes")


def rows(seed: int, n: int = 600, nan: float = 0.1, dtype=np.float64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    X[:, 3] = np.round(X[:, 3] * 3)  # ties on split values
    X[rng.random(X.shape) < nan] = np.nan
    return X.astype(dtype)


def target(X: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1]) ** 2 - np.nan_to_num(X[:, 2])
    z = z + 0.3 * rng.normal(size=len(z))
    if kind == "binary":
        return (z > 0.2).astype(int)
    if kind == "multi":
        return np.digitize(z, [-0.5, 0.5, 1.5])
    if kind == "unit":
        return 1 / (1 + np.exp(-z))
    if kind == "positive":
        return np.exp(0.3 * z) + 0.01
    if kind == "count":
        return rng.poisson(np.exp(0.3 * z))
    return z


def compare(
    oracle: Any,
    model: mlfast.Model,
    X: np.ndarray,
    exact: bool,
    where: str,
    methods=("predict", "predict_proba"),
) -> int:
    """Every method the oracle has, on X; returns how many were compared."""
    compared = 0
    for method in methods:
        if not hasattr(oracle, method):
            continue
        expected = getattr(oracle, method)(X)
        got = getattr(model, method)(X)
        label = f"{method}: {where}"
        if (
            method == "predict"
            and expected.ndim == 2
            and expected.shape[1] == 1
            and type(oracle).__name__.startswith("CatBoost")
        ):
            # CatBoost's multiclass predict is a column; mlfast's labels are 1-D
            expected = expected[:, 0]
        assert got.shape == expected.shape, label
        if method == "predict" and expected.dtype.kind in "iubUSO":
            np.testing.assert_array_equal(got, expected, err_msg=label)
        elif exact:
            assert got.dtype == expected.dtype, label
            np.testing.assert_array_equal(got, expected, err_msg=label)
        else:
            np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=label)
        compared += 1
    return compared


# ---- XGBoost ---------------------------------------------------------------------


def _xgb():
    return pytest.importorskip("xgboost")


XGB_CASES: Dict[str, Callable[[Any], Any]] = {
    "XGBClassifier binary": lambda x: (x.XGBClassifier(n_estimators=40, max_depth=4), "binary"),
    "XGBClassifier deep": lambda x: (
        x.XGBClassifier(n_estimators=150, max_depth=6, learning_rate=0.3),
        "binary",
    ),
    "XGBClassifier multi": lambda x: (x.XGBClassifier(n_estimators=30, max_depth=4), "multi"),
    "XGBClassifier softmax": lambda x: (
        x.XGBClassifier(n_estimators=20, objective="multi:softmax"),
        "multi",
    ),
    "XGBClassifier logitraw": lambda x: (
        x.XGBClassifier(n_estimators=20, objective="binary:logitraw"),
        "binary",
    ),
    "XGBClassifier base_score": lambda x: (
        x.XGBClassifier(n_estimators=10, base_score=0.3),
        "binary",
    ),
    "XGBClassifier lossguide": lambda x: (
        x.XGBClassifier(n_estimators=20, max_leaves=13, grow_policy="lossguide"),
        "binary",
    ),
    "XGBRFClassifier": lambda x: (x.XGBRFClassifier(n_estimators=12, max_depth=5), "binary"),
    "XGBRegressor": lambda x: (x.XGBRegressor(n_estimators=60, max_depth=5), "real"),
    "XGBRegressor logistic": lambda x: (
        x.XGBRegressor(n_estimators=20, objective="reg:logistic"),
        "unit",
    ),
    "XGBRegressor poisson": lambda x: (
        x.XGBRegressor(n_estimators=20, objective="count:poisson"),
        "count",
    ),
    "XGBRegressor gamma": lambda x: (
        x.XGBRegressor(n_estimators=20, objective="reg:gamma"),
        "positive",
    ),
    "XGBRegressor tweedie": lambda x: (
        x.XGBRegressor(n_estimators=20, objective="reg:tweedie"),
        "positive",
    ),
    "XGBRegressor absoluteerror": lambda x: (
        x.XGBRegressor(n_estimators=20, objective="reg:absoluteerror"),
        "real",
    ),
    "XGBRegressor pseudohuber": lambda x: (
        x.XGBRegressor(n_estimators=20, objective="reg:pseudohubererror"),
        "real",
    ),
    "XGBRFRegressor": lambda x: (x.XGBRFRegressor(n_estimators=10), "real"),
    "XGBRegressor dart": lambda x: (
        x.XGBRegressor(n_estimators=30, booster="dart", rate_drop=0.3, max_depth=4),
        "real",
    ),
    "XGBClassifier dart multi": lambda x: (
        x.XGBClassifier(n_estimators=15, booster="dart", rate_drop=0.2),
        "multi",
    ),
}


@pytest.mark.parametrize("case", sorted(XGB_CASES))
def test_xgboost_wrappers_give_xgboosts_bits(case: str, tmp_path) -> None:
    xgb = _xgb()
    est, kind = XGB_CASES[case](xgb)
    X = rows(1)
    est.fit(X, target(X, kind))
    Xt = rows(2, n=1000)
    # multi:softmax's predict_proba is scipy's softmax of float32 margins
    # (numpy's own float32 exp): not served
    methods = ("predict",) if "softmax" in case else ("predict", "predict_proba")
    for variant in VARIANTS:
        model = load_variant(est, variant, tmp_path)
        assert (
            compare(est, model, Xt, exact=True, where=f"{case} | {variant}", methods=methods) >= 1
        )
        # a single row and float32 rows
        compare(
            est, model, Xt[:1], exact=True, where=f"{case} | {variant} | 1 row", methods=methods
        )
        compare(
            est,
            model,
            Xt.astype(np.float32),
            exact=True,
            where=f"{case} | {variant} | float32",
            methods=methods,
        )
    if "softmax" in case:
        assert not hasattr(model, "predict_proba")


def test_xgboost_ranker(tmp_path) -> None:
    xgb = _xgb()
    X = rows(3)
    y = np.clip(np.round(target(X, "real")), 0, 3).astype(int)
    qid = np.repeat(np.arange(60), 10)
    est = xgb.XGBRanker(n_estimators=20, objective="rank:ndcg").fit(X, y, qid=qid)
    model = load_variant(est, "joblib", tmp_path)
    compare(est, model, rows(4), exact=True, where="XGBRanker")


def test_xgboost_early_stopping_uses_best_iteration(tmp_path) -> None:
    xgb = _xgb()
    X, Xv = rows(5), rows(6)
    est = xgb.XGBClassifier(
        n_estimators=300, learning_rate=0.5, early_stopping_rounds=3, max_depth=6
    )
    est.fit(X, target(X, "binary"), eval_set=[(Xv, target(Xv, "binary", 1))], verbose=False)
    assert est.best_iteration < 290
    model = load_variant(est, "joblib", tmp_path)
    compare(est, model, rows(7), exact=True, where="early stopping")


def test_xgboost_in_a_pipeline(tmp_path) -> None:
    xgb = _xgb()
    X = rows(8, nan=0.0)
    pipe = make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=25)).fit(
        X, target(X, "multi")
    )
    model = load_variant(pipe, "joblib", tmp_path)
    compare(pipe, model, rows(9, nan=0.0), exact=True, where="Pipeline")


def test_xgboost_native_booster(tmp_path) -> None:
    xgb = _xgb()
    X = rows(10)
    est = xgb.XGBClassifier(n_estimators=15).fit(X, target(X, "multi"))
    booster = est.get_booster()
    path = tmp_path / "booster.pkl"
    path.write_bytes(pickle.dumps(booster))
    model = mlfast.load(path)
    Xt = rows(11)
    expected = booster.predict(xgb.DMatrix(Xt))
    got = model.predict(Xt)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_xgboost_refuses_what_it_does_not_serve(tmp_path) -> None:
    xgb = _xgb()
    X = rows(12)
    est = xgb.XGBRegressor(n_estimators=3, booster="gblinear").fit(X, target(X, "real"))
    with pytest.raises(mlfast.UnsupportedModelError, match="gblinear"):
        load_variant(est, "joblib", tmp_path)
    est = xgb.XGBRegressor(n_estimators=3, missing=0.0).fit(X, target(X, "real"))
    with pytest.raises(mlfast.UnsupportedModelError, match="missing=0.0"):
        load_variant(est, "joblib", tmp_path)


# ---- LightGBM --------------------------------------------------------------------


def _lgb():
    return pytest.importorskip("lightgbm")


LGB_CASES: Dict[str, Callable[[Any], Any]] = {
    "LGBMClassifier binary": lambda m: (m.LGBMClassifier(n_estimators=40), "binary"),
    "LGBMClassifier multi": lambda m: (m.LGBMClassifier(n_estimators=30), "multi"),
    "LGBMClassifier deep": lambda m: (
        m.LGBMClassifier(n_estimators=120, num_leaves=63, min_child_samples=3),
        "binary",
    ),
    "LGBMClassifier use_missing=False": lambda m: (
        m.LGBMClassifier(n_estimators=20, use_missing=False),
        "binary",
    ),
    "LGBMRegressor": lambda m: (m.LGBMRegressor(n_estimators=50), "real"),
    "LGBMRegressor l1": lambda m: (m.LGBMRegressor(n_estimators=20, objective="l1"), "real"),
    "LGBMRegressor huber": lambda m: (m.LGBMRegressor(n_estimators=20, objective="huber"), "real"),
    "LGBMRegressor quantile": lambda m: (
        m.LGBMRegressor(n_estimators=20, objective="quantile", alpha=0.8),
        "real",
    ),
    "LGBMRegressor poisson": lambda m: (
        m.LGBMRegressor(n_estimators=20, objective="poisson"),
        "count",
    ),
    "LGBMRegressor gamma": lambda m: (
        m.LGBMRegressor(n_estimators=20, objective="gamma"),
        "positive",
    ),
    "LGBMRegressor tweedie": lambda m: (
        m.LGBMRegressor(n_estimators=20, objective="tweedie"),
        "positive",
    ),
    "LGBMRegressor dart": lambda m: (
        m.LGBMRegressor(n_estimators=20, boosting_type="dart"),
        "real",
    ),
    "LGBMRegressor rf": lambda m: (
        m.LGBMRegressor(n_estimators=15, boosting_type="rf", subsample=0.7, subsample_freq=1),
        "real",
    ),
    "LGBMClassifier rf": lambda m: (
        m.LGBMClassifier(n_estimators=15, boosting_type="rf", subsample=0.7, subsample_freq=1),
        "binary",
    ),
}


@pytest.mark.parametrize("case", sorted(LGB_CASES))
def test_lightgbm_wrappers_agree(case: str, tmp_path) -> None:
    lgb = _lgb()
    est, kind = LGB_CASES[case](lgb)
    est.set_params(verbose=-1)
    X = rows(21)
    y = target(X, kind)
    if kind == "binary" or kind == "multi":
        y = np.array(["cat", "dog", "emu", "fox"])[y]
    est.fit(X, y)
    Xt = rows(22, n=1000)
    for variant in VARIANTS:
        model = load_variant(est, variant, tmp_path)
        assert compare(est, model, Xt, exact=False, where=f"{case} | {variant}") >= 1
        compare(est, model, Xt[:1], exact=False, where=f"{case} | {variant} | 1 row")


def test_lightgbm_zero_as_missing(tmp_path) -> None:
    lgb = _lgb()
    X = rows(23)
    X[::3, 1] = 0.0
    est = lgb.LGBMRegressor(n_estimators=20, zero_as_missing=True, verbose=-1)
    est.fit(X, target(X, "real"))
    Xt = rows(24)
    Xt[::4, 1] = 0.0
    Xt[1::7, 0] = 1e-40
    try:
        model = load_variant(est, "joblib", tmp_path)
    except mlfast.UnsupportedModelError as exc:
        assert "missing_type Zero" in str(exc)
        return
    compare(est, model, Xt, exact=False, where="zero_as_missing")


def test_lightgbm_early_stopping_uses_best_iteration(tmp_path) -> None:
    lgb = _lgb()
    X, Xv = rows(25), rows(26)
    est = lgb.LGBMClassifier(n_estimators=400, learning_rate=0.5, verbose=-1)
    with warnings.catch_warnings():
        # lightgbm 4.7 deprecates eval_set for eval_X/eval_y, which 4.6 lacks
        warnings.filterwarnings("ignore", message=".*eval_set.*deprecated", category=Warning)
        est.fit(
            X,
            target(X, "binary"),
            eval_set=[(Xv, target(Xv, "binary", 1))],
            callbacks=[lgb.early_stopping(3, verbose=False)],
        )
    assert 0 < est.best_iteration_ < 390
    model = load_variant(est, "joblib", tmp_path)
    compare(est, model, rows(27), exact=False, where="early stopping")


def test_lightgbm_in_a_pipeline_and_native_booster(tmp_path) -> None:
    lgb = _lgb()
    X = rows(28, nan=0.0)
    pipe = make_pipeline(StandardScaler(), lgb.LGBMClassifier(n_estimators=20, verbose=-1))
    pipe.fit(X, target(X, "multi"))
    compare(
        pipe,
        load_variant(pipe, "joblib", tmp_path),
        rows(29, nan=0.0),
        exact=False,
        where="Pipeline",
    )
    booster = pipe[-1].booster_
    path = tmp_path / "booster.pkl"
    path.write_bytes(pickle.dumps(booster))
    Xt = rows(30)
    np.testing.assert_allclose(
        mlfast.load(path).predict(Xt), booster.predict(Xt), rtol=RTOL, atol=ATOL
    )


# ---- the libraries' own files ------------------------------------------------------


@pytest.mark.parametrize("suffix", ["json", "ubj"])
def test_xgboost_model_files(suffix: str, tmp_path) -> None:
    xgb = _xgb()
    X = rows(31)
    est = xgb.XGBClassifier(n_estimators=25, max_depth=5).fit(X, target(X, "multi"))
    path = tmp_path / f"model.{suffix}"
    est.save_model(path)
    Xt = rows(32)
    expected = est.get_booster().predict(xgb.DMatrix(Xt))
    for model in (mlfast.load(path), mlfast.loads(path.read_bytes()), mlfast.load(str(path))):
        got = model.predict(Xt)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_lightgbm_model_file(tmp_path) -> None:
    lgb = _lgb()
    X = rows(33)
    est = lgb.LGBMRegressor(n_estimators=30, verbose=-1).fit(X, target(X, "real"))
    path = tmp_path / "model.txt"
    est.booster_.save_model(path)
    Xt = rows(34)
    np.testing.assert_allclose(
        mlfast.load(path).predict(Xt), est.booster_.predict(Xt), rtol=RTOL, atol=ATOL
    )


# ---- categorical splits ------------------------------------------------------------


def category_rows(seed: int, n: int = 800) -> np.ndarray:
    """Columns 1 and 4 hold category codes (0..60), NaN, and in test rows
    the awkward values: negative, fractional, beyond every category."""
    X = rows(seed, n)
    rng = np.random.default_rng(seed)
    for j in (1, 4):
        X[:, j] = rng.integers(0, 60, n).astype(float)
        X[rng.random(n) < 0.08, j] = np.nan
    return X


def awkward(X: np.ndarray) -> np.ndarray:
    X = X.copy()
    X[::17, 1] = -1.0
    X[1::17, 1] = -0.5
    X[2::17, 1] = 2.5
    X[3::17, 4] = 1e6
    X[4::17, 4] = 3e9
    X[5::17, 1] = 33.999
    return X


def category_target(X: np.ndarray) -> np.ndarray:
    c = np.nan_to_num(X[:, 1], nan=7)
    return (((c % 5) < 2) ^ (np.nan_to_num(X[:, 0]) > 0.3) ^ (np.nan_to_num(X[:, 4]) > 40)).astype(
        int
    )


@pytest.mark.parametrize("onehot", [1, 64])
def test_xgboost_categorical_splits(onehot: int, tmp_path) -> None:
    xgb = _xgb()
    X = category_rows(40)
    types = ["q"] * N_FEATURES
    types[1] = types[4] = "c"
    est = xgb.XGBClassifier(
        n_estimators=30,
        max_depth=5,
        enable_categorical=True,
        feature_types=types,
        max_cat_to_onehot=onehot,
    )
    est.fit(X, category_target(X))
    Xt = category_rows(41)
    model = load_variant(est, "joblib", tmp_path)
    compare(est, model, Xt, exact=True, where=f"categorical onehot={onehot}")
    # awkward values: XGBoost refuses negative and too-large categories
    # ("Invalid categorical value"), so only fractional ones are compared
    Xf = Xt.copy()
    Xf[2::17, 1] = 2.5
    Xf[5::17, 1] = 33.999
    compare(est, model, Xf, exact=True, where="categorical, fractional codes")


def test_lightgbm_categorical_splits(tmp_path) -> None:
    lgb = _lgb()
    X = category_rows(42)
    est = lgb.LGBMClassifier(
        n_estimators=30, verbose=-1, min_data_per_group=5, cat_smooth=1, max_cat_threshold=40
    )
    est.fit(X, category_target(X), categorical_feature=[1, 4])
    model = load_variant(est, "joblib", tmp_path)
    Xt = category_rows(43)
    compare(est, model, Xt, exact=False, where="categorical")
    compare(est, model, awkward(Xt), exact=False, where="categorical, awkward codes")
    reg = lgb.LGBMRegressor(n_estimators=20, verbose=-1, min_data_per_group=5).fit(
        X, np.nan_to_num(X[:, 0]) + category_target(X), categorical_feature=[1, 4]
    )
    compare(
        reg,
        load_variant(reg, "pickle-p2", tmp_path),
        awkward(Xt),
        exact=False,
        where="categorical regressor",
    )


# ---- CatBoost --------------------------------------------------------------------


def _cb():
    return pytest.importorskip("catboost")


CB_CASES: Dict[str, Callable[[Any], Any]] = {
    "CatBoostClassifier binary": lambda c: (c.CatBoostClassifier(iterations=40, depth=5), "binary"),
    "CatBoostClassifier nan_mode=Max": lambda c: (
        c.CatBoostClassifier(iterations=20, nan_mode="Max"),
        "binary",
    ),
    "CatBoostClassifier multi": lambda c: (c.CatBoostClassifier(iterations=30, depth=4), "multi"),
    "CatBoostRegressor": lambda c: (c.CatBoostRegressor(iterations=50, depth=6), "real"),
    "CatBoostRegressor MAE": lambda c: (
        c.CatBoostRegressor(iterations=20, loss_function="MAE"),
        "real",
    ),
    "CatBoostRegressor Poisson": lambda c: (
        c.CatBoostRegressor(iterations=20, loss_function="Poisson"),
        "count",
    ),
    "CatBoostRegressor Tweedie": lambda c: (
        c.CatBoostRegressor(iterations=20, loss_function="Tweedie:variance_power=1.5"),
        "positive",
    ),
}


@pytest.mark.parametrize("case", sorted(CB_CASES))
def test_catboost_wrappers_agree(case: str, tmp_path) -> None:
    cb = _cb()
    est, kind = CB_CASES[case](cb)
    est.set_params(verbose=0, allow_writing_files=False, random_seed=0)
    X = rows(51)
    y = target(X, kind)
    if kind in ("binary", "multi") and "binary" in case:
        y = np.array(["no", "yes"])[y]
    est.fit(X, y)
    Xt = rows(52, n=1000)
    for variant in ("joblib", "pickle-p2"):
        model = load_variant(est, variant, tmp_path)
        methods = ("predict", "predict_proba") if "Classifier" in case else ("predict",)
        assert (
            compare(est, model, Xt, exact=False, where=f"{case} | {variant}", methods=methods) >= 1
        )
        compare(est, model, Xt[:1], exact=False, where=f"{case} | 1 row", methods=methods)


def test_catboost_model_file_and_refusals(tmp_path) -> None:
    cb = _cb()
    X = rows(53)
    est = cb.CatBoostRegressor(iterations=20, verbose=0, allow_writing_files=False)
    est.fit(X, target(X, "real"))
    path = tmp_path / "model.cbm"
    est.save_model(str(path))
    Xt = rows(54)
    np.testing.assert_allclose(mlfast.load(path).predict(Xt), est.predict(Xt), rtol=RTOL, atol=ATOL)
    import pandas as pd

    frame = pd.DataFrame(np.nan_to_num(X), columns=[f"f{i}" for i in range(N_FEATURES)])
    frame["colour"] = np.array(["red", "green", "blue"])[np.arange(len(frame)) % 3]
    cat = cb.CatBoostClassifier(iterations=5, verbose=0, allow_writing_files=False)
    cat.fit(frame, target(X, "binary"), cat_features=["colour"])
    with pytest.raises(mlfast.UnsupportedModelError, match="categorical features"):
        load_variant(cat, "joblib", tmp_path)


# ---- DataFrames, ColumnTransformers, inspect ---------------------------------------


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_dataframes_column_transformers_and_inspect(library: str, tmp_path) -> None:
    lib = _xgb() if library == "xgboost" else _lgb()
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(60)
    df = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"])
    df["colour"] = np.array(["red", "green", "blue"])[rng.integers(0, 3, 400)]
    y = (df.a + (df.colour == "red") > 0.2).astype(int)
    est = (
        lib.XGBClassifier(n_estimators=15)
        if library == "xgboost"
        else lib.LGBMClassifier(n_estimators=15, verbose=-1)
    )
    pipe = make_pipeline(
        ColumnTransformer(
            [("num", StandardScaler(), ["a", "b", "c"]), ("cat", OneHotEncoder(), ["colour"])]
        ),
        est,
    )
    pipe.fit(df, y)
    model = load_variant(pipe, "joblib", tmp_path)
    compare(pipe, model, df, exact=library == "xgboost", where=f"{library} ColumnTransformer")
    # fitted on a DataFrame: its column names are the model's
    alone = type(est)(**est.get_params()).fit(df[["a", "b", "c"]], y)
    model = load_variant(alone, "joblib", tmp_path)
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    compare(alone, model, df[["a", "b", "c"]], exact=library == "xgboost", where="DataFrame")
    text = mlfast.inspect(pickle.dumps(alone))
    assert type(alone).__name__ in text
