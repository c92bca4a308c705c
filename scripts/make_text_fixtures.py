#!/usr/bin/env python3
"""Record text models saved by older scikit-learn stacks, and their answers.

Run by hand, once, after scripts/make_version_fixtures.py has made its
virtualenvs (/tmp/mlfast-venvs/<stack>); its output is committed:

    python3 scripts/make_text_fixtures.py

For each stack it fits a few text pipelines on fixed documents (accents,
text already in NFKD, Greek, CJK, underscores) with that stack's
scikit-learn, saves them with its joblib as tests/fixtures/text/<stack>/
<name>.joblib (zlib) and records predict, predict_proba and
decision_function on the test documents (documents.json) in <name>.npz.  Read by
tests/test_versions_text.py.  Fixed seeds: rerunning changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "text"
VENVS = Path(os.environ.get("MLFAST_VENVS", "/tmp/mlfast-venvs"))
STACKS = ["sk0.21.3", "sk0.22.2", "sk0.24.2", "sk1.0.2", "sk1.2.2", "sk1.4.2", "sk1.5.2", "sk1.9.1"]

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "dog",
    "Café",
    "très",
    "naïve",
    "e\u0301te\u0301",
    "ΣΟΦΊΑ",
    "σοφία",
    "中文",
    "文本",
    "x_y",
    "123",
    "Straße",
    "ﬁne",
]

GENERATOR = r"""
import json, sys
import joblib
import numpy as np
from sklearn.feature_extraction.text import (CountVectorizer, HashingVectorizer,
                                             TfidfTransformer, TfidfVectorizer)
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

out, words = sys.argv[1], json.loads(sys.argv[2])
rng = np.random.RandomState(0)

def docs(n):
    return [" ".join(words[i] for i in rng.randint(0, len(words), rng.randint(0, 14)))
            for _ in range(n)]

train, test = docs(240), docs(40) + ["", "zebra quux", "e\u0301te\u0301 ΣΟΦΊΑ"]
y = np.array([(len(d) + d.count("a")) % 3 for d in train])
lr = dict(solver="lbfgs", max_iter=500)
if "multi_class" in LogisticRegression().get_params():
    lr["multi_class"] = "multinomial"
models = {
    "tfidf_bigrams_logreg": make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), stop_words=["on"]),
        LogisticRegression(**lr)),
    "tfidf_sublinear_accents_logreg": make_pipeline(
        TfidfVectorizer(sublinear_tf=True, strip_accents="unicode", norm="l1"),
        LogisticRegression(**lr)),
    "count_tfidf_sgd": make_pipeline(CountVectorizer(binary=True), TfidfTransformer(),
                                     SGDClassifier(loss="hinge", random_state=0, tol=1e-3,
                                                   max_iter=50)),
    "hashing_linearsvc": make_pipeline(HashingVectorizer(n_features=64, analyzer="char_wb",
                                                         ngram_range=(2, 3)), LinearSVC()),
}
answers = {}
for name, model in models.items():
    model.fit(train, y if name != "count_tfidf_sgd" else y % 2)
    joblib.dump(model, "%s/%s.joblib" % (out, name), compress=3)
    arrays = {}
    for method in ("predict", "predict_proba", "decision_function"):
        if hasattr(model, method):
            arrays[method] = np.asarray(getattr(model, method)(test))
    np.savez("%s/%s.npz" % (out, name), **arrays)
with open("%s/documents.json" % out, "w") as f:
    json.dump(test, f, ensure_ascii=True, indent=0)
"""


def main() -> None:
    for stack in sys.argv[1:] or STACKS:
        python = VENVS / stack / "bin" / "python"
        if not python.exists():
            print(f"{stack}: no virtualenv at {python}; run make_version_fixtures.py first")
            continue
        out = OUT / stack
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [str(python), "-W", "ignore", "-c", GENERATOR, str(out), json.dumps(WORDS)], check=True
        )
        print(f"{stack}: {sorted(p.name for p in out.iterdir())}")


if __name__ == "__main__":
    main()
