"""The framework-neutral serving core: requests, responses, routes, served models.

A protocol module (``lesson``, ``sagemaker``, ``vertex``, ``kserve``) turns a
``Request`` into a ``Response`` and declares its routes as data (``Route``).
An adapter (``serving.fastapi``, ``serving.flask``) maps those routes onto a
web framework: it builds a ``Request`` from the framework's request, calls
``Service.handle`` and writes the ``Response`` back.  Neither side knows the
other: a protocol never sees a framework object, an adapter never reads a
body.

``Service.handle`` is the one place where errors become answers: an
``HttpError`` or a ``ValueError`` from decoding or predicting (the client's
mistake) becomes a 4xx with ``{"error": message}``; anything else becomes a
500 whose body says nothing about the server (the traceback goes to the log).
Hooks (``Service.hooks``) wrap every call; each level turns errors into
answers, so a hook always gets a Response from ``call_next`` and sees the
status the client will see.  Operations (request ids, metrics, auth) are
such hooks: ``serving.ops``.

``ModelRegistry`` holds every version of every model served and publishes
changes as one new snapshot (an attribute swap): a request resolves its
model once, at the start, and finishes on that object whatever is loaded or
unloaded meanwhile.
"""
from __future__ import annotations

import contextvars
import hashlib
import hmac
import logging
import os
import re
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import orjson

import mlfast

log = logging.getLogger("mlfast.serving")

# Request size caps (bytes).  The default guards every route; a protocol
# whose platform has a smaller limit declares it on its routes (Vertex AI
# public endpoints: 1.5 MB; SageMaker real-time endpoints: 6 MB).
DEFAULT_MAX_BODY = 16 * 1024 * 1024

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY

# Rows arrive positionally (rows sent by feature name are put in
# feature_names_in_ order first), so the model's "X does not have valid
# feature names" warning, meant for a DataFrame-fitted model handed a bare
# array by mistake, would fire on every request.  Silenced only for calls
# made from the serving modules.
warnings.filterwarnings("ignore", message="X does not have valid feature names",
                        category=UserWarning, module=r"mlfast\.serving")


class Request:
    """What a protocol handler sees of an HTTP request.

    ``headers`` has lower-case names.  ``body`` is the whole body, already
    capped by the adapter at the route's ``max_body``; ``client`` the peer's
    address when the adapter knows it.  ``id`` (the request id), ``served``
    (the model that answered) and ``error_kind`` are filled in while the
    request is handled, for the hooks that log and count it.
    """

    __slots__ = ("method", "path", "params", "headers", "body", "query", "client", "id",
                 "served", "error_kind")

    def __init__(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes = b"",
        query: str = "",
        client: str = "",
    ):
        self.method = method
        self.path = path
        self.params = params
        self.headers = headers
        self.body = body
        self.query = query
        self.client = client
        self.id: Optional[str] = None
        self.served: Optional["ServedModel"] = None
        self.error_kind: Optional[str] = None

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return self.headers.get(name, default)

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower case ('' when absent)."""
        return media_type(self.headers.get("content-type", ""))


class Response:
    """What a protocol handler answers: status, body bytes, content type, headers."""

    __slots__ = ("status", "body", "content_type", "headers")

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: Optional[Dict[str, str]] = None,
    ):
        self.status = int(status)  # an HTTPStatus too: the metrics' keys take plain ints
        self.body = body
        self.content_type = content_type
        self.headers = headers if headers is not None else {}

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.content_type} {self.body[:80]!r}>"


class HttpError(Exception):
    """A client-facing error: status and a message that says what was wrong."""

    def __init__(self, status: int, message: str, headers: Optional[Dict[str, str]] = None,
                 kind: Optional[str] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.kind = kind or ERROR_KINDS.get(status, "client_error" if status < 500 else "server_error")


# The ``kind`` label of the errors metric and the access log, by status; an
# HttpError may name its own (a ValueError from decoding or predicting is
# "invalid_input").
ERROR_KINDS = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 408: "timeout", 409: "conflict",
    413: "too_large", 415: "unsupported_media_type", 429: "too_many_requests",
    500: "internal", 503: "unavailable", 504: "timeout",
}


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def dumps(value: Any) -> bytes:
    """JSON bytes with orjson; ndarrays and numpy scalars are written
    natively, string and object arrays through ``tolist``."""
    return orjson.dumps(value, default=_json_default, option=_JSON_OPTIONS)


def _json_default(value: Any) -> Any:
    # orjson hands over what it does not write natively: arrays of strings
    # or objects, non-contiguous arrays, numpy string scalars
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def json_response(value: Any, status: int = 200, headers: Optional[Dict[str, str]] = None) -> Response:
    return Response(status, dumps(value), "application/json", headers)


def json_error(status: int, message: str, headers: Optional[Dict[str, str]] = None) -> Response:
    """The error answer of every protocol: ``{"error": message}``."""
    return Response(status, dumps({"error": message}), "application/json", dict(headers or {}))


@dataclass(frozen=True)
class Route:
    """One route of a protocol, as data the adapters read.

    ``request_schema`` and ``response_schema`` are pydantic models used only
    to describe the route in OpenAPI: bodies are decoded by the protocol
    (straight to ndarrays), never validated through pydantic on the hot path.
    ``examples`` maps a request media type to an example body for the docs'
    "Try it out".

    ``protocol`` names the protocol that declared the route (a metrics
    label; ``build_service`` sets it), ``access`` who may call it when API
    keys are configured: ``"open"`` (health checks: platforms probe them
    without credentials), ``"api"`` (an API or admin key) or ``"admin"``
    (an admin key: the model repository).
    """

    method: str
    path: str
    handler: Callable[[Request], Response]
    name: str
    summary: str = ""
    tag: str = ""
    request_schema: Optional[type] = None
    response_schema: Optional[type] = None
    request_types: Tuple[str, ...] = ("application/json",)
    response_types: Tuple[str, ...] = ("application/json",)
    examples: Mapping[str, Any] = field(default_factory=dict)
    param_examples: Mapping[str, str] = field(default_factory=dict)
    max_body: Optional[int] = None
    on_error: Callable[..., Response] = json_error
    description: str = ""
    protocol: str = ""
    access: str = "api"
    # (name, protocol, method): the route's metrics labels, made once, as plain str
    labels: Tuple[str, str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", (str(self.name), str(self.protocol), str(self.method)))

    @property
    def param_names(self) -> List[str]:
        names, rest = [], self.path
        while "{" in rest:
            start = rest.index("{")
            end = rest.index("}", start)
            names.append(rest[start + 1:end])
            rest = rest[end + 1:]
        return names


# -- the model being served ------------------------------------------------------


_PREDICT_FOR_KIND = {"classifier": "predict", "regressor": "predict", "transformer": "transform"}


class RequestStats:
    """What the model did for one request: compute seconds and rows.  The
    observing hook puts one in ``STATS`` for the request; ServedModel adds
    to it, so protocols need not know that anything is measured."""

    __slots__ = ("compute", "rows")

    def __init__(self) -> None:
        self.compute = 0.0
        self.rows = 0


STATS: contextvars.ContextVar[Optional[RequestStats]] = contextvars.ContextVar(
    "mlfast_request_stats", default=None)


class ServedModel:
    """A model under a name and version, as protocols see it.

    ``predict(X)`` is the model's own answer (``transform`` for a
    transformer); ``method(name)`` gives any other method the estimator has.
    Both time the model's compute for the request being observed (see
    ``RequestStats``).  ``load_seconds``, ``file_size`` and ``sha256`` say
    how the model came to be served (the model repository fills them).
    """

    def __init__(self, model: "mlfast.Model", name: str, version: str = "1",
                 source: Optional[str] = None):
        self.model = model
        self.name = name
        self.version = version
        self.labels = (str(name), str(version))  # the version's metrics labels
        self.source = source
        self.ready = True
        self.kind = model.kind
        self.n_features = model.n_features_in_
        self.feature_names = getattr(model, "feature_names_in_", None)
        self.classes = getattr(model, "classes_", None)
        # a multi-output classifier has a list of class arrays, one per output
        self.multi_output = isinstance(self.classes, list)
        self._predict = getattr(model, _PREDICT_FOR_KIND.get(self.kind, "predict"))
        self._output_specs: Dict[str, Any] = {}
        self.methods = tuple(
            m for m in ("predict", "predict_proba", "predict_log_proba", "decision_function",
                        "transform")
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
            raise HttpError(
                400,
                f"model {self.name!r} ({self.model.estimator}) has no method {name!r}; "
                f"it has {', '.join(self.methods)}",
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
        its labels.  None if the model refuses the row."""
        if name not in self._output_specs:
            fn = self._predict if name == "predict" else getattr(self.model, name)
            try:
                with np.errstate(all="ignore"):  # log(0) of a zero probability
                    out = fn(np.zeros((1, self.n_features or 1)))
            except (ValueError, TypeError):
                self._output_specs[name] = None
            else:
                if isinstance(out, list):  # a multi-output classifier's probabilities
                    out = np.hstack(out)
                self._output_specs[name] = (out.dtype, out.shape[1:])
        return self._output_specs[name]

    def example_row(self) -> List[float]:
        """A row for the docs' examples: the lesson's iris flower for a
        4-feature model, else 1, 2, 3, ..."""
        if self.n_features == 4:
            return [5.1, 3.5, 1.4, 0.2]
        return [float(i + 1) for i in range(self.n_features or 1)]

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
            out["classes"] = ([c.tolist() for c in self.classes] if self.multi_output
                              else self.classes.tolist())
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

    def __init__(self, models: Dict[str, Dict[str, ServedModel]], pins: Dict[str, str],
                 default_name: Optional[str]):
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
                raise HttpError(503, f"model {self._default_name!r} is not loaded")
            raise HttpError(503, "no model is loaded")
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
            raise HttpError(404, f"model {name!r} is not served here (models: {known})")
        if version is None or version == "":
            return snap.defaults[name]
        served = versions.get(version)
        if served is None:
            known = ", ".join(repr(v) for v in sorted(versions, key=version_key))
            raise HttpError(404, f"model {name!r} has no version {version!r} (versions: {known})")
        return served

    def for_request(self, request: Request, name: Optional[str] = None,
                    version: Optional[str] = None) -> ServedModel:
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
        self.replace(served.name, {**self._snap.models.get(served.name, {}), served.version: served})

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


# -- the service: routes plus error handling --------------------------------------

Handler = Callable[[Request], Response]
Hook = Callable[[Route, Request, Callable[[], Response]], Response]


class Service:
    """The route table of all protocols over one registry, and ``handle``.

    ``hooks`` wrap every call (outermost first) and are the seam for
    metrics, auth and limits (``serving.ops``): a hook gets the route, the
    request and a ``call_next`` and returns a Response.  Errors become
    answers at every level, so ``call_next`` always returns a Response.

    ``max_body`` caps every body; ``protocol_limits`` (protocol name to
    bytes) replaces a protocol's own limits (SageMaker's 6 MB, Vertex AI's
    1.5 MB).  ``request_timeout`` (seconds) is enforced by the adapters
    where the framework lets them: reading the body, and predictions handed
    to a thread.  ``repository`` is the model repository behind the
    registry when one is served; ``on_worker_start`` callbacks run once in
    each serving process (after a fork).
    """

    def __init__(self, registry: ModelRegistry, *, max_body: int = DEFAULT_MAX_BODY,
                 protocol_limits: Optional[Mapping[str, int]] = None,
                 request_timeout: Optional[float] = None):
        self.registry = registry
        self.max_body = max_body
        self.protocol_limits: Dict[str, int] = dict(protocol_limits or {})
        self.request_timeout = request_timeout
        self.routes: List[Route] = []
        self.hooks: List[Hook] = []
        self.repository: Any = None
        self.metrics: Any = None
        self.on_worker_start: List[Callable[[], None]] = []
        self._seen: set = set()

    def add_routes(self, routes: Sequence[Route], protocol: Optional[str] = None) -> None:
        """Add routes (labelled with ``protocol`` when given); a method and
        path already taken keeps its first route (an ``AIP_HEALTH_ROUTE``
        may name a path another protocol serves)."""
        for route in routes:
            key = (route.method, route.path)
            if key in self._seen:
                continue
            if protocol is not None and not route.protocol:
                route = replace_route(route, protocol=protocol)
            self._seen.add(key)
            self.routes.append(route)

    def body_limit(self, route: Route) -> int:
        if route.protocol in self.protocol_limits:
            return self.protocol_limits[route.protocol]
        return min(route.max_body or self.max_body, self.max_body)

    def start_worker(self) -> None:
        """Run the ``on_worker_start`` callbacks (watching the model
        repository, ...): once per serving process, after any fork."""
        for callback in self.on_worker_start:
            callback()

    def handle(self, route: Route, request: Request, handler: Optional[Handler] = None) -> Response:
        """The route's answer to ``request`` through the hooks; ``handler``
        stands in for the route's own (the adapters' 413 and timeouts, so
        that those answers are counted and logged too)."""
        handler = handler or route.handler
        if self.hooks:
            return self._call(0, route, request, handler)
        try:
            return handler(request)
        except Exception as e:
            return self._error(route, request, e)

    def _call(self, i: int, route: Route, request: Request, handler: Handler) -> Response:
        try:
            if i == len(self.hooks):
                return handler(request)
            return self.hooks[i](route, request, lambda: self._call(i + 1, route, request, handler))
        except Exception as e:
            return self._error(route, request, e)

    def error_response(self, route: Route, request: Request, error: Exception) -> Response:
        """The answer to an error raised while handling ``request``, as the
        hooks' levels make it (for a hook that checks before ``call_next``)."""
        return self._error(route, request, error)

    def _error(self, route: Route, request: Request, error: Exception) -> Response:
        if isinstance(error, HttpError):
            request.error_kind = error.kind
            return route.on_error(error.status, error.message, error.headers)
        if isinstance(error, ValueError):  # MlfastError included: bad input for the model
            request.error_kind = "invalid_input"
            return route.on_error(400, _message(error))
        request.error_kind = "internal"
        log.error("error serving %s %s (request id %s)", request.method, request.path, request.id,
                  exc_info=error)
        return route.on_error(500, "internal server error; the server log has the details")

    def too_large(self, route: Route, size: Optional[int] = None,
                  request: Optional[Request] = None) -> Response:
        limit = self.body_limit(route)
        got = f" ({size} bytes)" if size is not None else ""
        message = f"request body too large{got}: the limit is {limit} bytes"
        if request is None:
            return route.on_error(413, message)

        def refuse(_: Request) -> Response:
            raise HttpError(413, message)

        return self.handle(route, request, refuse)

    def timed_out(self, route: Route, request: Request, status: int = 504) -> Response:
        """408 when the client did not send its body in time, 504 when the
        answer took longer than ``request_timeout``."""
        if status == 408:
            message = f"the request body did not arrive within {self.request_timeout:g} s"
        else:
            message = f"the request took longer than {self.request_timeout:g} s"

        def refuse(_: Request) -> Response:
            raise HttpError(status, message, {"Connection": "close"})

        return self.handle(route, request, refuse)

    def not_found(self, method: str, path: str) -> Response:
        return json_error(404, f"no route for {method} {path}")

    def method_not_allowed(self, method: str, path: str) -> Response:
        return json_error(405, f"method {method} is not allowed for {path}")


def replace_route(route: Route, **changes: Any) -> Route:
    import dataclasses

    return dataclasses.replace(route, **changes)



def _message(error: BaseException) -> str:
    text = str(error).strip()
    return text or type(error).__name__


# -- loading the model a server serves ---------------------------------------------

MODEL_FILE_NAMES = ("model.joblib", "model.pkl", "model.pickle")


def resolve_model_path(path: Union[str, os.PathLike]) -> Path:
    """A model file, or a directory holding one of ``MODEL_FILE_NAMES`` (as
    SageMaker's /opt/ml/model and Vertex AI's artifact directory do)."""
    p = Path(path)
    if p.is_dir():
        for name in MODEL_FILE_NAMES:
            if (p / name).is_file():
                return p / name
        found = sorted(x.name for x in p.iterdir() if x.suffix in (".joblib", ".pkl", ".pickle"))
        if len(found) == 1:
            return p / found[0]
        raise FileNotFoundError(
            f"no model file in {p}: expected one of {', '.join(MODEL_FILE_NAMES)}"
            + (f" (found {', '.join(found)})" if found else "")
        )
    if not p.exists():
        raise FileNotFoundError(f"model file {p} does not exist")
    return p


class ModelIntegrityError(ValueError):
    """A model file whose SHA-256 is not the one it was pinned to."""


def _sidecar_sha256(path: Path) -> Optional[str]:
    side = path.with_name(path.name + ".sha256")
    try:
        text = side.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return text.split()[0].lower() if text else None


def load_served(path: Union[str, os.PathLike], name: str, version: str = "1", *,
                sha256: Optional[str] = None) -> ServedModel:
    """Read a model file once, check its SHA-256 (``sha256``, else the
    ``sha256sum`` line of a ``<file>.sha256`` beside it) before anything
    parses it, then load those very bytes: no second read for a swapped
    file to slip into."""
    path = Path(path)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    expected = (sha256 or _sidecar_sha256(path) or "").strip().lower()
    if expected and not hmac.compare_digest(digest, expected):
        raise ModelIntegrityError(f"{path} has SHA-256 {digest}, but {expected} was expected: "
                                  "it is not the file that was pinned")
    start = time.perf_counter()
    model = mlfast.loads(data)
    model._source = str(path)  # loads() does not know where the bytes came from
    served = ServedModel(model, name, version, str(path))
    served.load_seconds = time.perf_counter() - start
    served.file_size = len(data)
    served.sha256 = digest
    return served


# Model names and versions go into URLs (/v2/models/{name}) and into the
# X-Model-Name/X-Model-Version headers of every answer, which carry ASCII
# only: the repository's directory names follow the same rule.
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_model_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not MODEL_NAME_RE.match(value):
        raise ValueError(f"model {what} {value!r} is not usable: 1 to 128 ASCII letters, digits, "
                         "'_', '.' or '-', starting with a letter or digit (it goes into URLs "
                         "and response headers)")
    return value


def name_from_file(path: Union[str, os.PathLike]) -> str:
    """A model name from a file name: its stem, with what a name cannot
    hold replaced by '_' ('modèle v2.pkl' -> 'mod_le_v2')."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).stem)[:128].lstrip("_.-")
    return stem or "model"


def served_model(model_or_path: Any, name: Optional[str] = None, version: str = "1", *,
                 sha256: Optional[str] = None) -> ServedModel:
    """A ServedModel from a Model or a path (file or directory); ``sha256``
    pins the file's hash (checked before it is parsed).  An explicit name or
    version must follow ``MODEL_NAME_RE``; a name taken from the file is
    made to."""
    if name is not None:
        check_model_name("name", name)
    check_model_name("version", version)
    if isinstance(model_or_path, mlfast.Model):
        source = getattr(model_or_path, "_source", None)
        default_name = name_from_file(source) if source else "model"
        return ServedModel(model_or_path, name or default_name, version, source)
    path = resolve_model_path(model_or_path)
    return load_served(path, name or name_from_file(path), version, sha256=sha256)
