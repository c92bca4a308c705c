"""Flask adapter: the core's routes as Flask routes, and nothing more.

Each route gets one view that checks the headers (API keys), reads the body
(capped), builds a core ``Request``, calls ``Service.handle`` and returns
the core ``Response``.  What Flask answers by itself (404, 405, an OPTIONS
request, a malformed request) is JSON ``{"error": ...}`` with the headers
of every answer too.  Serve it with a WSGI server (``mlfast serve
--framework flask`` runs gunicorn); never with ``debug=True``, whose
debugger runs code sent by anyone who can reach the port.
"""

from __future__ import annotations

from typing import Dict, Optional

from flask import Flask
from flask import Response as FlaskResponse
from flask import request as flask_request
from werkzeug.exceptions import HTTPException

from mlfast.serving.http import DRAIN_LIMIT, Request, Response, Route
from mlfast.serving.service import INTERNAL_ERROR, Service

_CHUNK = 64 * 1024


class _Incomplete(Exception):
    """The body ended before its Content-Length."""


def _flask_path(path: str) -> str:
    return path.replace("{", "<").replace("}", ">")


def _flask_response(response: Response) -> FlaskResponse:
    headers = response.headers
    if "Connection" in headers:  # hop-by-hop: the WSGI server's to set, not the app's
        headers = {k: v for k, v in headers.items() if k != "Connection"}
    return FlaskResponse(
        response.body, status=response.status, headers=headers, content_type=response.content_type
    )


def _drain(stream, seen: int) -> None:
    try:
        while seen <= DRAIN_LIMIT:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            seen += len(chunk)
    except Exception:  # noqa: BLE001 - a body being dropped may end any way it likes
        pass


def _read_body(limit: int) -> Optional[bytes]:
    """The body, or None when it is over ``limit`` (a body without a
    Content-Length, read up to the limit).  Raises _Incomplete when it ends
    early: the client hung up, or the server stopped reading it at the
    request's deadline."""
    stream = flask_request.stream
    length = flask_request.content_length
    try:
        body = stream.read(limit + 1)
        if len(body) > limit:
            _drain(stream, len(body))
            return None
    except Exception as e:  # noqa: BLE001 - the WSGI server's reader: a reset, a bad chunk
        raise _Incomplete from e
    if length is not None and len(body) < length:
        raise _Incomplete
    return body


def _headers() -> Dict[str, str]:
    headers: Dict[str, str] = {}
    for key, value in flask_request.headers.items():
        k = key.lower()
        headers[k] = f"{headers[k]}, {value}" if k in headers else value
    return headers


def _view(service: Service, route: Route):
    limit = service.body_limit(route)
    reads_body = route.method in ("POST", "PUT", "PATCH")

    def view(**params: str) -> FlaskResponse:
        core_request = Request(
            route.method,
            flask_request.path,
            params,
            _headers(),
            b"",
            flask_request.query_string.decode("latin-1"),
            flask_request.remote_addr or "",
        )
        if reads_body:
            # a request without a valid key is answered before its body is
            # read (the WSGI server reads and drops what the client sends
            # after, within its own bounds)
            refused = service.admit(route, core_request)
            if refused is not None:
                return _flask_response(refused)
            length = flask_request.content_length
            if length is not None and length > limit:
                _drain(flask_request.stream, 0)
                return _flask_response(service.too_large(route, length, core_request))
            try:
                body = _read_body(limit)
            except _Incomplete:
                return _flask_response(service.incomplete_body(route, core_request))
            if body is None:
                return _flask_response(service.too_large(route, None, core_request))
            core_request.body = body
        return _flask_response(service.handle(route, core_request))

    view.__name__ = route.name
    return view


def build_app(service: Service) -> Flask:
    app = Flask("mlfast.serving")
    app.extensions["mlfast_service"] = service
    # '//predict' is not '/predict' (Werkzeug would redirect with an HTML
    # page), and OPTIONS is not answered for every route (Flask would,
    # with an empty 200): 404 and 405 in JSON, as FastAPI answers them
    app.url_map.merge_slashes = False
    for route in service.routes:
        app.add_url_rule(
            _flask_path(route.path),
            endpoint=route.name,
            view_func=_view(service, route),
            methods=[route.method],
            provide_automatic_options=False,
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> FlaskResponse:
        method, path = flask_request.method, flask_request.path
        if exc.code == 404:
            response = service.not_found(method, path)
        elif exc.code == 405:
            response = service.method_not_allowed(method, path, getattr(exc, "valid_methods", None))
        else:
            response = service.answer(exc.code or 500, exc.description or exc.name)
        return _flask_response(response)

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> FlaskResponse:
        app.logger.exception("error serving %s %s", flask_request.method, flask_request.path)
        return _flask_response(service.answer(500, INTERNAL_ERROR))

    return app
