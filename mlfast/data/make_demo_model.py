"""Regenerates iris_logreg.joblib, the demo model bundled with mlfast.

    python mlfast/data/make_demo_model.py

It is the lesson's model: a LogisticRegression fitted on the iris data set
and saved with ``joblib.dump(model, path)``.  Needs scikit-learn and joblib
(test dependencies; mlfast itself never imports them).
"""

from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def main() -> Path:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    path = Path(__file__).with_name("iris_logreg.joblib")
    joblib.dump(model, path)
    return path


if __name__ == "__main__":
    print(main())
