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
"""
from __future__ import annotations

import logging
import os
import threading
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
    capped by the adapter at the route's ``max_body``.
    """

    __slots__ = ("method", "path", "params", "headers", "body", "query")

    def __init__(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes = b"",
        query: str = "",
    ):
        self.method = method
        self.path = path
        self.params = params
        self.headers = headers
        self.body = body
        self.query = query

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
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers if headers is not None else {}

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.content_type} {self.body[:80]!r}>"


class HttpError(Exception):
    """A client-facing error: status and a message that says what was wrong."""

    def __init__(self, status: int, message: str, headers: Optional[Dict[str, str]] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


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


class ServedModel:
    """A model under a name and version, as protocols see it.

    ``predict`` is the model's own answer (``transform`` for a transformer);
    ``method(name)`` gives any other method the estimator has.  This is the
    seam for a model repository (issue 5): a registry holds several of these.
    """

    def __init__(self, model: "mlfast.Model", name: str, version: str = "1",
                 source: Optional[str] = None):
        self.model = model
        self.name = name
        self.version = version
        self.source = source
        self.ready = True
        self.kind = model.kind
        self.n_features = model.n_features_in_
        self.feature_names = getattr(model, "feature_names_in_", None)
        self.classes = getattr(model, "classes_", None)
        # a multi-output classifier has a list of class arrays, one per output
        self.multi_output = isinstance(self.classes, list)
        self.predict = getattr(model, _PREDICT_FOR_KIND.get(self.kind, "predict"))
        self._output_specs: Dict[str, Any] = {}
        self.methods = tuple(
            m for m in ("predict", "predict_proba", "predict_log_proba", "decision_function",
                        "transform")
            if hasattr(model, m)
        )

    def method(self, name: str) -> Callable[[np.ndarray], np.ndarray]:
        if name not in self.methods:
            raise HttpError(
                400,
                f"model {self.name!r} ({self.model.estimator}) has no method {name!r}; "
                f"it has {', '.join(self.methods)}",
            )
        return getattr(self.model, name)

    def output_spec(self, name: str) -> Optional[Tuple[np.dtype, Tuple[int, ...]]]:
        """The dtype and per-row shape of output ``name`` (``predict`` or a
        method), found by predicting one row of zeros: the Model does not
        say how many outputs a multi-output estimator has, nor the dtype of
        its labels.  None if the model refuses the row."""
        if name not in self._output_specs:
            fn = self.predict if name == "predict" else getattr(self.model, name)
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


class ModelRegistry:
    """The models a server serves, by name and version.

    Issue 4 serves one model; lookups by name and version already go through
    here so that a repository with several models and versions (issue 5)
    changes this class, not the protocols.
    """

    def __init__(self, models: Sequence[ServedModel] = ()):
        self._models: Dict[str, Dict[str, ServedModel]] = {}
        self._default: Optional[ServedModel] = None
        self._lock = threading.Lock()
        for m in models:
            self.add(m)

    def add(self, served: ServedModel) -> None:
        with self._lock:
            self._models.setdefault(served.name, {})[served.version] = served
            if self._default is None:
                self._default = served

    @property
    def default(self) -> ServedModel:
        if self._default is None:
            raise HttpError(503, "no model is loaded")
        return self._default

    @property
    def ready(self) -> bool:
        return self._default is not None and all(
            m.ready for versions in self._models.values() for m in versions.values()
        )

    def names(self) -> List[str]:
        return list(self._models)

    def versions(self, name: str) -> List[str]:
        return list(self._models.get(name, {}))

    def get(self, name: str, version: Optional[str] = None) -> ServedModel:
        versions = self._models.get(name)
        if not versions:
            known = ", ".join(repr(n) for n in self._models) or "none"
            raise HttpError(404, f"model {name!r} is not served here (models: {known})")
        if version is None or version == "":
            # the newest version: the last one added
            return list(versions.values())[-1]
        served = versions.get(version)
        if served is None:
            known = ", ".join(repr(v) for v in versions)
            raise HttpError(404, f"model {name!r} has no version {version!r} (versions: {known})")
        return served


# -- the service: routes plus error handling --------------------------------------

Handler = Callable[[Request], Response]
Hook = Callable[[Route, Request, Callable[[], Response]], Response]


class Service:
    """The route table of all protocols over one registry, and ``handle``.

    ``hooks`` wrap every call (outermost first) and are the seam for
    metrics, auth and limits (issue 5): a hook gets the route, the request
    and a ``call_next`` and returns a Response.
    """

    def __init__(self, registry: ModelRegistry, *, max_body: int = DEFAULT_MAX_BODY):
        self.registry = registry
        self.max_body = max_body
        self.routes: List[Route] = []
        self.hooks: List[Hook] = []
        self._seen: set = set()

    def add_routes(self, routes: Sequence[Route]) -> None:
        """Add routes; a method and path already taken keeps its first route
        (an ``AIP_HEALTH_ROUTE`` may name a path another protocol serves)."""
        for route in routes:
            key = (route.method, route.path)
            if key in self._seen:
                continue
            self._seen.add(key)
            self.routes.append(route)

    def body_limit(self, route: Route) -> int:
        return min(route.max_body or self.max_body, self.max_body)

    def handle(self, route: Route, request: Request) -> Response:
        try:
            if self.hooks:
                return self._call_hooks(0, route, request)
            return route.handler(request)
        except HttpError as e:
            return route.on_error(e.status, e.message, e.headers)
        except ValueError as e:  # MlfastError included: bad input for the model
            return route.on_error(400, _message(e))
        except Exception:
            log.exception("error serving %s %s", request.method, request.path)
            return route.on_error(500, "internal server error; the server log has the details")

    def _call_hooks(self, i: int, route: Route, request: Request) -> Response:
        if i == len(self.hooks):
            return route.handler(request)
        return self.hooks[i](route, request, lambda: self._call_hooks(i + 1, route, request))

    def too_large(self, route: Route, size: Optional[int] = None) -> Response:
        limit = self.body_limit(route)
        got = f" ({size} bytes)" if size is not None else ""
        return route.on_error(413, f"request body too large{got}: the limit is {limit} bytes")

    def not_found(self, method: str, path: str) -> Response:
        return json_error(404, f"no route for {method} {path}")

    def method_not_allowed(self, method: str, path: str) -> Response:
        return json_error(405, f"method {method} is not allowed for {path}")


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


def served_model(model_or_path: Any, name: Optional[str] = None, version: str = "1") -> ServedModel:
    """A ServedModel from a Model or a path (file or directory)."""
    if isinstance(model_or_path, mlfast.Model):
        source = getattr(model_or_path, "_source", None)
        default_name = Path(source).stem if source else "model"
        return ServedModel(model_or_path, name or default_name, version, source)
    path = resolve_model_path(model_or_path)
    model = mlfast.load(path)
    return ServedModel(model, name or path.stem, version, str(path))
