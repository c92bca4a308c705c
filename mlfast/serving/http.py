"""What crosses between a protocol and a web framework: requests, responses,
routes, and the errors that already know their HTTP status.

A protocol module turns a ``Request`` into a ``Response`` and declares its
routes as data (``Route``); an adapter (``serving.fastapi``,
``serving.flask``) builds the ``Request`` from its framework's request and
writes the ``Response`` back.  Nothing here knows a framework or a body
shape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import orjson

# Request size caps (bytes).  The default guards every route; a protocol
# whose platform has a smaller limit declares it on its routes (Vertex AI
# public endpoints: 1.5 MB; SageMaker real-time endpoints: 6 MB).
DEFAULT_MAX_BODY = 16 * 1024 * 1024
# A body the server will not use (over the limit, or sent without a valid
# key) is read and dropped up to this many bytes before the answer goes out:
# answering while the client is still sending makes it see a reset
# connection instead of the answer.
DRAIN_LIMIT = 64 * 1024 * 1024

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class Request:
    """What a protocol handler sees of an HTTP request.

    ``headers`` has lower-case names.  ``body`` is the whole body, already
    capped by the adapter at the route's limit; ``client`` the peer's
    address when the adapter knows it.  ``id`` (the request id), ``served``
    (the model that answered) and ``error_kind`` are filled in while the
    request is handled, for the hooks that log and count it; ``admitted``
    says that the checks on headers (API keys) passed before the adapter
    read the body (``Service.admit``).
    """

    __slots__ = (
        "method",
        "path",
        "params",
        "headers",
        "body",
        "query",
        "client",
        "id",
        "served",
        "error_kind",
        "admitted",
    )

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
        self.served: Any = None
        self.error_kind: Optional[str] = None
        self.admitted = False

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


# The ``kind`` label of the errors metric and the access log, by status; an
# HttpError may name its own (a ValueError from the model is "invalid_input").
ERROR_KINDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "timeout",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
    504: "timeout",
}


def error_kind(status: int) -> str:
    return ERROR_KINDS.get(status, "client_error" if status < 500 else "server_error")


class HttpError(Exception):
    """An error of HTTP itself, which already knows its status: a media type
    the route does not take (415) or answer (406), a body over the limit
    (413), a missing key (401), a deadline (408, 504).  Errors of the domain
    (bad input, unknown model) are ``serving.errors``."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: Optional[Dict[str, str]] = None,
        kind: Optional[str] = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.kind = kind or error_kind(status)


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


def json_response(
    value: Any, status: int = 200, headers: Optional[Dict[str, str]] = None
) -> Response:
    return Response(status, dumps(value), "application/json", headers)


def json_error(status: int, message: str, headers: Optional[Dict[str, str]] = None) -> Response:
    """The error answer of every protocol: ``{"error": message}``."""
    return Response(status, dumps({"error": message}), "application/json", dict(headers or {}))


Handler = Callable[[Request], Response]


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
    handler: Handler
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
            names.append(rest[start + 1 : end])
            rest = rest[end + 1 :]
        return names


def replace_route(route: Route, **changes: Any) -> Route:
    return dataclasses.replace(route, **changes)
