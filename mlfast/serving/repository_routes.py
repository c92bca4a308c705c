"""The HTTP face of the model repository (``serving.repository``): the Open
Inference Protocol's model repository extension, admin routes.

The repository raises domain errors (an unknown model, a version that did
not load, a conflict with the default model); the service answers them.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from mlfast.serving import codec
from mlfast.serving.errors import InvalidInput
from mlfast.serving.http import Request, Response, Route, json_response
from mlfast.serving.schemas import (
    RepositoryIndex,
    RepositoryIndexRequest,
    RepositoryModel,
    RepositoryRequest,
)
from mlfast.serving.service import Service

# The extension belongs to the Open Inference Protocol: its routes count
# under KServe's protocol label.
PROTOCOL = "kserve"


def _repository_parameters(request: Request) -> Dict[str, Any]:
    """The optional body of the repository routes: ``{"parameters": {...}}``."""
    if not request.body.strip():
        return {}
    doc = codec.parse_json(request.body)
    if not isinstance(doc, dict):
        raise InvalidInput('expected an object {"parameters": {...}}')
    params = doc.get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidInput("'parameters' must be an object")
    return {**{k: v for k, v in doc.items() if k != "parameters"}, **params}


def routes(service: Service) -> List[Route]:
    """The Open Inference Protocol's model repository extension, over the
    service's ``serving.repository.ModelRepository`` (none: no routes);
    admin routes.

    ``POST /v2/repository/index`` (``{"ready": true}`` for the served ones
    only) lists every version with its state and the reason it is not
    served; ``POST /v2/repository/models/{name}/load`` loads what is on disk
    (``{"parameters": {"version": "3"}}`` for one version; ``"pin": true``
    serves it by default, ``"pin": false`` unpins); ``.../unload`` unloads
    a version (``{"parameters": {"version": "3"}}``: a rollback) or the
    whole model.
    """
    registry, repository = service.registry, service.repository
    if repository is None:
        return []

    def version_of(params: Dict[str, Any]) -> Optional[str]:
        version = params.get("version")
        if version is None:
            return None
        if isinstance(version, bool) or not isinstance(version, (str, int)):
            raise InvalidInput(f"'version' must be a string, got {codec.show(version)}")
        return str(version)

    def index(request: Request) -> Response:
        params = _repository_parameters(request)
        entries = repository.index()
        if params.get("ready"):
            entries = [e for e in entries if e["state"] == "READY"]
        return json_response(entries)

    def load(request: Request) -> Response:
        params = _repository_parameters(request)
        pin = params.get("pin")
        if pin is not None and not isinstance(pin, bool):
            raise InvalidInput(f"'pin' must be true or false, got {codec.show(pin)}")
        answer = repository.load(request.params["name"], version_of(params), pin)
        registry.for_request(request, request.params["name"])
        return json_response(answer)

    def unload(request: Request) -> Response:
        params = _repository_parameters(request)
        answer = repository.unload(request.params["name"], version_of(params))
        if answer["versions"]:
            registry.for_request(request, request.params["name"])
        return json_response(answer)

    names = {"name": registry.default_name or "model"}
    tag = "Model repository (V2 extension)"
    return [
        Route(
            "POST",
            "/v2/repository/index",
            index,
            "v2_repository_index",
            tag=tag,
            summary="List the repository's models and versions",
            access="admin",
            request_schema=RepositoryIndexRequest,
            response_schema=RepositoryIndex,
            examples={"application/json": {"ready": False}},
        ),
        Route(
            "POST",
            "/v2/repository/models/{name}/load",
            load,
            "v2_repository_load",
            tag=tag,
            summary="Load (or pin) a model's versions from disk",
            access="admin",
            request_schema=RepositoryRequest,
            response_schema=RepositoryModel,
            param_examples=names,
            examples={"application/json": {"parameters": {"version": "2", "pin": True}}},
        ),
        Route(
            "POST",
            "/v2/repository/models/{name}/unload",
            unload,
            "v2_repository_unload",
            tag=tag,
            summary="Unload a version (roll back) or the whole model",
            access="admin",
            request_schema=RepositoryRequest,
            response_schema=RepositoryModel,
            param_examples=names,
            examples={"application/json": {"parameters": {"version": "2"}}},
        ),
    ]


__all__ = ["PROTOCOL", "routes"]
