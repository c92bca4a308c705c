"""The models the benchmarks time, their test rows, and their ONNX graphs.

Every model is fitted here with a fixed seed and saved by ``joblib.dump``, as
the lesson saves its model; each engine then reads that same file (mlfast
and joblib directly, ONNX Runtime through skl2onnx's conversion of the
unpickled estimator).  Files are cached in the work folder, keyed by the
scikit-learn version and the model's parameters.

    iris_lr    mlfast's bundled demo model: LogisticRegression on iris (4 features, 3 classes)
    pipe_lr    Pipeline(StandardScaler, LogisticRegression): 20 features, 3 classes
    wide_lr    LogisticRegression: 200 features, 10 classes
    rf100      RandomForestClassifier: 100 trees, max_depth 10, 20 features, 2 classes
    vote3      soft VotingClassifier(LogisticRegression, RandomForest 50, HistGradientBoosting 50)
    stack3     StackingClassifier of the same three members (LogisticRegression on top)
    et100      ExtraTreesClassifier: 100 trees, max_depth 10, same data
    gb100      GradientBoostingClassifier: 100 trees of depth 3, same data
    hgb100     HistGradientBoostingClassifier: 100 iterations (31 leaves), same data
    pca_lr     Pipeline(PCA(10, whiten=True), LogisticRegression): 20 features, 3 classes

The tree models are binary, so "100 trees" is 100 trees for the boosted
models too (a 3-class booster fits 3 trees an iteration).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

N_TEST = 100_000
N_TEST_QUICK = 2_000


@dataclass
class Spec:
    key: str
    title: str
    make: Callable[[bool], object]  # quick -> unfitted estimator
    data: Callable[[bool, int], Tuple[np.ndarray, np.ndarray, np.ndarray]]  # -> X_train, y, X_test
    describe: str = ""


@dataclass
class BenchModel:
    key: str
    title: str
    path: Path
    n_features: int
    describe: str
    X_test: np.ndarray = field(repr=False)
    onnx: Optional[Dict[str, object]] = None


def _classification(
    n_train: int,
    n_test: int,
    n_features: int,
    n_informative: int,
    n_classes: int,
    seed: int,
    rescale: bool = False,
):
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n_train + n_test,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=min(5, n_features // 4),
        n_classes=n_classes,
        flip_y=0.05,
        class_sep=1.0,
        random_state=seed,
    )
    if rescale:  # features in unlike units, so the scaler has work to do
        rng = np.random.default_rng(seed)
        X = X * rng.uniform(0.1, 100, n_features) + rng.uniform(-50, 50, n_features)
    return X[:n_train], y[:n_train], np.ascontiguousarray(X[n_train:])


def _iris_rows(quick: bool, n_test: int):
    """Iris rows plus a little noise: as many test rows as asked for."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    rng = np.random.default_rng(0)
    rows = iris.data[rng.integers(0, len(iris.data), n_test)]
    X_test = np.round(rows + rng.normal(0, 0.1, rows.shape), 2)
    return iris.data, iris.target, np.ascontiguousarray(X_test)


def _tree_data(quick: bool, n_test: int):
    return _classification(500 if quick else 10_000, n_test, 20, 10, 2, seed=2)


def _specs() -> List[Spec]:
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
        StackingClassifier,
        VotingClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    def trees(quick):
        return 5 if quick else 100

    def depth(quick):
        return 4 if quick else 10

    def members(quick):
        n = 5 if quick else 50
        return [
            ("lr", LogisticRegression(max_iter=1000)),
            ("rf", RandomForestClassifier(n_estimators=n, max_depth=depth(quick), random_state=0)),
            (
                "hgb",
                HistGradientBoostingClassifier(max_iter=n, early_stopping=False, random_state=0),
            ),
        ]

    return [
        Spec(
            "iris_lr",
            "iris LogisticRegression",
            None,
            _iris_rows,
            "mlfast.demo_model_path(): LogisticRegression(max_iter=1000) on iris, 4 features, 3 classes",
        ),
        Spec(
            "pipe_lr",
            "StandardScaler + LogisticRegression",
            lambda q: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
            lambda q, n: _classification(500 if q else 5_000, n, 20, 10, 3, seed=1, rescale=True),
            "Pipeline(StandardScaler, LogisticRegression), 20 features, 3 classes",
        ),
        Spec(
            "wide_lr",
            "wide LogisticRegression",
            lambda q: LogisticRegression(max_iter=300 if q else 2000),
            lambda q, n: _classification(
                1_000 if q else 20_000, n, 50 if q else 200, 20 if q else 60, 10, seed=3
            ),
            "LogisticRegression, 200 features, 10 classes (multinomial)",
        ),
        Spec(
            "rf100",
            "RandomForest 100 trees",
            lambda q: RandomForestClassifier(
                n_estimators=trees(q), max_depth=depth(q), random_state=0, n_jobs=-1
            ),
            _tree_data,
            "RandomForestClassifier(n_estimators=100, max_depth=10), 20 features, 2 classes",
        ),
        Spec(
            "et100",
            "ExtraTrees 100 trees",
            lambda q: ExtraTreesClassifier(
                n_estimators=trees(q), max_depth=depth(q), random_state=0, n_jobs=-1
            ),
            _tree_data,
            "ExtraTreesClassifier(n_estimators=100, max_depth=10), same data",
        ),
        Spec(
            "gb100",
            "GradientBoosting 100",
            lambda q: GradientBoostingClassifier(n_estimators=trees(q), random_state=0),
            _tree_data,
            "GradientBoostingClassifier(n_estimators=100) (depth 3), same data",
        ),
        Spec(
            "hgb100",
            "HistGradientBoosting 100",
            lambda q: HistGradientBoostingClassifier(
                max_iter=trees(q), early_stopping=False, random_state=0
            ),
            _tree_data,
            "HistGradientBoostingClassifier(max_iter=100, early_stopping=False) "
            "(31 leaves a tree), same data",
        ),
        Spec(
            "vote3",
            "soft Voting (LR, RF 50, HGB 50)",
            lambda q: VotingClassifier(members(q), voting="soft"),
            _tree_data,
            "VotingClassifier(voting='soft') of LogisticRegression, "
            "RandomForestClassifier(50, max_depth=10), "
            "HistGradientBoostingClassifier(max_iter=50), same data",
        ),
        Spec(
            "stack3",
            "Stacking (LR, RF 50, HGB 50)",
            lambda q: StackingClassifier(members(q)),
            _tree_data,
            "StackingClassifier of the same three members, LogisticRegression on top, same data",
        ),
        Spec(
            "pca_lr",
            "PCA + LogisticRegression",
            lambda q: make_pipeline(
                PCA(10, whiten=True, random_state=0), LogisticRegression(max_iter=2000)
            ),
            lambda q, n: _classification(500 if q else 5_000, n, 20, 10, 3, seed=5),
            "Pipeline(PCA(10, whiten=True), LogisticRegression), 20 features, 3 classes",
        ),
        Spec(
            "svc_rbf",
            "SVC rbf (~500 SVs)",
            lambda q: SVC(kernel="rbf", C=1.0),
            lambda q, n: _classification(300 if q else 700, n, 20, 10, 3, seed=4),
            "SVC(kernel='rbf'), 20 features, 3 classes, ~500 support vectors (700 training rows)",
        ),
        Spec(
            "knn10k",
            "KNeighbors on 10,000 rows",
            lambda q: KNeighborsClassifier(n_neighbors=5),
            lambda q, n: _classification(500 if q else 10_000, n, 10, 6, 3, seed=5),
            "KNeighborsClassifier(n_neighbors=5) on 10,000 training rows, 10 features "
            "(algorithm auto: a KD-tree)",
        ),
        Spec(
            "mlp2x100",
            "MLP 2 x 100",
            lambda q: MLPClassifier(
                hidden_layer_sizes=(100, 100), max_iter=20 if q else 200, random_state=0
            ),
            lambda q, n: _classification(500 if q else 5_000, n, 20, 10, 3, seed=6),
            "MLPClassifier(hidden_layer_sizes=(100, 100)), relu, 20 features, 3 classes",
        ),
        Spec(
            "gnb",
            "GaussianNB",
            lambda q: GaussianNB(),
            lambda q, n: _classification(500 if q else 5_000, n, 20, 10, 3, seed=7),
            "GaussianNB, 20 features, 3 classes",
        ),
    ]


KEYS = [
    "iris_lr",
    "pipe_lr",
    "wide_lr",
    "rf100",
    "et100",
    "gb100",
    "hgb100",
    "vote3",
    "stack3",
    "pca_lr",
    "svc_rbf",
    "knn10k",
    "mlp2x100",
    "gnb",
]


def build(
    work: Path,
    quick: bool,
    keys: Optional[List[str]] = None,
    n_test: Optional[int] = None,
    log=print,
) -> List[BenchModel]:
    """Fit (or reuse) each model and return it with its test rows."""
    import joblib
    import sklearn

    import mlfast

    n_test = n_test or (N_TEST_QUICK if quick else N_TEST)
    wanted = keys or KEYS
    models = []
    for spec in _specs():
        if spec.key not in wanted:
            continue
        X_train, y_train, X_test = spec.data(quick, n_test)
        if spec.make is None:
            path = Path(mlfast.demo_model_path())
        else:
            est = spec.make(quick)
            tag = hashlib.sha1(f"{est!r}|{X_train.shape}|{quick}".encode()).hexdigest()[:10]
            path = work / "models" / f"{spec.key}-sklearn{sklearn.__version__}-{tag}.joblib"
            if not path.exists():
                log(f"fitting {spec.key} ...")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est.fit(X_train, y_train)
                if hasattr(est, "n_jobs"):
                    est.n_jobs = None  # predict as a default-built forest does
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")  # atomic, even with a neighbour
                joblib.dump(est, tmp)
                tmp.replace(path)
        models.append(
            BenchModel(spec.key, spec.title, path, X_test.shape[1], spec.describe, X_test)
        )
    return models


# -- ONNX ----------------------------------------------------------------------


def onnx_available() -> Optional[str]:
    """None when skl2onnx and onnxruntime import, else why not."""
    try:
        import onnxruntime  # noqa: F401
        import skl2onnx  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install -e '.[bench]')"
    return None


def _patch_skl2onnx() -> None:
    """skl2onnx 1.20 passes Python's False as the missing-value flag of
    HistGradientBoosting leaves, and onnx >= 1.18 refuses a bool in an ints
    attribute ("Expected an int, got a boolean"), so no HGB model converts.
    The flag means 0/1, so the cast changes nothing else."""
    import skl2onnx.common.tree_ensemble as tree_ensemble

    if getattr(tree_ensemble.add_node, "_mlfast_bench", False):
        return
    original = tree_ensemble.add_node

    def add_node(*args, **kwargs):
        if "nodes_missing_value_tracks_true" in kwargs:
            kwargs["nodes_missing_value_tracks_true"] = int(
                kwargs["nodes_missing_value_tracks_true"]
            )
        return original(*args, **kwargs)

    add_node._mlfast_bench = True
    tree_ensemble.add_node = add_node


def _write_atomic(path: Path, data: bytes) -> None:
    """Scripts may run side by side on one work folder (the smoke test does):
    a reader sees the old file or the whole new one."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def onnx_graph(model: BenchModel, work: Path, log=print) -> Dict[str, object]:
    """Convert ``model``'s estimator with skl2onnx: float64 where skl2onnx's
    graph runs in ONNX Runtime, else float32.  Returns {'path', 'dtype',
    'note'} (path None when neither converts).  Graphs, and the reason a
    graph did not run, are cached in the work folder, keyed by the model
    file's bytes and the converter's and runtime's versions."""
    from importlib.metadata import version

    notes = []
    est = None
    key = hashlib.sha1(
        model.path.read_bytes()
        + f"|{version('skl2onnx')}|{version('onnxruntime')}|{version('onnx')}".encode()
    ).hexdigest()[:10]
    for dtype in ("float64", "float32"):
        path = work / "onnx" / f"{model.path.stem}-{key}-{dtype}.onnx"
        refused = path.with_suffix(".refused")
        if refused.exists():
            notes.append(refused.read_text())
            continue
        if not path.exists():
            import joblib
            import onnxruntime as ort
            from skl2onnx import convert_sklearn
            from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

            _patch_skl2onnx()
            if est is None:
                est = joblib.load(model.path)
                if hasattr(est, "flatten_transform"):
                    # skl2onnx converts a VotingClassifier only with this off;
                    # it changes transform's shape, not predict
                    est.flatten_transform = False
            tensor = DoubleTensorType if dtype == "float64" else FloatTensorType
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    final = est.steps[-1][1] if hasattr(est, "steps") else est
                    onx = convert_sklearn(
                        est,
                        initial_types=[("X", tensor([None, model.n_features]))],
                        options={id(final): {"zipmap": False}},
                    )
                data = onx.SerializeToString()
                sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
                sess.run(None, {"X": model.X_test[:2].astype(dtype)})
            except Exception as exc:  # noqa: BLE001 - any failure means: try float32
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                notes.append(f"{dtype}: {first[:160]}")
                _write_atomic(refused, notes[-1].encode())
                log(f"  skl2onnx {dtype} graph of {model.key} does not run: {first[:160]}")
                continue
            _write_atomic(path, data)
        return {"path": path, "dtype": dtype, "note": "; ".join(notes)}
    return {"path": None, "dtype": None, "note": "; ".join(notes)}


class OnnxEngine:
    """An InferenceSession that predicts labels from float64 rows (cast to
    float32 first when the graph is float32: that cast is part of its cost)."""

    def __init__(self, path: Path, dtype: str):
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.dtype = np.dtype(dtype)
        self.input = self.session.get_inputs()[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        self.label = outputs[0]
        self.proba = outputs[1] if len(outputs) > 1 else None

    def predict(self, X: np.ndarray) -> np.ndarray:
        if X.dtype != self.dtype:
            X = X.astype(self.dtype)
        return self.session.run([self.label], {self.input: X})[0]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.session.run([self.proba], {self.input: X.astype(self.dtype)})[0]
