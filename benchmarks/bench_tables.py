"""Tables with strings: the pipeline of the issue on 10 mixed columns,
Pipeline(ColumnTransformer(numeric: SimpleImputer+StandardScaler,
categorical: SimpleImputer+OneHotEncoder), LogisticRegression or
RandomForest(100)), one row from a DataFrame and from a dict, and 10,000
rows, mlfast beside scikit-learn in the same run (in-process, best of
repeats: a quick timeit, not a load test).  Then text:
Pipeline(TfidfVectorizer, LogisticRegression) on one 30-word document and on
10,000 of them (medians of repeats).

    python benchmarks/bench_tables.py
"""

from __future__ import annotations

import timeit
import warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import mlfast

NUM = ["age", "fare", "income", "hours", "score"]
CAT = ["sex", "embarked", "deck", "job", "country"]


def data(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = {c: np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)) for c in NUM}
    for c, k in zip(CAT, (2, 4, 8, 12, 30)):
        col = rng.choice([f"{c}{i}" for i in range(k)], n).astype(object)
        col[rng.random(n) < 0.05] = None
        out[c] = col
    return pd.DataFrame(out)


def pipeline(final):
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUM),
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


def best_us(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


def median_us(fn, number: int, repeat: int = 9) -> float:
    return float(np.median(timeit.repeat(fn, number=number, repeat=repeat))) / number * 1e6


def documents(n: int, seed: int, words: int = 30) -> list:
    """Documents of `words` words drawn (Zipf-like) from a 5,000-word
    lexicon with accents and CJK, some words unseen at fit time."""
    rng = np.random.default_rng(seed)
    syllables = ["ka", "to", "ri", "mé", "lu", "sa", "ne", "zo", "pi", "da", "ü", "中", "文"]
    lexicon = np.array(
        ["".join(rng.choice(syllables, rng.integers(1, 4))) for _ in range(5000)], dtype=object
    )
    p = 1.0 / np.arange(1, lexicon.size + 1)
    p /= p.sum()
    return [" ".join(rng.choice(lexicon, words, p=p)) + "." for _ in range(n)]


def text_main() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    train = documents(5000, 0)
    y = np.array([len(d) % 2 for d in train])
    est = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=300)).fit(train, y)
    model = mlfast.compile(est)
    one = documents(1, 1)
    big = documents(10_000, 2)
    assert np.array_equal(model.predict(big), est.predict(big))
    print(
        f"\n{'text model':<22}{'input':<14}{'scikit-learn':>14}{'mlfast':>14}{'ratio':>9}"
        "   (medians)"
    )
    cases = [
        (
            "1 doc, 30 words",
            median_us(lambda: est.predict_proba(one), 50),
            median_us(lambda: model.predict_proba(one), 2000),
        ),
        (
            "10,000 docs",
            median_us(lambda: est.predict_proba(big), 1, 5),
            median_us(lambda: model.predict_proba(big), 1, 5),
        ),
    ]
    for label, sk, mf in cases:
        print(f"{'Tfidf+LogisticRegr.':<22}{label:<14}{sk:>11.1f} us{mf:>11.2f} us{sk / mf:>8.1f}x")


def main() -> None:
    train = data(5000)
    y = (train["age"].fillna(0) + (train["sex"] == "sex1")).gt(0.5).astype(int).to_numpy()
    one = data(1, 1)
    row = {
        k: (None if isinstance(v, float) and v != v else v)
        for k, v in one.iloc[0].to_dict().items()
    }
    big = data(10_000, 2)
    print(f"{'model':<22}{'input':<14}{'scikit-learn':>14}{'mlfast':>14}{'ratio':>9}")
    for name, final in (
        ("LogisticRegression", LogisticRegression(max_iter=300)),
        ("RandomForest(100)", RandomForestClassifier(100, max_depth=12, random_state=0)),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = pipeline(final).fit(train, y)
        model = mlfast.compile(est)
        assert np.array_equal(model.predict(big), est.predict(big))
        sk_one = best_us(lambda: est.predict_proba(one), 20)
        cases = [
            ("1-row frame", sk_one, best_us(lambda: model.predict_proba(one), 2000)),
            ("dict", sk_one, best_us(lambda: model.predict_proba(row), 5000)),
        ]
        sk_big = best_us(lambda: est.predict_proba(big), 1)
        cases.append(("10,000 rows", sk_big, best_us(lambda: model.predict_proba(big), 3)))
        for label, sk, mf in cases:
            print(f"{name:<22}{label:<14}{sk:>11.1f} us{mf:>11.2f} us{sk / mf:>8.0f}x")


if __name__ == "__main__":
    main()
    text_main()
