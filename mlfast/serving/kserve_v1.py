"""KServe's V1 protocol: ``GET /v1/models``, ``GET /v1/models/{name}``
(readiness) and ``POST /v1/models/{name}:predict`` with
``{"instances": [...]}``, answered ``{"predictions": [...]}``.
"""

from __future__ import annotations

from typing import List

from mlfast.serving import codec
from mlfast.serving.errors import InvalidInput, NotReady
from mlfast.serving.http import Handler, HttpError, Request, Response, Route, json_response
from mlfast.serving.registry import ModelRegistry
from mlfast.serving.schemas import InstancesBody, ModelList, ModelReady, PredictionsBody
from mlfast.serving.service import Service

PROTOCOL = "kserve"
TAG = "KServe V1"


def model_ready(registry: ModelRegistry) -> Handler:
    """Readiness of the model (and version) the path names, as V1's
    ``GET /v1/models/{name}`` and V2's ``.../ready`` both answer it:
    ``{"name", "ready": true}``, or 503 while it is not ready."""

    def ready(request: Request) -> Response:
        model = registry.for_request(request, request.params["name"], request.params.get("version"))
        if not model.ready:
            raise NotReady(f"model {model.name!r} is not ready")
        return json_response({"name": model.name, "ready": True})

    return ready


def routes(service: Service) -> List[Route]:
    registry = service.registry
    served = registry.default

    def models(request: Request) -> Response:
        return json_response({"models": registry.names()})

    def predict(request: Request) -> Response:
        model = registry.for_request(request, request.params["name"])
        media = request.media_type
        if media not in ("", "application/json") and not media.endswith("+json"):
            raise HttpError(415, f"unsupported Content-Type {media!r}: send application/json")
        data = codec.parse_json(request.body)
        if not isinstance(data, dict) or "instances" not in data:
            raise InvalidInput("missing key 'instances': expected {\"instances\": [[...], ...]}")
        X = codec.instances_to_matrix(data["instances"], model)
        return json_response({"predictions": model.predict(X)})

    names = {"name": served.name}
    return [
        Route(
            "GET",
            "/v1/models",
            models,
            "v1_models",
            summary="List models",
            tag=TAG,
            response_schema=ModelList,
        ),
        Route(
            "GET",
            "/v1/models/{name}",
            model_ready(registry),
            "v1_model",
            summary="Model readiness",
            tag=TAG,
            response_schema=ModelReady,
            param_examples=names,
            access="open",
        ),
        Route(
            "POST",
            "/v1/models/{name}:predict",
            predict,
            "v1_predict",
            summary="Predict",
            tag=TAG,
            request_schema=InstancesBody,
            response_schema=PredictionsBody,
            examples={"application/json": {"instances": [served.example_row()]}},
            param_examples=names,
        ),
    ]


__all__ = ["PROTOCOL", "routes", "model_ready"]
