"""The lesson's protocol: ``POST /predict`` with ``{"features": [...]}``.

``{"features": [5.1, 3.5, 1.4, 0.2]}`` answers ``{"prediction": 0}`` as the
lesson's ``jsonify({'prediction': int(prediction[0])})`` does (a string for
string labels, a float for a regressor); a list of rows answers
``{"predictions": [...]}``; ``{"instances": ...}`` and bare arrays are read
too and answered in their own style.  ``GET /`` describes the server.
"""

from __future__ import annotations

from typing import List

import mlfast
from mlfast.serving import codec
from mlfast.serving.http import HttpError, Request, Response, Route, json_response
from mlfast.serving.schemas import PredictRequest, PredictResponse, ServerIndex
from mlfast.serving.service import Service

PROTOCOL = "lesson"
TAG = "Lesson"

# The lesson reads the body with request.get_json(force=True): whatever the
# Content-Type, it is JSON.  We keep that for the types curl and browsers
# send by default, read CSV and NPY as such, and refuse the rest (415).
_JSON_LIKE = ("", "application/json", "text/plain", "application/x-www-form-urlencoded")


def json_media(request: Request) -> str:
    media = request.media_type
    if media in _JSON_LIKE or media.endswith("+json"):
        return "application/json"
    if media in codec.CSV_TYPES or media in codec.NPY_TYPES:
        return media
    raise HttpError(
        415,
        f"unsupported Content-Type {media!r}: send application/json "
        "(or text/csv, application/x-npy)",
    )


def examples(served) -> dict:
    """Request examples for the docs, by media type."""
    row = served.example_row()
    return {"application/json": {"features": row}, "text/csv": ",".join(str(v) for v in row) + "\n"}


def routes(service: Service) -> List[Route]:
    registry = service.registry
    served = registry.default

    def predict(request: Request) -> Response:
        model = registry.for_request(request)
        X, style = codec.decode_payload(request.body, json_media(request), model)
        return json_response(codec.encode_predictions(model.predict(X), style))

    def index(request: Request) -> Response:
        answer = {
            "name": "mlfast",
            "version": mlfast.__version__,
            "model": registry.for_request(request).describe(),
            "models": {
                name: {
                    "versions": registry.versions(name),
                    "default_version": registry.default_version(name),
                }
                for name in registry.names()
            },
        }
        if service.docs_path is not None:  # the adapter serves API docs (FastAPI does)
            answer["docs"] = service.docs_path
        return json_response(answer)

    return [
        Route(
            "POST",
            "/predict",
            predict,
            "predict",
            summary="Predict (the lesson's endpoint)",
            description='The lesson\'s `/predict`: `{"features": [...]}` answers '
            '`{"prediction": label}`; a list of rows answers `{"predictions": [...]}`.',
            tag=TAG,
            request_schema=PredictRequest,
            response_schema=PredictResponse,
            request_types=("application/json", "text/csv", "application/x-npy"),
            examples=examples(served),
        ),
        Route(
            "GET",
            "/",
            index,
            "index",
            summary="The server and its model",
            tag=TAG,
            response_schema=ServerIndex,
        ),
    ]


__all__ = ["PROTOCOL", "routes"]
