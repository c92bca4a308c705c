"""Writes tests/fixtures/gbdt/: XGBoost and LightGBM models saved by the
versions installed where it runs, with the answers those versions gave.

Run by hand in a virtual environment per version (the libraries' versions
pin their numpy and scikit-learn), e.g.::

    python -m venv /tmp/x17 && /tmp/x17/bin/pip install "numpy<2" \\
        scikit-learn==1.3.2 joblib xgboost==1.7.6 lightgbm==3.3.5
    /tmp/x17/bin/python scripts/make_gbdt_fixtures.py

Each library gets a folder named after its version (``xgboost-1.7.6``,
``lightgbm-3.3.5``) holding the model files (joblib pickles of the
scikit-learn wrappers, pickled Boosters, the library's own model files),
``X.npy`` (the rows asked) and ``answers.npz`` (``<file>:<method>`` ->
the library's answer); ``tests/test_gbdt_versions.py`` checks mlfast's
answers against them.  Models are tiny (a few trees) to keep the files
small; the same seeds make the same data in every version.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import joblib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "gbdt"
N_FEATURES = 5


def data(seed: int, n: int = 300):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    X[:, 2] = rng.integers(0, 12, n)  # category codes where asked for
    z = X[:, 0] + 0.5 * X[:, 1] ** 2 - (X[:, 2] % 3 == 0)
    X[rng.random(X.shape) < 0.08] = np.nan
    return X, z


def save(folder: Path, name: str, est, answers: dict, X: np.ndarray, methods) -> None:
    joblib.dump(est, folder / f"{name}.joblib")
    for method in methods:
        answer = np.asarray(getattr(est, method)(X))
        # string labels as numpy strings (an .npz loads no objects)
        answers[f"{name}.joblib:{method}"] = (
            answer.astype(str) if answer.dtype == object else answer
        )


def xgboost_fixtures() -> None:
    import xgboost as xgb

    folder = OUT / f"xgboost-{xgb.__version__}"
    folder.mkdir(parents=True, exist_ok=True)
    X, z = data(0)
    Xt, _ = data(1, 60)
    np.save(folder / "X.npy", Xt)
    answers: dict = {}
    binary, multi = (z > 0.3).astype(int), np.digitize(z, [-0.5, 0.5, 1.5])
    kw = dict(n_estimators=6, max_depth=3, random_state=0)
    if hasattr(xgb.XGBClassifier(), "use_label_encoder"):
        kw["use_label_encoder"] = False
    cls_proba = ("predict", "predict_proba")
    save(folder, "classifier", xgb.XGBClassifier(**kw).fit(X, binary), answers, Xt, cls_proba)
    save(folder, "multiclass", xgb.XGBClassifier(**kw).fit(X, multi), answers, Xt, cls_proba)
    save(folder, "regressor", xgb.XGBRegressor(**kw).fit(X, z), answers, Xt, ("predict",))
    save(
        folder,
        "poisson",
        xgb.XGBRegressor(objective="count:poisson", **kw).fit(X, np.round(np.exp(0.3 * z))),
        answers,
        Xt,
        ("predict",),
    )
    rf_kw = {k: v for k, v in kw.items() if k != "use_label_encoder"}
    save(folder, "rf_classifier", xgb.XGBRFClassifier(**kw).fit(X, binary), answers, Xt, cls_proba)
    save(folder, "rf_regressor", xgb.XGBRFRegressor(**rf_kw).fit(X, z), answers, Xt, ("predict",))
    qid = np.repeat(np.arange(30), 10)
    ranker = xgb.XGBRanker(**rf_kw)
    ranker.fit(X, np.clip(np.round(z), 0, 3).astype(int), qid=qid)
    save(folder, "ranker", ranker, answers, Xt, ("predict",))
    Xv, zv = data(2)
    stop = xgb.XGBClassifier(
        n_estimators=200,
        learning_rate=0.8,
        max_depth=4,
        random_state=0,
        early_stopping_rounds=2,
        **({"use_label_encoder": False} if "use_label_encoder" in kw else {}),
    )
    stop.fit(X, binary, eval_set=[(Xv, (zv > 0.3).astype(int))], verbose=False)
    save(folder, "early_stopping", stop, answers, Xt, cls_proba)
    # categorical splits on category codes (column 2), where the version has them
    try:
        types = ["q", "q", "c", "q", "q"]
        cat = xgb.XGBClassifier(
            enable_categorical=True,
            feature_types=types,
            tree_method="hist",
            max_cat_to_onehot=1,
            **kw,
        )
        cat.fit(X, ((X[:, 2] % 3 == 0) ^ (np.nan_to_num(X[:, 0]) > 0)).astype(int))
    except (TypeError, ValueError) as exc:
        print("no categorical fixture:", exc)
    else:
        save(folder, "categorical", cat, answers, Xt, cls_proba)
    # the Booster pickled alone, and the library's own files
    booster = xgb.XGBClassifier(**kw).fit(X, multi).get_booster()
    (folder / "booster.pkl").write_bytes(pickle.dumps(booster, protocol=4))
    answers["booster.pkl:predict"] = booster.predict(xgb.DMatrix(Xt))
    for suffix in ("json", "ubj"):
        path = folder / f"model.{suffix}"
        booster.save_model(str(path))
        answers[f"model.{suffix}:predict"] = booster.predict(xgb.DMatrix(Xt))
    np.savez(folder / "answers.npz", **answers)
    print(folder, len(answers), "answers")


def lightgbm_fixtures() -> None:
    import lightgbm as lgb

    folder = OUT / f"lightgbm-{lgb.__version__}"
    folder.mkdir(parents=True, exist_ok=True)
    X, z = data(0)
    Xt, _ = data(1, 60)
    np.save(folder / "X.npy", Xt)
    answers: dict = {}
    labels = np.array(["low", "mid", "high", "top"])
    binary, multi = labels[(z > 0.3).astype(int)], labels[np.digitize(z, [-0.5, 0.5, 1.5])]
    kw = dict(n_estimators=6, num_leaves=7, random_state=0, verbose=-1)
    cls = ("predict", "predict_proba")
    save(folder, "classifier", lgb.LGBMClassifier(**kw).fit(X, binary), answers, Xt, cls)
    save(folder, "multiclass", lgb.LGBMClassifier(**kw).fit(X, multi), answers, Xt, cls)
    save(folder, "regressor", lgb.LGBMRegressor(**kw).fit(X, z), answers, Xt, ("predict",))
    # a target the category codes decide, so that the trees split on them
    zc = z + 3.0 * np.isin(X[:, 2], [1, 4, 5, 9])
    cat_kw = dict(min_data_per_group=2, cat_smooth=1.0, cat_l2=1.0, min_child_samples=5, **kw)
    save(
        folder,
        "categorical",
        lgb.LGBMRegressor(**cat_kw).fit(X, zc, categorical_feature=[2]),
        answers,
        Xt,
        ("predict",),
    )
    save(
        folder,
        "categorical_no_missing",
        lgb.LGBMRegressor(use_missing=False, **cat_kw).fit(X, zc, categorical_feature=[2]),
        answers,
        Xt,
        ("predict",),
    )
    save(
        folder,
        "rf",
        lgb.LGBMRegressor(boosting_type="rf", subsample=0.7, subsample_freq=1, **kw).fit(X, z),
        answers,
        Xt,
        ("predict",),
    )
    qid = np.repeat(10, 30)
    save(
        folder,
        "ranker",
        lgb.LGBMRanker(**kw).fit(X, np.clip(np.round(z), 0, 3).astype(int), group=qid),
        answers,
        Xt,
        ("predict",),
    )
    booster = lgb.LGBMClassifier(**kw).fit(X, multi).booster_
    (folder / "booster.pkl").write_bytes(pickle.dumps(booster, protocol=4))
    answers["booster.pkl:predict"] = booster.predict(Xt)
    booster.save_model(str(folder / "model.txt"))
    answers["model.txt:predict"] = booster.predict(Xt)
    np.savez(folder / "answers.npz", **answers)
    print(folder, len(answers), "answers")


def catboost_fixtures() -> None:
    import catboost as cb

    folder = OUT / f"catboost-{cb.__version__}"
    folder.mkdir(parents=True, exist_ok=True)
    X, z = data(0)
    Xt, _ = data(1, 60)
    np.save(folder / "X.npy", Xt)
    answers: dict = {}
    kw = dict(iterations=8, depth=4, random_seed=0, verbose=0, allow_writing_files=False)
    labels = np.array(["low", "mid", "high", "top"])
    cls = ("predict", "predict_proba")
    save(
        folder,
        "classifier",
        cb.CatBoostClassifier(**kw).fit(X, labels[(z > 0.3).astype(int)]),
        answers,
        Xt,
        cls,
    )
    multi = cb.CatBoostClassifier(**kw).fit(X, np.digitize(z, [-0.5, 0.5, 1.5]))
    joblib.dump(multi, folder / "multiclass.joblib")
    answers["multiclass.joblib:predict"] = multi.predict(Xt)[:, 0]  # a column in CatBoost
    answers["multiclass.joblib:predict_proba"] = multi.predict_proba(Xt)
    reg = cb.CatBoostRegressor(**kw).fit(X, z)
    save(folder, "regressor", reg, answers, Xt, ("predict",))
    reg.save_model(str(folder / "model.cbm"))
    answers["model.cbm:predict"] = reg.predict(Xt)
    np.savez(folder / "answers.npz", **answers)
    print(folder, len(answers), "answers")


if __name__ == "__main__":
    which = sys.argv[1:] or ["xgboost", "lightgbm"]
    if "catboost" in which:
        catboost_fixtures()
    if "xgboost" in which:
        xgboost_fixtures()
    if "lightgbm" in which:
        lightgbm_fixtures()
