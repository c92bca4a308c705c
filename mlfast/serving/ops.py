"""Operations as one core hook: request ids, access logs, metrics, API
keys, security headers.  No web framework and no protocol here: the hook
wraps ``Service.handle``, so every route of every protocol gets it, on
FastAPI and Flask alike.

``observe``
    takes the request's ``X-Request-ID`` (or makes one) and echoes it;
    when keys are configured, checks them first (``authorizer``), unless
    the adapter did before reading the body (``Service.admit``): health
    routes go through, the other routes need an API key, the repository
    routes an admin key, as ``Authorization: Bearer <key>`` or
    ``X-API-Key: <key>``, compared in constant time; 401 without a valid
    key, 403 for an API key on an admin route.  Then it times the request
    and, through ``RequestStats``, the model's compute; adds
    ``X-Model-Name``/``X-Model-Version`` (the model that answered, or the
    default model on routes that name none) and the security headers;
    counts the request in the metrics and writes one JSON access-log line
    (logger ``mlfast.access``, level INFO).  A refused request is timed,
    counted and logged like any other.

One hook rather than a chain of them: each level of ``Service.hooks`` costs
a call and a closure on every request, and the whole of this module is
meant to cost under 5% of the cheapest request (benchmarks/bench_ops.py).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import orjson

from mlfast.serving.http import HttpError, Request, Response, Route
from mlfast.serving.registry import STATS, RequestStats
from mlfast.serving.service import Service

log = logging.getLogger("mlfast.serving")
access_log = logging.getLogger("mlfast.access")

API_KEYS_ENV = "MLFAST_API_KEYS"
ADMIN_KEYS_ENV = "MLFAST_ADMIN_KEYS"
API_KEY_FILE_ENV = "MLFAST_API_KEY_FILE"
ADMIN_KEY_FILE_ENV = "MLFAST_ADMIN_KEY_FILE"
ALLOW_UNAUTHENTICATED_ENV = "MLFAST_ALLOW_UNAUTHENTICATED"

# Headers of every answer: an inference API is not a page to render, frame,
# cache or sniff.  (/docs is FastAPI's own page and keeps its headers.)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
HSTS = ("Strict-Transport-Security", "max-age=31536000")

# The metrics' model labels of a request no model answered (an unknown model).
NO_MODEL = ("", "")
# Error kinds of requests refused for their key.
_REFUSED = ("unauthorized", "forbidden")

# A request id we echo must be safe to put in a header and a log line.
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")


@dataclass
class Ops:
    """Which operations a service gets (``build_service(..., ops=Ops())``).

    ``api_keys``/``admin_keys``: accepted keys (none: no auth at all).
    ``public_metrics``: ``/metrics`` without a key even when keys are set.
    ``tls``: the server speaks HTTPS (adds Strict-Transport-Security).
    """

    request_ids: bool = True
    access_log: bool = True
    metrics: bool = True
    security_headers: bool = True
    api_keys: Sequence[str] = ()
    admin_keys: Sequence[str] = ()
    public_metrics: bool = False
    tls: bool = False

    def __post_init__(self) -> None:
        KeySet(self.api_keys), KeySet(self.admin_keys)  # refuse short keys now, not later

    @property
    def auth(self) -> bool:
        return bool(self.api_keys or self.admin_keys)

    @classmethod
    def from_env(
        cls,
        env: Optional[Mapping[str, str]] = None,
        *,
        api_key_file: Optional[str] = None,
        admin_key_file: Optional[str] = None,
        **options: Any,
    ) -> "Ops":
        """Keys from ``MLFAST_API_KEYS``/``MLFAST_ADMIN_KEYS`` (comma
        separated) and key files (one key a line, ``#`` comments;
        ``MLFAST_API_KEY_FILE``/``MLFAST_ADMIN_KEY_FILE`` or the arguments)."""
        env = os.environ if env is None else env
        api = _split(env.get(API_KEYS_ENV, ""))
        admin = _split(env.get(ADMIN_KEYS_ENV, ""))
        api += read_key_file(api_key_file or env.get(API_KEY_FILE_ENV))
        admin += read_key_file(admin_key_file or env.get(ADMIN_KEY_FILE_ENV))
        return cls(api_keys=tuple(api), admin_keys=tuple(admin), **options)


def _split(text: str) -> List[str]:
    return [k.strip() for k in text.split(",") if k.strip()]


def read_key_file(path: Optional[str]) -> List[str]:
    if not path:
        return []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise ValueError(f"cannot read the key file {path}: {e.strerror or e}") from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


# -- keys ------------------------------------------------------------------------------


class KeySet:
    """Keys compared in constant time: the presented key and every
    configured key are hashed first (so lengths do not show), and every
    configured key is compared with ``hmac.compare_digest`` whether or not
    an earlier one matched.  The hash is BLAKE2s, from the standard
    library's own implementation: as strong here as SHA-256 and half the
    instructions a call of OpenSSL's SHA-256 through ``hashlib``."""

    def __init__(self, keys: Sequence[str]):
        short = [k for k in keys if len(k) < 16]
        if short:
            raise ValueError(
                f"{len(short)} key(s) shorter than 16 characters: use long random keys "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        self.digests = tuple(_digest(k) for k in keys)

    def __bool__(self) -> bool:
        return bool(self.digests)

    def __len__(self) -> int:
        return len(self.digests)

    def accepts(self, key: str) -> bool:
        return _accepts(self.digests, _digest(key))


def _digest(key: str) -> bytes:
    return hashlib.blake2s(key.encode("utf-8", "surrogateescape")).digest()


def _accepts(digests: Sequence[bytes], digest: bytes) -> bool:
    ok = False
    for known in digests:
        ok |= hmac.compare_digest(known, digest)
    return ok


def presented_key(headers: Mapping[str, str]) -> Optional[str]:
    """``Authorization: Bearer <key>``, else ``X-API-Key: <key>``."""
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    key = headers.get("x-api-key")
    return key.strip() if key else None


def authorizer(api_keys: KeySet, admin_keys: KeySet) -> Callable[[Route, Request], None]:
    """The key check of the observing hook: returns, or raises the 401/403."""
    challenge = {"WWW-Authenticate": 'Bearer realm="mlfast"'}
    missing = "missing or invalid API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
    either = api_keys.digests + admin_keys.digests  # an admin key opens the API routes too

    def authorize(route: Route, request: Request) -> None:
        access = route.access
        if access == "open":
            return
        key = presented_key(request.headers)
        if access != "admin":  # one hash, compared with every key
            if key is not None and _accepts(either, _digest(key)):
                return
            raise HttpError(401, missing, challenge)
        if key is not None and admin_keys.accepts(key):
            return
        if not admin_keys:
            raise HttpError(
                403,
                "the model repository endpoints need an admin key, and none "
                f"is configured ({ADMIN_KEYS_ENV})",
            )
        if key is not None and api_keys.accepts(key):
            raise HttpError(403, "this endpoint needs an admin key; an API key was sent")
        raise HttpError(401, missing.replace("API key", "admin key"), challenge)

    return authorize


# -- observing: request ids, headers, metrics, access log ----------------------------------


def static_headers(ops: Ops) -> Dict[str, str]:
    """The headers of every answer: the security headers (and HSTS over TLS)."""
    static = dict(SECURITY_HEADERS) if ops.security_headers else {}
    if ops.security_headers and ops.tls:
        static[HSTS[0]] = HSTS[1]
    return static


def observe_hook(
    service: Service,
    ops: Ops,
    metrics: Any = None,
    authorize: Optional[Callable[[Route, Request], None]] = None,
) -> Callable:
    registry = service.registry
    static_items = list(static_headers(ops).items())
    request_ids = ops.request_ids
    log_access = ops.access_log
    in_flight = metrics.in_flight if metrics is not None else None
    count = metrics.counts.count if metrics is not None else None
    count_error = metrics.counts.error if metrics is not None else None
    perf_counter = time.perf_counter

    def observe(route: Route, request: Request, call_next: Callable[[], Response]) -> Response:
        if request_ids:
            rid = request.headers.get("x-request-id")
            if rid is None or not _REQUEST_ID.fullmatch(rid):
                rid = os.urandom(16).hex()
            request.id = rid
        stats = RequestStats()
        token = STATS.set(stats)
        if in_flight is not None:
            in_flight.inc(request)
        start = perf_counter()
        try:
            try:
                if authorize is not None and not request.admitted:
                    authorize(route, request)
                response = call_next()  # never raises: errors come back as answers
            except HttpError as e:  # so this is the key check's refusal
                response = service.error_response(route, request, e)
        finally:
            STATS.reset(token)
            if in_flight is not None:
                in_flight.dec(request)
        elapsed = perf_counter() - start
        headers = response.headers
        served = request.served
        if served is None and "name" not in request.params and request.error_kind not in _REFUSED:
            # a route that names no model answers for the default one; a
            # caller without a valid key learns nothing about it
            served = registry._snap.default
        if served is not None:
            headers["X-Model-Name"] = served.name
            headers["X-Model-Version"] = served.version
        if request_ids and request.id is not None:
            headers["X-Request-ID"] = request.id
        for key, value in static_items:
            if key not in headers:
                headers[key] = value
        if count is not None:
            count(
                (route.labels, response.status, served.labels if served is not None else NO_MODEL),
                elapsed,
                stats.rows,
                stats.compute,
            )
            if count_error is not None and request.error_kind is not None:
                count_error(route, request.error_kind, served)
        if log_access and access_log.isEnabledFor(logging.INFO):
            fields = {
                "request_id": request.id,
                "method": request.method,
                "path": request.path,
                "route": route.name,
                "protocol": route.protocol,
                "status": response.status,
                "model": served.name if served is not None else None,
                "version": served.version if served is not None else None,
                "duration_ms": round(elapsed * 1000, 3),
                "compute_ms": round(stats.compute * 1000, 3),
                "rows": stats.rows,
                "bytes_in": len(request.body),
                "bytes_out": len(response.body),
                "client": request.client or None,
                "pid": os.getpid(),
            }
            if request.error_kind is not None:
                fields["error"] = request.error_kind
            access_log.info(fields)
        return response

    return observe


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``ts``, ``level``, ``logger``, then the
    record's fields (a dict message, as the access log writes) or
    ``message``; ``exception`` holds a traceback (logs only, never a
    response)."""

    def format(self, record: logging.LogRecord) -> str:
        t = record.created
        out: Dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if isinstance(record.msg, dict):
            out.update(record.msg)
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure_logging(level: str = "info", stream: Any = None) -> None:
    """JSON lines on stderr for mlfast's loggers (``mlfast.access`` and the
    serving errors); the servers' own loggers are left as they are."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("mlfast",):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


# -- installing ---------------------------------------------------------------------------


def install(service: Service, ops: Ops) -> List[Route]:
    """Add the hooks that ``ops`` asks for to ``service``; returns the
    routes it brings (``/metrics``) for the caller to add after the
    protocols' own."""
    metrics = None
    if ops.metrics:
        from mlfast.serving.metrics import Metrics

        metrics = Metrics(service.registry)
        service.metrics = metrics
        service.on_worker_start.append(metrics.start)
        if service.repository is not None:
            service.repository.listeners.append(metrics.model_load)
        else:  # one model, loaded before the service existed
            for served in service.registry.models():
                metrics.model_load(served.name, served.version, True, served.load_seconds, "")
    authorize = authorizer(KeySet(ops.api_keys), KeySet(ops.admin_keys)) if ops.auth else None
    service.authorize = authorize
    service.headers = static_headers(ops)
    service.hooks.append(observe_hook(service, ops, metrics, authorize))
    return [metrics.route("open" if ops.public_metrics else "api")] if metrics is not None else []


# -- binding ------------------------------------------------------------------------------


# What SageMaker sets in an inference container (the platform, or its SDK
# when it deploys a model), and what the operator of a bring-your-own
# container sets for it.  Names, not a prefix: unrelated packages give
# their own settings SM_* names (SM_FRAMEWORK), which would switch the
# refusal off.
SAGEMAKER_VARIABLES = (
    "SAGEMAKER_BIND_TO_PORT",
    "SAGEMAKER_SAFE_PORT_RANGE",
    "SAGEMAKER_MODEL_SERVER_WORKERS",
    "SAGEMAKER_MODEL_SERVER_TIMEOUT",
    "SAGEMAKER_PROGRAM",
    "SAGEMAKER_SUBMIT_DIRECTORY",
    "SAGEMAKER_REGION",
    "SAGEMAKER_CONTAINER_LOG_LEVEL",
    "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT",
    "SAGEMAKER_MULTI_MODEL",
    "SM_MODEL_DIR",
)
# What Vertex AI sets in every custom container.
VERTEX_VARIABLES = ("AIP_HTTP_PORT", "AIP_PREDICT_ROUTE", "AIP_HEALTH_ROUTE", "AIP_MODE")


def platform(env: Mapping[str, str]) -> Optional[str]:
    """The managed platform we run on, whose front end authenticates
    callers: SageMaker or Vertex AI, told by the variables they set."""
    if any(env.get(k) for k in SAGEMAKER_VARIABLES):
        return "SageMaker"
    if any(env.get(k) for k in VERTEX_VARIABLES):
        return "Vertex AI"
    return None


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(
    host: str,
    ops: Optional[Ops],
    allow_unauthenticated: bool,
    env: Optional[Mapping[str, str]] = None,
) -> None:
    """Refuse (ValueError) to serve a non-loopback address with no keys,
    unless told to or behind SageMaker's or Vertex AI's front end."""
    env = os.environ if env is None else env
    if is_loopback(host) or (ops is not None and ops.auth) or allow_unauthenticated:
        return
    if env.get(ALLOW_UNAUTHENTICATED_ENV, "").lower() in ("1", "true", "yes"):
        return
    if platform(env):
        return
    raise ValueError(
        f"refusing to serve {host} without API keys: anyone who can reach it could use the model. "
        f"Set {API_KEYS_ENV} (comma-separated keys) or --api-key-file, bind 127.0.0.1, or pass "
        f"--allow-unauthenticated ({ALLOW_UNAUTHENTICATED_ENV}=1) if something in front of this "
        "server authenticates callers"
    )


__all__ = [
    "Ops",
    "KeySet",
    "install",
    "check_bind",
    "configure_logging",
    "JsonFormatter",
    "SECURITY_HEADERS",
    "platform",
    "is_loopback",
    "presented_key",
]
