"""Serving: the lesson's ``/predict``, SageMaker, Vertex AI, KServe V1 and the
Open Inference Protocol (V2) over one framework-neutral core.

    >>> from mlfast.serving import create_app
    >>> app = create_app("model.pkl")                      # FastAPI, /docs included
    >>> app = create_app("model.pkl", framework="flask")   # Flask

Layers: ``core`` (Request, Response, Route, ServedModel, ModelRegistry,
Service), ``codec`` (bodies to ndarrays and back), one module per protocol
(``lesson``, ``sagemaker``, ``vertex``, ``kserve``) declaring its routes as
data, and the adapters ``serving.fastapi`` and ``serving.flask`` that map
those routes onto a framework.  ``server.run`` starts processes (uvicorn,
gunicorn); ``container`` is the entrypoint of the SageMaker/Vertex image.

Web frameworks are imported only when an app is created: ``pip install
'mlfast[serve]'``.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence

from mlfast.serving.core import (
    DEFAULT_MAX_BODY,
    HttpError,
    ModelRegistry,
    Request,
    Response,
    Route,
    ServedModel,
    Service,
    served_model,
)

FRAMEWORKS = ("fastapi", "flask")
PROTOCOLS = ("lesson", "sagemaker", "vertex", "kserve")

__all__ = [
    "create_app",
    "build_service",
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
) -> Service:
    """The framework-neutral service: one model (a ``mlfast.Model``, a model
    file, or a directory holding ``model.joblib``/``model.pkl``) and the routes
    of ``protocols``.  ``env`` (default ``os.environ``) supplies the
    platforms' settings such as ``AIP_PREDICT_ROUTE``."""
    from mlfast.serving import kserve, lesson, sagemaker, vertex

    env = os.environ if env is None else env
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown protocol(s) {unknown}; choose from {list(PROTOCOLS)}")
    registry = ModelRegistry([served_model(model_or_path, name, version)])
    service = Service(registry, max_body=max_body)
    # Order matters only where two protocols name the same method and path
    # (AIP_HEALTH_ROUTE=/ping, say): the first keeps it.
    for protocol in PROTOCOLS:
        if protocol not in protocols:
            continue
        if protocol == "lesson":
            service.add_routes(lesson.routes(registry))
        elif protocol == "sagemaker":
            service.add_routes(sagemaker.routes(registry, env))
        elif protocol == "vertex":
            service.add_routes(vertex.routes(registry, env))
        elif protocol == "kserve":
            service.add_routes(kserve.routes(registry))
    return service


def create_app(model_or_path: Any, framework: str = "fastapi", **options: Any):
    """A FastAPI or Flask app serving one model on every protocol.

    ``model_or_path``: a ``mlfast.Model``, a model file, a directory with
    ``model.joblib``/``model.pkl``, or a ``Service`` already built.  ``options`` go to :func:`build_service`
    (``name``, ``version``, ``protocols``, ``max_body``, ``env``).  The result
    is a plain FastAPI or Flask app: add your own routes to it as usual.
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {', '.join(FRAMEWORKS)}, got {framework!r}")
    if isinstance(model_or_path, Service):
        service = model_or_path
    else:
        service = build_service(model_or_path, **options)
    if framework == "fastapi":
        from mlfast.serving.fastapi import build_app
    else:
        from mlfast.serving.flask import build_app
    return build_app(service)
