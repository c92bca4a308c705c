"""The service: the route table of every protocol over one model registry,
and the one place where errors become answers.

``Service.handle`` calls a route's handler through the hooks (operations:
``serving.ops``).  Whatever the handler raises is answered here: an
``HttpError`` with its own status; a domain error (``serving.errors``) with
the status ``STATUS`` gives it; a ``ValueError`` from the model (bad rows:
scikit-learn's own message) with 400; anything else with a 500 whose body
says nothing about the server (the traceback goes to the log).  Each hook
level turns errors into answers, so a hook always gets a Response from
``call_next`` and sees the status the client will see.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from mlfast.serving.errors import (
    Conflict,
    InvalidInput,
    ModelLoadFailed,
    ModelNotFound,
    NotReady,
    ServingError,
)
from mlfast.serving.http import (
    DEFAULT_MAX_BODY,
    Handler,
    HttpError,
    Request,
    Response,
    Route,
    error_kind,
    json_error,
    replace_route,
)
from mlfast.serving.registry import ModelRegistry

log = logging.getLogger("mlfast.serving")

Hook = Callable[[Route, Request, Callable[[], Response]], Response]

# Domain errors to HTTP statuses: the only place that knows both.
STATUS = {
    InvalidInput: 400,
    ModelLoadFailed: 400,
    ModelNotFound: 404,
    Conflict: 409,
    NotReady: 503,
}

INTERNAL_ERROR = "internal server error; the server log has the details"


def status_of(error: BaseException) -> int:
    """The status ``Service.handle`` answers ``error`` with."""
    if isinstance(error, HttpError):
        return error.status
    if isinstance(error, ServingError):
        for cls in type(error).__mro__:
            if cls in STATUS:
                return STATUS[cls]
        return 400
    if isinstance(error, ValueError):  # MlfastError included: bad input for the model
        return 400
    return 500


class Service:
    """The route table of all protocols over one registry, and ``handle``.

    ``hooks`` wrap every call (outermost first) and are the seam for
    metrics, auth and limits (``serving.ops``): a hook gets the route, the
    request and a ``call_next`` and returns a Response.  ``authorize``
    (set by ``serving.ops`` when keys are configured) checks a request's
    headers; the adapters call it through ``admit`` before they read a body.

    ``max_body`` caps every body; ``protocol_limits`` (protocol name to
    bytes) replaces a protocol's own limits (SageMaker's 6 MB, Vertex AI's
    1.5 MB).  ``request_timeout`` (seconds) is enforced by the adapters:
    reading the body, and predictions handed to a thread.  ``env`` holds the
    platforms' settings (``AIP_PREDICT_ROUTE``...).  ``repository`` is the
    model repository behind the registry when one is served;
    ``on_worker_start`` callbacks run once in each serving process (after a
    fork).  ``headers`` go on every answer, those made outside the routes
    too (``answer``); ``docs_path`` is where the adapter serves API docs, if
    it does.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        max_body: int = DEFAULT_MAX_BODY,
        protocol_limits: Optional[Mapping[str, int]] = None,
        request_timeout: Optional[float] = None,
        env: Optional[Mapping[str, str]] = None,
    ):
        self.registry = registry
        self.max_body = max_body
        self.protocol_limits: Dict[str, int] = dict(protocol_limits or {})
        self.request_timeout = request_timeout
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.routes: List[Route] = []
        self.hooks: List[Hook] = []
        self.repository: Any = None
        self.metrics: Any = None
        self.authorize: Optional[Callable[[Route, Request], None]] = None
        self.headers: Dict[str, str] = {}
        self.docs_path: Optional[str] = None
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

    # -- answering ------------------------------------------------------------------

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

    def admit(self, route: Route, request: Request) -> Optional[Response]:
        """The checks that need only the headers (API keys), made by the
        adapters before they read a body, so that a request without a valid
        key costs no memory for its body: None to go on, else the refusal
        (counted and logged like any answer)."""
        if self.authorize is None:
            return None
        try:
            self.authorize(route, request)
        except HttpError as refusal:
            request.admitted = True  # checked: the hooks need not check again
            return self.refuse(route, request, refusal)
        request.admitted = True
        return None

    def error_response(self, route: Route, request: Request, error: Exception) -> Response:
        """The answer to an error raised while handling ``request``, as the
        hooks' levels make it (for a hook that checks before ``call_next``)."""
        return self._error(route, request, error)

    def _error(self, route: Route, request: Request, error: Exception) -> Response:
        if isinstance(error, HttpError):
            request.error_kind = error.kind
            return route.on_error(error.status, error.message, error.headers)
        if isinstance(error, ServingError):
            status = status_of(error)
            message = error.message
            if isinstance(error, ModelNotFound) and error.known and route.access != "open":
                message = f"{message} ({error.known})"
            request.error_kind = error_kind(status)
            return route.on_error(status, message)
        if isinstance(error, ValueError):  # MlfastError included: bad input for the model
            request.error_kind = "invalid_input"
            return route.on_error(400, _message(error))
        request.error_kind = "internal"
        log.error(
            "error serving %s %s (request id %s)",
            request.method,
            request.path,
            request.id,
            exc_info=error,
        )
        return route.on_error(500, INTERNAL_ERROR)

    def refuse(self, route: Route, request: Request, error: HttpError) -> Response:
        """The answer to a request refused before its handler ran, made
        through the hooks so that it is counted and logged like any other."""

        def raise_error(_: Request) -> Response:
            raise error

        return self.handle(route, request, raise_error)

    def too_large(
        self, route: Route, size: Optional[int] = None, request: Optional[Request] = None
    ) -> Response:
        limit = self.body_limit(route)
        got = f" ({size} bytes)" if size is not None else ""
        message = f"request body too large{got}: the limit is {limit} bytes"
        if request is None:
            return route.on_error(413, message)
        return self.refuse(route, request, HttpError(413, message))

    def timed_out(self, route: Route, request: Request, status: int = 504) -> Response:
        """408 when the client did not send its body in time, 504 when the
        answer took longer than ``request_timeout``."""
        if status == 408:
            message = f"the request body did not arrive within {self.request_timeout:g} s"
        else:
            message = f"the request took longer than {self.request_timeout:g} s"
        return self.refuse(route, request, HttpError(status, message, {"Connection": "close"}))

    def incomplete_body(self, route: Route, request: Request) -> Response:
        """A body that ended before its Content-Length: the client hung up,
        or did not send it within the request timeout (the server stopped
        reading)."""
        if self.request_timeout:
            return self.timed_out(route, request, 408)
        return self.refuse(
            route,
            request,
            HttpError(
                400, "the request body ended before its Content-Length", {"Connection": "close"}
            ),
        )

    def answer(
        self, status: int, message: str, headers: Optional[Dict[str, str]] = None
    ) -> Response:
        """An answer made outside the routes (no route for the path, a
        method the route does not take, a request the framework refused):
        ``{"error": ...}`` with the headers every answer carries."""
        return json_error(status, message, {**self.headers, **(headers or {})})

    def not_found(self, method: str, path: str) -> Response:
        return self.answer(404, f"no route for {method} {path}")

    def method_not_allowed(
        self, method: str, path: str, allowed: Optional[Sequence[str]] = None
    ) -> Response:
        headers = {"Allow": ", ".join(allowed)} if allowed else None
        return self.answer(405, f"method {method} is not allowed for {path}", headers)


def _message(error: BaseException) -> str:
    text = str(error).strip()
    return text or type(error).__name__
