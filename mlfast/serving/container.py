"""The container entrypoint for SageMaker and Vertex AI: ``python -m
mlfast.serving.container serve``.

SageMaker starts a bring-your-own container as ``docker run IMAGE serve``;
Vertex AI runs the image's default command.  Both land here (the
Dockerfile's ENTRYPOINT is this module, its CMD ``serve``), and the platform
is told by its environment:

- model: ``SM_MODEL_DIR``, else ``AIP_STORAGE_URI`` when it is a local path
  (a ``gs://`` URI is not downloaded), else ``MLFAST_MODEL``, else
  ``/opt/ml/model`` (where SageMaker puts the model archive's files); a
  directory holds ``model.joblib`` or ``model.pkl``.
- port: ``SAGEMAKER_BIND_TO_PORT``, else ``AIP_HTTP_PORT``, else 8080.
- workers: ``SAGEMAKER_MODEL_SERVER_WORKERS`` (default: one per CPU, as
  SageMaker's own containers do), timeout ``SAGEMAKER_MODEL_SERVER_TIMEOUT``.
- routes: Vertex AI's ``AIP_HEALTH_ROUTE`` and ``AIP_PREDICT_ROUTE``, next to
  every other protocol's.
- ``MLFAST_HOST`` (default 0.0.0.0: a container must listen on all
  interfaces), ``MLFAST_FRAMEWORK`` (fastapi or flask).
- operations as for ``mlfast serve``: ``MLFAST_API_KEYS``,
  ``MLFAST_ADMIN_KEYS`` (or ``*_KEY_FILE``); with no keys the server starts
  on 0.0.0.0 only behind SageMaker or Vertex AI (their front ends
  authenticate: a variable they set tells them, ``ops.SAGEMAKER_VARIABLES``
  and ``ops.VERTEX_VARIABLES``) or with ``MLFAST_ALLOW_UNAUTHENTICATED=1``.  ``MLFAST_SSL_KEYFILE``
  and ``MLFAST_SSL_CERTFILE`` serve HTTPS.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Mapping, Optional

SAGEMAKER_MODEL_DIR = "/opt/ml/model"


def model_location(env: Mapping[str, str]) -> str:
    """Where the model is: ``SM_MODEL_DIR``, a local ``AIP_STORAGE_URI``,
    ``MLFAST_MODEL``, then SageMaker's ``/opt/ml/model``."""
    if env.get("SM_MODEL_DIR"):
        return env["SM_MODEL_DIR"]
    uri = env.get("AIP_STORAGE_URI", "")
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if uri and "://" not in uri:
        return uri
    if env.get("MLFAST_MODEL"):
        return env["MLFAST_MODEL"]
    if Path(SAGEMAKER_MODEL_DIR).is_dir() and any(Path(SAGEMAKER_MODEL_DIR).iterdir()):
        return SAGEMAKER_MODEL_DIR
    if uri:
        raise SystemExit(
            f"mlfast: AIP_STORAGE_URI {uri} is not a local path, and mlfast reads local files "
            f"only: bake the model into the image ({SAGEMAKER_MODEL_DIR}/model.pkl) or point "
            "MLFAST_MODEL at it."
        )
    raise SystemExit(
        f"mlfast: no model: put model.joblib or model.pkl in {SAGEMAKER_MODEL_DIR}, or set "
        "SM_MODEL_DIR, AIP_STORAGE_URI (a local path) or MLFAST_MODEL"
    )


def main(argv: Optional[List[str]] = None, env: Optional[Mapping[str, str]] = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    env = os.environ if env is None else env
    if args and args[0] != "serve":
        raise SystemExit(f"mlfast: this image serves models; run it with 'serve', not {args[0]!r}")
    from mlfast.serving import build_service
    from mlfast.serving.ops import Ops, check_bind
    from mlfast.serving.server import cpu_count, env_int, prepare, run, workers_from_env

    port = (
        env_int(env, "SAGEMAKER_BIND_TO_PORT", None) or env_int(env, "AIP_HTTP_PORT", None) or 8080
    )
    workers = workers_from_env(env, cpu_count())
    timeout = env_int(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", 60)
    host = env.get("MLFAST_HOST", "0.0.0.0")
    certfile = env.get("MLFAST_SSL_CERTFILE") or None
    try:
        ops = Ops.from_env(env, tls=bool(certfile))
        check_bind(host, ops, False, env)
    except ValueError as e:
        raise SystemExit(f"mlfast: {e}") from None
    prepare(workers)
    try:
        service = build_service(
            model_location(env),
            name=env.get("MLFAST_MODEL_NAME") or None,
            env=env,
            ops=ops,
            request_timeout=timeout,
        )
    except (OSError, ValueError) as e:
        raise SystemExit(f"mlfast: cannot load the model: {e}") from None
    try:
        run(
            service,
            host=host,
            port=port,
            workers=workers,
            framework=env.get("MLFAST_FRAMEWORK", "fastapi"),
            timeout=timeout,
            ssl_keyfile=env.get("MLFAST_SSL_KEYFILE") or None,
            ssl_certfile=certfile,
        )
    except ValueError as e:
        raise SystemExit(f"mlfast: {e}") from None


if __name__ == "__main__":
    main()
