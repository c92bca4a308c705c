"""The models a server serves: ``ServedModel`` (a model under a name and
version, as protocols see it) and ``ModelRegistry`` (every version of every
model, published as one snapshot).

A request resolves its model once, at the start, and finishes on that
object whatever is loaded or unloaded meanwhile: changes publish a new
snapshot in one attribute assignment.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import warnings
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

import mlfast
from mlfast.serving.errors import InvalidInput, ModelNotFound, NotReady
from mlfast.serving.http import Request

log = logging.getLogger("mlfast.serving")

_PREDICT_FOR_KIND = {"classifier": "predict", "regressor": "predict", "transformer": "transform"}

# A file may claim any n_features_in_: past this many features, a row of
# zeros to learn the outputs' dtypes (8 MB) costs more than it tells, and
# past the second an example for the docs is too long to try by hand.
_PROBE_FEATURES = 1 << 20
_EXAMPLE_FEATURES = 10_000


def _quiet_feature_names_warning() -> None:
    """Rows reach a model positionally (rows sent by feature name are put in
    ``feature_names_in_`` order first), so a model fitted on a DataFrame
    would warn "X does not have valid feature names" on every request: the
    warning is meant for a bare array handed over by mistake.  Silenced for
    calls made from the serving modules only, once a model with feature
    names is served."""
    warnings.filterwarnings(
        "ignore",
        message="X does not have valid feature names",
        category=UserWarning,
        module=r"mlfast\.serving",
    )


class RequestStats:
    """What the model did for one request: compute seconds and rows.  The
    observing hook puts one in ``STATS`` for the request; ServedModel adds
    to it, so protocols need not know that anything is measured."""

    __slots__ = ("compute", "rows")

    def __init__(self) -> None:
        self.compute = 0.0
        self.rows = 0


STATS: contextvars.ContextVar[Optional[RequestStats]] = contextvars.ContextVar(
    "mlfast_request_stats", default=None
)


class ServedModel:
    """A model under a name and version, as protocols see it.

    ``predict(X)`` is the model's own answer (``transform`` for a
    transformer); ``method(name)`` gives any other method the estimator has.
    Both time the model's compute for the request being observed (see
    ``RequestStats``).  ``load_seconds``, ``file_size`` and ``sha256`` say
    how the model came to be served (the model repository fills them).
    """

    def __init__(
        self, model: "mlfast.Model", name: str, version: str = "1", source: Optional[str] = None
    ):
        self.model = model
        self.name = name
        self.version = version
        self.labels = (str(name), str(version))  # the version's metrics labels
        self.source = source
        self.ready = True
        self.kind = model.kind
        # a text model reads documents (strings), not rows of columns
        spec = getattr(model, "_spec", None)
        self.documents = getattr(spec, "text", None) is not None
        self.n_features = getattr(model, "n_features_in_", 1)
        self.feature_names = getattr(model, "feature_names_in_", None)
        # the model reads some columns as categories (strings, any value)
        self.tables = getattr(spec, "key_columns", None) is not None and not self.documents
        # the model reads dicts of features (a DictVectorizer first)
        self.dicts = (
            getattr(spec, "dict_input", None) is not None
            or (getattr(spec, "hash_input", None) or {}).get("input_type") == "dict"
        )
        if self.feature_names is not None:
            _quiet_feature_names_warning()
        self.classes = getattr(model, "classes_", None)
        # a multi-output classifier has a list of class arrays, one per output
        self.multi_output = isinstance(self.classes, list)
        self._predict = getattr(model, _PREDICT_FOR_KIND.get(self.kind, "predict"))
        self._output_specs: Dict[str, Any] = {}
        self.methods = tuple(
            m
            for m in (
                "predict",
                "predict_proba",
                "predict_log_proba",
                "decision_function",
                "transform",
            )
            if hasattr(model, m)
        )
        self.load_seconds: Optional[float] = None
        self.file_size: Optional[int] = None
        self.sha256: Optional[str] = None
        self.loaded_at = time.time()
        try:
            self.nbytes: Optional[int] = int(model.nbytes)
        except (AttributeError, TypeError, ValueError):
            self.nbytes = None

    def predict(self, X: Any) -> Any:
        stats = STATS.get()
        if stats is None:
            return self._predict(X)
        return _timed(self._predict, X, stats)

    def method(self, name: str) -> Callable[[np.ndarray], np.ndarray]:
        if name not in self.methods:
            raise InvalidInput(
                f"model {self.name!r} ({self.model.estimator}) has no method "
                f"{name!r}; it has {', '.join(self.methods)}"
            )
        fn = getattr(self.model, name)
        stats = STATS.get()
        if stats is None:
            return fn
        return lambda X: _timed(fn, X, stats)

    def output_spec(self, name: str) -> Optional[Tuple[np.dtype, Tuple[int, ...]]]:
        """The dtype and per-row shape of output ``name`` (``predict`` or a
        method), found by predicting one row of zeros: the Model does not
        say how many outputs a multi-output estimator has, nor the dtype of
        its labels.  None if the model refuses the row, or has too many
        features to probe."""
        if name not in self._output_specs:
            if (self.n_features or 1) > _PROBE_FEATURES:
                self._output_specs[name] = None
                return None
            fn = self._predict if name == "predict" else getattr(self.model, name)
            try:
                with np.errstate(all="ignore"):  # log(0) of a zero probability
                    out = fn([""] if self.documents else np.zeros((1, self.n_features or 1)))
            except (ValueError, TypeError):
                self._output_specs[name] = None
            else:
                if isinstance(out, list):  # a multi-output classifier's probabilities
                    out = np.hstack(out)
                self._output_specs[name] = (out.dtype, out.shape[1:])
        return self._output_specs[name]

    def example_row(self) -> List[float]:
        """A row for the docs' examples: the lesson's iris flower for a
        4-feature model, else 1, 2, 3, ... (fewer than the model takes
        when it takes more than an example can show)."""
        if self.n_features == 4:
            return [5.1, 3.5, 1.4, 0.2]
        return [float(i + 1) for i in range(min(self.n_features or 1, _EXAMPLE_FEATURES))]

    def describe(self) -> dict:
        out = {
            "name": self.name,
            "version": self.version,
            "estimator": self.model.estimator,
            "kind": self.kind,
            "n_features_in": self.n_features,
            "methods": list(self.methods),
            "sklearn_version": self.model.sklearn_version,
        }
        if self.feature_names is not None:
            out["feature_names_in"] = [str(n) for n in self.feature_names]
        if self.classes is not None:
            out["classes"] = (
                [c.tolist() for c in self.classes] if self.multi_output else self.classes.tolist()
            )
        mlflow = getattr(self.model, "mlflow", None)
        if mlflow is not None:
            out["mlflow"] = mlflow.summary()
        return out

    def __repr__(self) -> str:
        return f"<ServedModel {self.name}/{self.version} {self.model.estimator}>"


def _timed(fn: Callable[[Any], Any], X: Any, stats: RequestStats) -> Any:
    # only calls that answered count: rows predicted, time spent predicting
    start = time.perf_counter()
    out = fn(X)
    stats.compute += time.perf_counter() - start
    stats.rows = len(X)
    return out


def version_key(version: str) -> Tuple[int, int, str]:
    """Versions order as numbers when they are digits (TF Serving, Triton and
    KServe number them), and those rank above any other name, which orders
    as text."""
    if version.isdigit():
        return (1, int(version), "")
    return (0, 0, version)


class _Snapshot:
    """One published state of the registry; never changed once published."""

    __slots__ = ("models", "defaults", "default", "pins")

    def __init__(
        self,
        models: Dict[str, Dict[str, ServedModel]],
        pins: Dict[str, str],
        default_name: Optional[str],
    ):
        self.models = models
        self.pins = pins
        self.defaults: Dict[str, ServedModel] = {}
        for name, versions in models.items():
            pinned = pins.get(name)
            if pinned is not None and pinned in versions:
                self.defaults[name] = versions[pinned]
            elif versions:
                self.defaults[name] = versions[max(versions, key=version_key)]
        if default_name is not None:
            self.default = self.defaults.get(default_name)
        else:
            self.default = next(iter(self.defaults.values()), None)


class ModelRegistry:
    """The models a server serves, by name and version.

    A model's default version (what ``get(name)`` and the routes without a
    version answer with) is its highest version unless one is pinned
    (``pin``).  The default model (``default``: the lesson's ``/predict``,
    SageMaker, Vertex AI) is ``default_name``, else the first model added.
    Changes publish a new snapshot in one assignment; ``listeners`` are
    called with ``("loaded" | "unloaded", served)`` after each.
    """

    def __init__(self, models: Sequence[ServedModel] = (), *, default_name: Optional[str] = None):
        self._lock = threading.RLock()
        self._default_name = default_name
        self._pins: Dict[str, str] = {}
        self._snap = _Snapshot({}, {}, default_name)
        self.listeners: List[Callable[[str, ServedModel], None]] = []
        for m in models:
            self.add(m)

    # -- reading: one attribute read, then a consistent snapshot

    @property
    def default(self) -> ServedModel:
        served = self._snap.default
        if served is None:
            if self._default_name is not None:
                raise NotReady(f"model {self._default_name!r} is not loaded")
            raise NotReady("no model is loaded")
        return served

    @property
    def default_name(self) -> Optional[str]:
        if self._default_name is not None:
            return self._default_name
        served = self._snap.default
        return served.name if served is not None else None

    @property
    def ready(self) -> bool:
        snap = self._snap
        return snap.default is not None and all(
            m.ready for versions in snap.models.values() for m in versions.values()
        )

    def names(self) -> List[str]:
        return list(self._snap.models)

    def versions(self, name: str) -> List[str]:
        return sorted(self._snap.models.get(name, {}), key=version_key)

    def pins(self) -> Dict[str, str]:
        return dict(self._snap.pins)

    def models(self) -> List[ServedModel]:
        return [m for versions in self._snap.models.values() for m in versions.values()]

    def default_version(self, name: str) -> Optional[str]:
        served = self._snap.defaults.get(name)
        return served.version if served is not None else None

    def get(self, name: str, version: Optional[str] = None) -> ServedModel:
        snap = self._snap
        versions = snap.models.get(name)
        if not versions:
            known = ", ".join(repr(n) for n in snap.models) or "none"
            raise ModelNotFound(f"model {name!r} is not served here", f"models: {known}")
        if version is None or version == "":
            return snap.defaults[name]
        served = versions.get(version)
        if served is None:
            known = ", ".join(repr(v) for v in sorted(versions, key=version_key))
            raise ModelNotFound(f"model {name!r} has no version {version!r}", f"versions: {known}")
        return served

    def for_request(
        self, request: Request, name: Optional[str] = None, version: Optional[str] = None
    ) -> ServedModel:
        """``get`` (or the default model when ``name`` is None), remembered
        on the request: the model that answers it, for the response's
        ``X-Model-Name``/``X-Model-Version`` and the metrics."""
        served = self.default if name is None else self.get(name, version)
        request.served = served
        return served

    # -- changing: a new snapshot each time

    def _publish(self, models: Dict[str, Dict[str, ServedModel]]) -> None:
        self._snap = _Snapshot(models, dict(self._pins), self._default_name)

    def _notify(self, event: str, served: ServedModel) -> None:
        for listener in self.listeners:
            try:
                listener(event, served)
            except Exception:  # a listener must not break loading
                log.exception("registry listener failed on %s of %s", event, served)

    def add(self, served: ServedModel) -> None:
        self.replace(
            served.name, {**self._snap.models.get(served.name, {}), served.version: served}
        )

    def replace(self, name: str, versions: Mapping[str, ServedModel]) -> None:
        """Make ``versions`` the served versions of ``name`` (none: the model
        is unloaded), in one step."""
        with self._lock:
            old = self._snap.models.get(name, {})
            models = dict(self._snap.models)
            if versions:
                models[name] = dict(versions)
            else:
                models.pop(name, None)
            self._publish(models)
        for version, served in old.items():
            if versions.get(version) is not served:
                self._notify("unloaded", served)
        for version, served in versions.items():
            if old.get(version) is not served:
                self._notify("loaded", served)

    def remove(self, name: str, version: Optional[str] = None) -> None:
        versions = dict(self._snap.models.get(name, {}))
        if version is None:
            versions = {}
        else:
            versions.pop(version, None)
        self.replace(name, versions)

    def pin(self, name: str, version: Optional[str]) -> None:
        """Serve ``version`` of ``name`` by default (None: the highest again)."""
        with self._lock:
            if version is None:
                self._pins.pop(name, None)
            else:
                self._pins[name] = version
            self._publish(self._snap.models)
