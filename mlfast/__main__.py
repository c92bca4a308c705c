"""The ``mlfast`` command (also ``python -m mlfast``).

    mlfast serve [PATH] [--host 127.0.0.1] [--port 8000] [--workers N]
                 [--framework fastapi|flask] [--name NAME] [operations options]
    mlfast inspect PATH
    mlfast --version

PATH is a model file (joblib, pickle or skops), an MLflow model (a directory
with ``MLmodel``, ``file:``, ``runs:/`` or ``models:/``), a directory holding
``model.joblib``/``model.pkl``, or a model repository laid out
``PATH/<name>/<version>/model.joblib``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import List, Optional, Tuple

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
}


def _size(text: str) -> int:
    """``1500000``, ``1.5MB``, ``6MiB``."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 16MB, 1.5MB, 6MiB, 100000)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _pair(text: str, what: str) -> Tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return key.strip(), value.strip()


def _parser() -> argparse.ArgumentParser:
    import mlfast

    parser = argparse.ArgumentParser(
        prog="mlfast",
        description="Load scikit-learn model files safely in C; serve them.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"mlfast {mlfast.__version__}",
        help="print mlfast's version and exit",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    serve = commands.add_parser(
        "serve",
        help="serve a model over HTTP (the lesson's /predict, SageMaker, Vertex AI, KServe V1/V2)",
        description="Serve a model file or a model repository: the lesson's POST /predict, "
        "SageMaker (/ping, /invocations), Vertex AI, KServe V1 and the Open Inference "
        "Protocol (V2); API docs at /docs (FastAPI), Prometheus metrics at /metrics.",
    )
    serve.add_argument(
        "path",
        nargs="?",
        metavar="PATH",
        help="model file saved by joblib.dump, pickle.dump or skops.io.dump, an "
        "MLflow model (a directory with MLmodel, file:, runs:/ or models:/), "
        "a directory holding model.joblib/model.pkl, or a model repository laid out "
        "PATH/<name>/<version>/model.joblib (default: the bundled iris demo model)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes; the model is loaded once, before they fork (default: "
        "MLFAST_WORKERS, SAGEMAKER_MODEL_SERVER_WORKERS or WEB_CONCURRENCY, else 1)",
    )
    serve.add_argument(
        "--framework",
        choices=("fastapi", "flask"),
        default="fastapi",
        help="web framework (default fastapi)",
    )
    serve.add_argument("--name", help="model name in URLs (default: the file's stem)")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="least important log lines written on stderr (default info: one JSON line a request)",
    )

    repo = serve.add_argument_group("model repository (PATH/<name>/<version>/model.joblib)")
    repo.add_argument(
        "--default-model",
        metavar="NAME",
        help="the model of /predict, SageMaker and Vertex AI (default: the first by name)",
    )
    repo.add_argument(
        "--pin",
        action="append",
        default=[],
        metavar="NAME=VERSION",
        type=lambda t: _pair(t, "NAME=VERSION"),
        help="serve VERSION of NAME by default instead of its highest (repeatable)",
    )
    repo.add_argument(
        "--watch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="load new versions that appear on disk (default: on)",
    )
    repo.add_argument(
        "--poll-interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often the repository is looked at (default 2)",
    )

    sec = serve.add_argument_group("security")
    sec.add_argument(
        "--api-key-file",
        metavar="FILE",
        help="API keys, one a line (also MLFAST_API_KEYS, comma-separated)",
    )
    sec.add_argument(
        "--admin-key-file",
        metavar="FILE",
        help="admin keys for the repository endpoints (also MLFAST_ADMIN_KEYS)",
    )
    sec.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve a non-loopback address without API keys (something in front authenticates)",
    )
    sec.add_argument("--public-metrics", action="store_true", help="/metrics without a key")
    sec.add_argument("--ssl-keyfile", metavar="FILE", help="TLS private key (PEM)")
    sec.add_argument("--ssl-certfile", metavar="FILE", help="TLS certificate chain (PEM)")
    sec.add_argument(
        "--model-sha256",
        action="append",
        default=[],
        metavar="HEX|NAME/VERSION=HEX",
        help="refuse a model file whose SHA-256 differs (checked before it is parsed)",
    )
    sec.add_argument(
        "--max-body",
        action="append",
        default=[],
        metavar="SIZE|PROTOCOL=SIZE",
        help="body size limit: for every route (default 16MB), or for one protocol "
        "(lesson, sagemaker, vertex, kserve), e.g. --max-body sagemaker=20MB",
    )
    sec.add_argument(
        "--request-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="answer 408/504 past this (default SAGEMAKER_MODEL_SERVER_TIMEOUT or 60)",
    )
    sec.add_argument(
        "--graceful-timeout",
        type=int,
        default=30,
        metavar="SECONDS",
        help="on SIGTERM, how long requests in flight may take to finish (default 30)",
    )

    ops = serve.add_argument_group("monitoring")
    ops.add_argument("--no-metrics", dest="metrics", action="store_false", help="no /metrics")
    ops.add_argument(
        "--no-access-log", dest="access_log", action="store_false", help="no JSON access log lines"
    )

    inspect = commands.add_parser(
        "inspect",
        help="print a model file's object tree, running nothing",
        description="Print the object tree of a model file (classes, array "
        "shapes and dtypes, scikit-learn version), read without "
        "building or running anything.",
    )
    inspect.add_argument(
        "path",
        metavar="PATH",
        help="model file saved by joblib.dump, pickle.dump or skops.io.dump, or an MLflow model",
    )
    return parser


def _serve(args: argparse.Namespace) -> int:
    import mlfast

    try:
        from mlfast.serving import build_service
        from mlfast.serving.ops import Ops, check_bind
        from mlfast.serving.server import env_int, prepare, run, workers_from_env
    except ImportError as e:
        print(f"mlfast: {_missing_extra(e)}", file=sys.stderr)
        return 2
    env = os.environ
    path = args.path or mlfast.demo_model_path()
    if args.path is None:
        print(
            "mlfast: no PATH given: serving the bundled demo model (the lesson's iris "
            "LogisticRegression); `mlfast serve model.pkl` serves yours",
            flush=True,
        )
    try:
        workers = args.workers if args.workers is not None else workers_from_env(env, 1)
        max_body, limits = 16 * 1024 * 1024, {}
        for item in args.max_body:
            if "=" in item:
                protocol, size = _pair(item, "PROTOCOL=SIZE")
                limits[protocol] = _size(size)
            else:
                max_body = _size(item)
        pairs = [_pair(s, "NAME/VERSION=HEX") for s in args.model_sha256 if "=" in s]
        plain = [s for s in args.model_sha256 if "=" not in s]
        if plain and (pairs or len(plain) > 1):
            raise ValueError(
                "--model-sha256: one HEX for a model file, NAME/VERSION=HEX for a repository"
            )
        sha256 = plain[0] if plain else (dict(pairs) or None)
        timeout = args.request_timeout or env_int(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", 60)
        ops = Ops.from_env(
            env,
            api_key_file=args.api_key_file,
            admin_key_file=args.admin_key_file,
            metrics=args.metrics,
            access_log=args.access_log,
            public_metrics=args.public_metrics,
            tls=bool(args.ssl_certfile),
        )
        check_bind(args.host, ops, args.allow_unauthenticated, env)
    except (ValueError, argparse.ArgumentTypeError) as e:
        print(f"mlfast: {e}", file=sys.stderr)
        return 2
    prepare(workers)  # before anything imports prometheus-client
    try:
        service = build_service(
            path,
            name=args.name,
            ops=ops,
            max_body=max_body,
            protocol_limits=limits,
            request_timeout=timeout,
            sha256=sha256,
            default_model=args.default_model,
            pins=dict(args.pin),
            watch=args.watch,
            poll_interval=args.poll_interval,
        )
    except (OSError, ValueError) as e:
        print(f"mlfast: cannot serve {path}: {e}", file=sys.stderr)
        return 1
    try:
        run(
            service,
            host=args.host,
            port=args.port,
            workers=workers,
            framework=args.framework,
            log_level=args.log_level,
            timeout=int(timeout),
            ssl_keyfile=args.ssl_keyfile,
            ssl_certfile=args.ssl_certfile,
            graceful_timeout=args.graceful_timeout,
        )
    except ImportError as e:
        print(f"mlfast: {_missing_extra(e)}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"mlfast: {e}", file=sys.stderr)
        return 2
    return 0


def _missing_extra(error: ImportError) -> str:
    if "mlfast[serve]" in str(error):  # worded by mlfast.serving already
        return str(error)
    from mlfast.serving import needs_serve_extra

    return needs_serve_extra((error.name or "").split(".")[0] or None)


def _inspect(args: argparse.Namespace) -> int:
    import mlfast

    if not os.path.exists(args.path) and not args.path.startswith(("file:", "runs:/", "models:/")):
        print(
            f"mlfast: cannot inspect {args.path}: model file {args.path} does not exist",
            file=sys.stderr,
        )
        return 1
    try:
        print(mlfast.inspect(args.path))
    except (OSError, ValueError) as e:
        print(f"mlfast: cannot inspect {args.path}: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _inspect(args)


if __name__ == "__main__":
    sys.exit(main())
