"""Pydantic models of the protocols' bodies, for their OpenAPI descriptions.

They document bodies on /docs; requests are never parsed through them (the
codec decodes JSON straight to ndarrays).  Class names are unique across
protocols because they become OpenAPI component names.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

from pydantic import BaseModel, Field, RootModel

# A prediction: an int for integer class labels (the lesson's int(...)), a
# string for string labels, a float for regressors, a list for multi-output
# models and transformers; null for NaN.
Label = Union[int, float, str, bool, None]
Value = Union[Label, List[Optional[float]]]
Number = Optional[float]
Row = List[Number]


class ErrorBody(BaseModel):
    """Every error: what was wrong, in words."""

    error: str = Field(description="what was wrong with the request, or why it cannot be served")


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class ModelInfo(BaseModel):
    """The served model."""

    name: str
    version: str
    estimator: str = Field(
        description="the estimator chain, e.g. 'StandardScaler -> LogisticRegression'"
    )
    kind: str = Field(description="'classifier', 'regressor' or 'transformer'")
    n_features_in: Optional[int] = None
    methods: List[str]
    sklearn_version: Optional[str] = None
    feature_names_in: Optional[List[str]] = None
    classes: Optional[Union[List[Label], List[List[Label]]]] = Field(
        default=None, description="class labels; one list per output for a multi-output classifier"
    )
    mlflow: Optional[Dict[str, Any]] = Field(
        default=None,
        description="an MLflow model's flavor, run_id, serialization format and "
        "signature, as its MLmodel says",
    )


class ServerIndex(BaseModel):
    name: str
    version: str
    model: ModelInfo
    docs: Optional[str] = Field(default=None, description="where the API docs are, when served")


class InstancesBody(BaseModel):
    """Rows to predict: each a list of numbers, the lesson's
    ``{"features": [...]}``, or an object keyed by feature name."""

    instances: List[Union[Row, dict]] = Field(description="the rows to predict")
    parameters: Optional[dict] = Field(default=None, description="accepted and ignored")


class PredictionsBody(BaseModel):
    predictions: List[Value]


class Predictions(RootModel[List[Value]]):
    """A bare array of predictions, one per row."""


# -- the lesson's /predict (and SageMaker's invocations) -------------------------------


class PredictRequest(BaseModel):
    """The lesson's request: one row of features, or a list of rows."""

    features: Union[Row, List[Row]] = Field(
        description="one row of numbers (answered with 'prediction') or a list of rows "
        "(answered with 'predictions'); null is a missing value"
    )


class Prediction(BaseModel):
    prediction: Label = Field(
        description="int for integer labels, str for string labels, float for a regressor"
    )


class PredictionList(BaseModel):
    predictions: List[Value]


class PredictResponse(RootModel[Union[Prediction, PredictionList]]):
    """``prediction`` for one row, ``predictions`` for a list of rows."""


# -- Vertex AI's REST paths ------------------------------------------------------------


class VertexPrediction(PredictionsBody):
    """What Vertex AI's PredictionService answers (the SDK reads these)."""

    deployedModelId: Optional[str] = None
    model: Optional[str] = None
    modelDisplayName: Optional[str] = None
    modelVersionId: Optional[str] = None


class DeployedModel(BaseModel):
    id: str
    model: str
    displayName: str
    modelVersionId: str
    createTime: str


class VertexEndpoint(BaseModel):
    """The Endpoint resource, as much of it as the SDK reads."""

    name: str
    displayName: str
    deployedModels: List[DeployedModel]
    trafficSplit: dict
    createTime: str
    updateTime: str


# -- KServe V1 and the Open Inference Protocol (V2) ---------------------------------

Datatype = str
Data = Union[List[Any], Any]


class RequestInput(BaseModel):
    name: str = Field(examples=["input"])
    shape: List[int] = Field(description="[rows, features]")
    datatype: Datatype = Field(description="FP32, FP64, INT64, ...", examples=["FP64"])
    parameters: Optional[Dict[str, Any]] = None
    data: Optional[Data] = Field(default=None, description="row-major, flat or nested")


class RequestOutput(BaseModel):
    name: str = Field(description="'predict' or 'predict_proba' (or another method of the model)")
    parameters: Optional[Dict[str, Any]] = None


class InferenceRequest(BaseModel):
    id: Optional[str] = None
    parameters: Optional[Dict[str, Any]] = None
    inputs: List[RequestInput]
    outputs: Optional[List[RequestOutput]] = None


class ResponseOutput(BaseModel):
    name: str
    shape: List[int]
    datatype: Datatype
    parameters: Optional[Dict[str, Any]] = None
    data: Optional[List[Any]] = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: Optional[str] = None
    id: Optional[str] = None
    parameters: Optional[Dict[str, Any]] = None
    outputs: List[ResponseOutput]


class TensorMetadata(BaseModel):
    name: str
    datatype: Datatype
    shape: List[int]


class ModelMetadata(BaseModel):
    name: str
    versions: List[str]
    platform: str
    inputs: List[TensorMetadata]
    outputs: List[TensorMetadata]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: List[str]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class ModelList(BaseModel):
    models: List[str]


# -- operations: metrics and the model repository (V2 extension) --------------------


class MetricsText(RootModel[str]):
    """Prometheus' text exposition format (``text/plain; version=0.0.4``)."""


class RepositoryIndexRequest(BaseModel):
    ready: Optional[bool] = Field(default=None, description="true: only the versions served")


class RepositoryEntry(BaseModel):
    name: str
    version: str
    state: str = Field(description="READY or UNAVAILABLE", examples=["READY"])
    default: Optional[bool] = Field(default=None, description="the version served by default")
    reason: Optional[str] = Field(
        default=None, description="why it is not served (or why a newer file was refused)"
    )


class RepositoryIndex(RootModel[List[RepositoryEntry]]):
    """Every version on disk or served."""


class RepositoryParameters(BaseModel):
    version: Optional[str] = Field(default=None, description="one version (default: all on disk)")
    pin: Optional[bool] = Field(
        default=None, description="load: true serves `version` by default, false unpins"
    )


class RepositoryRequest(BaseModel):
    parameters: Optional[RepositoryParameters] = None


class RepositoryModel(BaseModel):
    name: str
    versions: List[str] = Field(description="the versions served now")
    default_version: Optional[str] = None
    pinned: Optional[str] = None
    loaded: Optional[List[str]] = Field(
        default=None, description="load: versions loaded by this call"
    )
    unloaded: Optional[str] = Field(
        default=None, description="unload: the version unloaded, or 'all'"
    )
