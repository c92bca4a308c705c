# mlfast serving image for SageMaker and Vertex AI (bring your own container).
#
#   docker build -t mlfast-serve .
#   docker run -p 8080:8080 -v $PWD/model:/opt/ml/model mlfast-serve     # model.pkl inside
#
# SageMaker starts it as `docker run IMAGE serve` and puts the model's files
# in /opt/ml/model; Vertex AI runs the default command and sets AIP_HTTP_PORT,
# AIP_HEALTH_ROUTE, AIP_PREDICT_ROUTE (and AIP_STORAGE_URI, a gs:// URI that
# mlfast does not download: bake the model in with `COPY model.pkl
# /opt/ml/model/` in a Dockerfile FROM this image).  Both land on
# `python -m mlfast.serving.container serve`, which reads those variables
# (see mlfast/serving/container.py); tests/test_serving_container.py runs
# that very command.

FROM python:3.12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY csrc/ csrc/
COPY mlfast/ mlfast/
# mlfast's wheel (C extension built here) and the wheels of its serve extra
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[serve]"

FROM python:3.12-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "mlfast[serve]" \
 && rm -rf /wheels \
 && mkdir -p /opt/ml/model
ENV PYTHONUNBUFFERED=1 \
    MLFAST_HOST=0.0.0.0
EXPOSE 8080
ENTRYPOINT ["python", "-m", "mlfast.serving.container"]
CMD ["serve"]
