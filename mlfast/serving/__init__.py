"""Serving: the lesson's ``/predict``, SageMaker, Vertex AI, KServe V1 and the
Open Inference Protocol (V2) over one framework-neutral core.

    >>> from mlfast.serving import create_app
    >>> app = create_app("model.pkl")                      # FastAPI, /docs included
    >>> app = create_app("model.pkl", framework="flask")   # Flask

Layers, one job a module: ``http`` (Request, Response, Route, HttpError),
``errors`` (the domain's errors), ``registry`` (ServedModel, ModelRegistry),
``service`` (the route table, and errors into answers), ``loading`` (model
files, SHA-256 pins, names); ``codec`` (bodies and tensors to ndarrays and
back); one module per protocol (``lesson``, ``sagemaker``, ``vertex``,
``kserve_v1``, ``oip`` and ``repository_routes``), each declaring its routes
as data with ``routes(service)``; the adapters ``serving.fastapi`` and
``serving.flask`` that map those routes onto a framework.  Operations are
``ops``, ``metrics`` and ``repository``; ``server.run`` starts processes
(uvicorn, gunicorn); ``container`` is the entrypoint of the SageMaker/Vertex
image.

Web frameworks are imported only when an app is created: ``pip install
'mlfast[serve]'``.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional, Sequence, Union

import mlfast


def needs_serve_extra(missing: Optional[str]) -> str:
    """What to do when a module of the ``serve`` extra is missing: one
    wording for ``create_app``, the apps and ``mlfast serve``."""
    return (
        f"serving models needs mlfast's web stack, and {missing or 'a module of it'} is not "
        "installed: pip install 'mlfast[serve]'"
    )


@contextlib.contextmanager
def serve_extra() -> Iterator[None]:
    """Imports of the ``serve`` extra: a missing one says how to install it."""
    try:
        yield
    except ModuleNotFoundError as e:
        package = (e.name or "").split(".")[0]  # gunicorn.http: the gunicorn package
        if not package or package == "mlfast":
            raise
        raise ModuleNotFoundError(needs_serve_extra(package), name=package) from None


with serve_extra():
    import orjson  # noqa: F401 - the serving core writes JSON with it

from mlfast.serving.http import DEFAULT_MAX_BODY, HttpError, Request, Response, Route  # noqa: E402
from mlfast.serving.loading import served_model  # noqa: E402
from mlfast.serving.registry import ModelRegistry, ServedModel  # noqa: E402
from mlfast.serving.service import Service  # noqa: E402

if TYPE_CHECKING:
    from mlfast.serving.ops import Ops

FRAMEWORKS = ("fastapi", "flask")
PROTOCOLS = ("lesson", "sagemaker", "vertex", "kserve")
# The modules of the protocols, in the order their routes are added: where
# two name the same method and path (AIP_HEALTH_ROUTE=/ping, say), the
# first keeps it.  Each has PROTOCOL (its name in PROTOCOLS) and
# routes(service).
PROTOCOL_MODULES = ("lesson", "sagemaker", "vertex", "kserve_v1", "oip", "repository_routes")

__all__ = [
    "create_app",
    "build_service",
    "needs_serve_extra",
    "FRAMEWORKS",
    "PROTOCOLS",
    "HttpError",
    "ModelRegistry",
    "Request",
    "Response",
    "Route",
    "ServedModel",
    "Service",
]


def build_service(
    model_or_path: Any,
    *,
    name: Optional[str] = None,
    version: str = "1",
    protocols: Sequence[str] = PROTOCOLS,
    max_body: int = DEFAULT_MAX_BODY,
    env: Optional[Mapping[str, str]] = None,
    ops: Optional["Ops"] = None,
    protocol_limits: Optional[Mapping[str, int]] = None,
    request_timeout: Optional[float] = None,
    sha256: Union[None, str, Mapping[str, str]] = None,
    default_model: Optional[str] = None,
    pins: Optional[Mapping[str, str]] = None,
    watch: bool = True,
    poll_interval: float = 2.0,
) -> Service:
    """The framework-neutral service: one model (a ``mlfast.Model``, a model
    file, or a directory holding ``model.joblib``/``model.pkl``) or a model
    repository (a directory laid out ``<name>/<version>/model.joblib``), and
    the routes of ``protocols``.  ``env`` (default ``os.environ``) supplies
    the platforms' settings such as ``AIP_PREDICT_ROUTE``.

    ``ops`` (an ``ops.Ops``) adds request ids, access logs, metrics and API
    keys as hooks (none by default here; ``create_app`` and ``mlfast serve``
    add them).  ``protocol_limits`` sets body limits by protocol
    (``{"sagemaker": 20_000_000}``), ``request_timeout`` a deadline in
    seconds.  ``sha256``: the model file's hash (a repository: a mapping of
    ``"name/version"`` to hashes), checked before the file is parsed.
    Repository only: ``default_model`` (the model of ``/predict``, SageMaker
    and Vertex AI), ``pins`` (name to the version served by default),
    ``watch`` and ``poll_interval`` (seconds) for picking up new versions.
    """
    import importlib

    from mlfast.serving.repository import ModelRepository, is_repository

    env = os.environ if env is None else env
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown protocol(s) {unknown}; choose from {list(PROTOCOLS)}")
    unknown = [p for p in (protocol_limits or {}) if p not in PROTOCOLS]
    if unknown:
        raise ValueError(
            f"body limits for unknown protocol(s) {unknown}; choose from {list(PROTOCOLS)}"
        )
    repository = None
    if not isinstance(model_or_path, mlfast.Model) and is_repository(model_or_path):
        if isinstance(sha256, str):
            raise ValueError("a model repository takes SHA-256 pins as NAME/VERSION=HEX")
        repository = ModelRepository(
            model_or_path,
            default_model=default_model,
            pins=pins,
            sha256=sha256,
            watch=watch,
            poll_interval=poll_interval,
        )
        registry = repository.registry
    else:
        if sha256 is not None and not isinstance(sha256, str):
            raise ValueError("one model file takes one SHA-256")
        registry = ModelRegistry([served_model(model_or_path, name, version, sha256=sha256)])
    service = Service(
        registry,
        max_body=max_body,
        protocol_limits=protocol_limits,
        request_timeout=request_timeout,
        env=env,
    )
    service.repository = repository
    extra = []
    if ops is not None:
        from mlfast.serving.ops import install

        extra = install(service, ops)
    if repository is not None:
        repository.load_initial()
        service.on_worker_start.append(repository.start_watching)
    for module_name in PROTOCOL_MODULES:
        with serve_extra():  # pydantic, for the routes' schemas
            module = importlib.import_module(f"mlfast.serving.{module_name}")
        if module.PROTOCOL in protocols:
            service.add_routes(module.routes(service), module.PROTOCOL)
    service.add_routes(extra)
    return service


def create_app(model_or_path: Any, framework: str = "fastapi", **options: Any):
    """A FastAPI or Flask app serving a model (or a model repository) on
    every protocol.

    ``model_or_path``: a ``mlfast.Model``, a model file, a directory with
    ``model.joblib``/``model.pkl``, a repository directory, or a ``Service``
    already built (used as it is).  ``options`` go to :func:`build_service`
    (``name``, ``version``, ``protocols``, ``max_body``, ``env``, ...).
    ``ops`` defaults to ``Ops.from_env()``: request ids, JSON access logs
    (logger ``mlfast.access``), ``/metrics`` when prometheus-client is
    installed, and API keys from ``MLFAST_API_KEYS``/``MLFAST_ADMIN_KEYS``
    when set.  A repository's watcher starts here, in this process.  The
    result is a plain FastAPI or Flask app: add your own routes as usual.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {', '.join(FRAMEWORKS)}, got {framework!r}")
    if isinstance(model_or_path, Service):
        service = model_or_path
    else:
        if "ops" not in options:
            from mlfast.serving.ops import Ops

            options["ops"] = Ops.from_env(options.get("env"), metrics=_have_prometheus())
        service = build_service(model_or_path, **options)
        service.start_worker()
    import importlib

    with serve_extra():
        # mlfast.serving.fastapi or mlfast.serving.flask: the same build_app
        adapter = importlib.import_module(f"mlfast.serving.{framework}")
    return adapter.build_app(service)


def _have_prometheus() -> bool:
    import importlib.util

    return importlib.util.find_spec("prometheus_client") is not None
