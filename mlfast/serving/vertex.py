"""Vertex AI: the custom-container contract and the REST paths the SDK calls.

Container contract: health on ``AIP_HEALTH_ROUTE``, predictions on
``AIP_PREDICT_ROUTE`` (their defaults, and the templates
``/v1/endpoints/{endpoint}/deployedModels/{deployed_model}[:predict]``, are
always served); ``{"instances": [...], "parameters": {...}}`` answers
``{"predictions": [...]}``; requests over 1.5 MB get 413, as on Vertex AI's
public endpoints.

The SDK's REST paths: ``google-cloud-aiplatform``'s ``Endpoint(id)`` GETs
``/v1/projects/{p}/locations/{l}/endpoints/{e}`` and ``.predict`` POSTs
``...:predict``; both are served (for any project, location and endpoint id:
this server is the endpoint), so the lesson's client runs against it when
``aiplatform.init`` is given ``api_endpoint='http://127.0.0.1:8000'``.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, List, Optional

from mlfast.serving import codec
from mlfast.serving.errors import InvalidInput, NotReady
from mlfast.serving.http import HttpError, Request, Response, Route, dumps, json_response
from mlfast.serving.schemas import (
    Health,
    InstancesBody,
    PredictionsBody,
    VertexEndpoint,
    VertexPrediction,
)
from mlfast.serving.service import Service

PROTOCOL = "vertex"
TAG = "Vertex AI"
# Vertex AI public endpoints refuse requests over 1.5 MB.
MAX_BODY = 1_500_000

HEALTH_TEMPLATE = "/v1/endpoints/{endpoint}/deployedModels/{deployed_model}"
PREDICT_TEMPLATE = HEALTH_TEMPLATE + ":predict"
SDK_ENDPOINT = "/v1/projects/{project}/locations/{location}/endpoints/{endpoint}"


_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    406: "INVALID_ARGUMENT",
    408: "DEADLINE_EXCEEDED",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def google_error(status: int, message: str, headers: Optional[Dict[str, str]] = None) -> Response:
    """Google APIs' error body, ``{"error": {"code", "message", "status"}}``:
    the SDK's REST transport reads ``error.message`` (and fails on a plain
    string), so the Vertex AI API paths answer in this shape."""
    body = {
        "error": {
            "code": status,
            "message": message,
            "status": _GOOGLE_STATUS.get(
                status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"
            ),
        }
    }
    return Response(status, dumps(body), "application/json", dict(headers or {}))


def _instances(request: Request, served) -> Any:
    media = request.media_type
    if media not in ("", "application/json") and not media.endswith("+json"):
        raise HttpError(
            415, f"unsupported Content-Type {media!r}: Vertex AI sends application/json"
        )
    data = codec.parse_json(request.body)
    if not isinstance(data, dict) or "instances" not in data:
        got = (
            f"keys {', '.join(map(repr, list(data)[:5]))}"
            if isinstance(data, dict)
            else "not an object"
        )
        raise InvalidInput(
            f"missing key 'instances': expected {{\"instances\": [[...], ...], "
            f'"parameters": {{...}}}} ({got})'
        )
    parameters = data.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidInput("'parameters' must be an object")
    return codec.instances_to_matrix(data["instances"], served)


def routes(service: Service) -> List[Route]:
    registry, env = service.registry, service.env
    served = registry.default
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    deployed_id = env.get("AIP_DEPLOYED_MODEL_ID") or served.name

    def health(request: Request) -> Response:
        if not registry.ready:
            raise NotReady("the model is not loaded yet")
        return json_response({"status": "ok"})

    def predict(request: Request) -> Response:
        model = registry.for_request(request)
        X = _instances(request, model)
        return json_response({"predictions": model.predict(X)})

    def sdk_predict(request: Request) -> Response:
        model = registry.for_request(request)
        X = _instances(request, model)
        p = request.params
        return json_response(
            {
                "predictions": model.predict(X),
                "deployedModelId": deployed_id,
                "model": f"projects/{p['project']}/locations/{p['location']}/models/{model.name}",
                "modelDisplayName": model.name,
                "modelVersionId": model.version,
            }
        )

    def sdk_endpoint(request: Request) -> Response:
        model = registry.for_request(request)
        p = request.params
        return json_response(
            {
                "name": f"projects/{p['project']}/locations/{p['location']}/endpoints/{p['endpoint']}",
                "displayName": f"mlfast {model.name}",
                "deployedModels": [
                    {
                        "id": deployed_id,
                        "model": f"projects/{p['project']}/locations/{p['location']}/models/{model.name}",
                        "displayName": model.name,
                        "modelVersionId": model.version,
                        "createTime": started,
                    }
                ],
                "trafficSplit": {deployed_id: 100},
                "createTime": started,
                "updateTime": started,
            }
        )

    example = {"application/json": {"instances": [served.example_row()], "parameters": {}}}
    ids = {
        "endpoint": env.get("AIP_ENDPOINT_ID") or "your-endpoint-id",
        "deployed_model": deployed_id,
        "project": "your-project-id",
        "location": "us-central1",
    }
    # the Route fields the predict routes share
    predict_doc: Dict[str, Any] = dict(
        tag=TAG,
        request_schema=InstancesBody,
        response_schema=PredictionsBody,
        examples=example,
        max_body=MAX_BODY,
        param_examples=ids,
    )
    out = []
    health_route = env.get("AIP_HEALTH_ROUTE")
    predict_route = env.get("AIP_PREDICT_ROUTE")
    if health_route:
        out.append(
            Route(
                "GET",
                health_route,
                health,
                "vertex_health_aip",
                summary="Vertex AI health (AIP_HEALTH_ROUTE)",
                tag=TAG,
                response_schema=Health,
                access="open",
            )
        )
    if predict_route:
        out.append(
            Route(
                "POST",
                predict_route,
                predict,
                "vertex_predict_aip",
                summary="Vertex AI predict (AIP_PREDICT_ROUTE)",
                **predict_doc,
            )
        )
    out += [
        Route(
            "GET",
            HEALTH_TEMPLATE,
            health,
            "vertex_health",
            summary="Vertex AI health check",
            tag=TAG,
            response_schema=Health,
            param_examples=ids,
            access="open",
        ),
        Route(
            "POST",
            PREDICT_TEMPLATE,
            predict,
            "vertex_predict",
            summary="Vertex AI predict (container contract)",
            **predict_doc,
        ),
        Route(
            "GET",
            SDK_ENDPOINT,
            sdk_endpoint,
            "vertex_get_endpoint",
            summary="Vertex AI Endpoint resource (what aiplatform.Endpoint(id) reads)",
            tag=TAG,
            response_schema=VertexEndpoint,
            param_examples=ids,
            on_error=google_error,
        ),
        Route(
            "POST",
            SDK_ENDPOINT + ":predict",
            sdk_predict,
            "vertex_sdk_predict",
            summary="Vertex AI PredictionService.Predict (what Endpoint.predict calls)",
            on_error=google_error,
            **dict(predict_doc, response_schema=VertexPrediction),
        ),
    ]
    return out


__all__ = ["PROTOCOL", "routes"]
