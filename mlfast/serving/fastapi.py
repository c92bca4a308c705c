"""FastAPI adapter: the core's routes as FastAPI routes, and nothing more.

Each route gets one endpoint that reads the body (capped), builds a core
``Request``, calls ``Service.handle`` and writes the core ``Response``.  The
OpenAPI page shows each route's declared pydantic schemas (request bodies
are declared, not parsed, so a prediction costs no pydantic validation).
``/docs`` serves Swagger UI from the ``fastapi-offline`` package's copy of
swagger-ui-dist, so it works with no internet access; ``/redoc`` likewise.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Mapping, Optional

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse

import mlfast
from mlfast.serving.http import DRAIN_LIMIT, Request, Response, Route
from mlfast.serving.schemas import ErrorBody
from mlfast.serving.service import INTERNAL_ERROR, Service

# Bodies up to this size are handled on the event loop: decoding and
# predicting a few rows takes microseconds, less than a hop to the thread
# pool.  Larger bodies go to the pool so one big batch does not stall the
# other connections.
INLINE_BODY = 64 * 1024
_COMPONENT = "#/components/schemas/{model}"
DOCS = "/docs"


def _headers(scope: Mapping[str, Any]) -> Dict[str, str]:
    # ASGI header names are lower case already; repeated headers are joined
    headers: Dict[str, str] = {}
    for key, value in scope["headers"]:
        k, v = key.decode("latin-1"), value.decode("latin-1")
        headers[k] = f"{headers[k]}, {v}" if k in headers else v
    return headers


def _starlette(response: Response) -> StarletteResponse:
    # Starlette adds content-length and nothing else when given no headers;
    # ours are appended already encoded (every answer carries eight or more,
    # and starlette's own handling of a header dict showed in the cost of a
    # request).  The Content-Type goes in as a header, not media_type:
    # starlette would append "; charset=utf-8" to text/csv, which SageMaker
    # clients compare as is.
    out = StarletteResponse(response.body, response.status)
    raw = out.raw_headers
    raw.append((b"content-type", response.content_type.encode("latin-1")))
    for name, value in response.headers.items():
        raw.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return out


async def _drain(stream, seen: int) -> None:
    async for chunk in stream:
        seen += len(chunk)
        if seen > DRAIN_LIMIT:
            break


async def _read_body(request: StarletteRequest, limit: int):
    """The body, or None when it is over ``limit`` (a body without a
    Content-Length, read up to the limit).  A client that hangs up mid-body
    raises starlette's ClientDisconnect, which the endpoint answers with
    nothing."""
    stream = request.stream()
    chunks: List[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            await _drain(stream, size)
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _discard_body(request: StarletteRequest, timeout: Optional[float]) -> bool:
    """Reads and drops the body of a request answered without it, so that a
    client still sending gets the answer rather than a reset connection;
    False when the client hung up or did not finish within ``timeout``."""
    try:
        if timeout:
            async with _deadline(timeout):
                await _drain(request.stream(), 0)
        else:
            await _drain(request.stream(), 0)
    except (asyncio.TimeoutError, ClientDisconnect):
        return False
    return True


def _content_length(request: StarletteRequest) -> Optional[int]:
    length = request.headers.get("content-length")
    return int(length) if length is not None and length.isdigit() else None


def _deadline(seconds: float):
    """``asyncio.timeout`` (Python 3.11+): a timer on the running task, no
    new task; ``async_timeout``-like fallback through wait_for below."""
    return asyncio.timeout(seconds) if hasattr(asyncio, "timeout") else _WaitFor(seconds)


class _WaitFor:  # Python < 3.11: cancel the task from a timer
    def __init__(self, seconds: float):
        self.seconds = seconds

    async def __aenter__(self):
        task = asyncio.current_task()
        self.fired = False

        def fire():
            self.fired = True
            task.cancel()

        self.handle = asyncio.get_running_loop().call_later(self.seconds, fire)

    async def __aexit__(self, kind, value, tb):
        self.handle.cancel()
        if kind is asyncio.CancelledError and self.fired:
            raise asyncio.TimeoutError
        return False


def _endpoint(service: Service, route: Route):
    limit = service.body_limit(route)
    reads_body = route.method in ("POST", "PUT", "PATCH")
    timeout = service.request_timeout

    async def endpoint(request: StarletteRequest) -> StarletteResponse:
        scope = request.scope
        client = scope.get("client")
        core_request = Request(
            route.method,
            scope["path"],
            scope.get("path_params", {}),
            _headers(scope),
            b"",
            scope.get("query_string", b"").decode("latin-1"),
            client[0] if client else "",
        )
        body = b""
        if reads_body:
            # answers that need no body: a missing key, a Content-Length over
            # the limit (a request without a key costs no memory for its body)
            early = service.admit(route, core_request)
            length = _content_length(request)
            if early is None and length is not None and length > limit:
                early = service.too_large(route, length, core_request)
            if early is not None:
                # receiving would send "100 Continue" to a client that asked
                # before sending its body: it gets the answer and the
                # connection closes instead
                if request.headers.get(
                    "expect", ""
                ).lower() == "100-continue" or not await _discard_body(request, timeout):
                    early.headers["Connection"] = "close"
                return _starlette(early)
            try:
                if timeout:
                    try:
                        async with _deadline(timeout):
                            body = await _read_body(request, limit)
                    except asyncio.TimeoutError:
                        return _starlette(service.timed_out(route, core_request, 408))
                else:
                    body = await _read_body(request, limit)
            except ClientDisconnect:
                # the client hung up mid-body: the request is over, not an
                # error (nothing to log, and no one to answer)
                return StarletteResponse(b"", 400)
            if body is None:
                return _starlette(service.too_large(route, None, core_request))
            core_request.body = body
        if len(body) > INLINE_BODY:
            # a big batch goes to a thread (the GIL is released while the
            # model computes), so it neither stalls the event loop nor
            # keeps the client past the deadline
            call = run_in_threadpool(service.handle, route, core_request)
            if timeout:
                try:
                    response = await asyncio.wait_for(call, timeout)
                except asyncio.TimeoutError:
                    response = service.timed_out(route, core_request)
            else:
                response = await call
        else:
            response = service.handle(route, core_request)
        return _starlette(response)

    endpoint.__name__ = route.name
    return endpoint


def _request_body(route: Route) -> Optional[dict]:
    if route.request_schema is None:
        return None
    content = {}
    for media in route.request_types:
        entry: Dict[str, Any]
        if media == "application/json":
            entry = {"schema": {"$ref": _COMPONENT.format(model=route.request_schema.__name__)}}
        elif media.startswith("text/"):
            entry = {"schema": {"type": "string"}}
        else:
            entry = {"schema": {"type": "string", "format": "binary"}}
        if media in route.examples:
            entry["example"] = route.examples[media]
        content[media] = entry
    return {"required": True, "content": content}


def _responses(route: Route) -> Dict[Any, Any]:
    out: Dict[Any, Any] = {
        "4XX": {"model": ErrorBody, "description": "The request was wrong; `error` says how."},
        "5XX": {"model": ErrorBody, "description": "Not ready (503), or a server fault."},
    }
    if route.response_schema is not None:
        ok: Dict[str, Any] = {"model": route.response_schema, "description": "Success"}
        others = [m for m in route.response_types if m != "application/json"]
        if others:
            ok["content"] = {m: {"schema": {"type": "string"}} for m in others}
        out[200] = ok
    return out


def _openapi_extra(route: Route) -> Dict[str, Any]:
    extra: Dict[str, Any] = {}
    body = _request_body(route)
    if body is not None:
        extra["requestBody"] = body
    params = route.param_names
    if params:
        extra["parameters"] = [
            {
                "name": p,
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                **({"example": route.param_examples[p]} if p in route.param_examples else {}),
            }
            for p in params
        ]
    return extra


def build_app(service: Service) -> FastAPI:
    served = service.registry.default
    app = FastAPIOffline(
        docs_url=DOCS,
        # '/predict/' is not '/predict': a 404 in JSON, not a redirect
        redirect_slashes=False,
        title=f"mlfast: {served.name}",
        version=mlfast.__version__,
        description=(
            f"Serving `{served.name}` ({served.model.estimator}, {served.kind}, "
            f"{served.n_features} features) with mlfast: the lesson's `/predict`, "
            "SageMaker, Vertex AI, KServe V1 and the Open Inference Protocol (V2)."
        ),
    )
    app.state.mlfast_service = service
    service.docs_path = DOCS
    for route in service.routes:
        app.add_api_route(
            route.path,
            _endpoint(service, route),
            methods=[route.method],
            name=route.name,
            operation_id=route.name,
            summary=route.summary or None,
            description=route.description or "",
            tags=[route.tag] if route.tag else None,
            responses=_responses(route),
            openapi_extra=_openapi_extra(route) or None,
        )

    # Request bodies are declared through openapi_extra, so FastAPI does not
    # know their models: add their JSON schemas to the components here.
    request_models = list(
        {r.request_schema for r in service.routes if r.request_schema is not None}
    )
    _, top = models_json_schema(
        [(m, "validation") for m in request_models], ref_template=_COMPONENT
    )
    definitions = top.get("$defs", {})
    make_openapi = app.openapi

    def openapi() -> Dict[str, Any]:
        if app.openapi_schema is None:
            # FastAPI.openapi makes app.openapi_schema and returns it
            schema = make_openapi()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(definitions)
            return schema
        return app.openapi_schema

    # FastAPI documents replacing app.openapi to extend the schema; a type
    # checker sees a method being assigned over
    app.openapi = openapi  # type: ignore[method-assign]

    async def http_error(
        request: StarletteRequest, exc: StarletteHTTPException
    ) -> StarletteResponse:
        method, path = request.method, request.url.path
        if exc.status_code == 404:
            response = service.not_found(method, path)
        elif exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow")
            response = service.method_not_allowed(
                method, path, allow.split(", ") if allow else None
            )
        else:
            response = service.answer(exc.status_code, str(exc.detail))
        return _starlette(response)

    async def server_error(request: StarletteRequest, exc: Exception) -> StarletteResponse:
        return _starlette(service.answer(500, INTERNAL_ERROR))

    # Starlette calls a handler with the class it is registered for, but types
    # every handler's exception as Exception
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, server_error)
    return app
