"""Flask adapter: the core's routes as Flask routes, and nothing more.

Each route gets one view that reads the body (capped), builds a core
``Request``, calls ``Service.handle`` and returns the core ``Response``.
Flask's own errors (404, 405) are answered as JSON ``{"error": ...}`` too.
Serve it with a WSGI server (``mlfast serve --framework flask`` runs
gunicorn); never with ``debug=True``, whose debugger runs code sent by
anyone who can reach the port.
"""
from __future__ import annotations

from typing import Dict

from flask import Flask
from flask import Response as FlaskResponse
from flask import request as flask_request
from werkzeug.exceptions import HTTPException

from mlfast.serving.http import DRAIN_LIMIT, Request, Response, Route, json_error
from mlfast.serving.service import INTERNAL_ERROR, Service

_CHUNK = 64 * 1024


def _flask_path(path: str) -> str:
    return path.replace("{", "<").replace("}", ">")


def _flask_response(response: Response) -> FlaskResponse:
    return FlaskResponse(response.body, status=response.status, headers=response.headers,
                         content_type=response.content_type)


def _drain(stream, seen: int) -> None:
    while seen <= DRAIN_LIMIT:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        seen += len(chunk)


def _read_body(limit: int):
    """The body, or None when it is over ``limit``."""
    stream = flask_request.stream
    length = flask_request.content_length
    if length is not None and length > limit:
        _drain(stream, 0)
        return None
    body = stream.read(limit + 1)
    if len(body) > limit:
        _drain(stream, len(body))
        return None
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
        core_request = Request(route.method, flask_request.path, params, _headers(), b"",
                               flask_request.query_string.decode("latin-1"),
                               flask_request.remote_addr or "")
        if reads_body:
            body = _read_body(limit)
            if body is None:
                return _flask_response(service.too_large(route, flask_request.content_length,
                                                         core_request))
            core_request.body = body
        return _flask_response(service.handle(route, core_request))

    view.__name__ = route.name
    return view


def build_app(service: Service) -> Flask:
    app = Flask("mlfast.serving")
    app.extensions["mlfast_service"] = service
    for route in service.routes:
        app.add_url_rule(_flask_path(route.path), endpoint=route.name,
                         view_func=_view(service, route), methods=[route.method])

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> FlaskResponse:
        method, path = flask_request.method, flask_request.path
        if exc.code == 404:
            response = service.not_found(method, path)
        elif exc.code == 405:
            response = service.method_not_allowed(method, path)
        else:
            response = json_error(exc.code or 500, exc.description or exc.name)
        return _flask_response(response)

    @app.errorhandler(Exception)
    def server_error(exc: Exception) -> FlaskResponse:
        app.logger.exception("error serving %s %s", flask_request.method, flask_request.path)
        return _flask_response(json_error(500, INTERNAL_ERROR))

    return app
