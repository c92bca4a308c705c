"""The ``mlfast`` command (also ``python -m mlfast``).

    mlfast serve [PATH] [--host 127.0.0.1] [--port 8000] [--workers 1]
                 [--framework fastapi|flask] [--name NAME]
    mlfast inspect PATH
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlfast",
        description="Load scikit-learn model files safely in C; serve them.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    serve = commands.add_parser(
        "serve",
        help="serve a model over HTTP (the lesson's /predict, SageMaker, Vertex AI, KServe V1/V2)",
        description="Serve a model file: the lesson's POST /predict, SageMaker (/ping, "
                    "/invocations), Vertex AI, KServe V1 and the Open Inference Protocol (V2); "
                    "API docs at /docs (FastAPI).",
    )
    serve.add_argument("path", nargs="?", metavar="PATH",
                       help="model file saved by joblib.dump or pickle.dump, or a directory "
                            "holding model.joblib/model.pkl (default: the bundled iris demo model)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes; the model is loaded once, before they fork (default 1)")
    serve.add_argument("--framework", choices=("fastapi", "flask"), default="fastapi",
                       help="web framework (default fastapi)")
    serve.add_argument("--name", help="model name in URLs (default: the file's stem)")
    serve.add_argument("--log-level", default="info",
                       choices=("critical", "error", "warning", "info", "debug"))

    inspect = commands.add_parser("inspect", help="print a model file's object tree, running nothing")
    inspect.add_argument("path", metavar="PATH")
    return parser


def _serve(args: argparse.Namespace) -> int:
    import mlfast

    try:
        from mlfast.serving import build_service
        from mlfast.serving.server import run
    except ImportError as e:  # the serve extra is missing
        print(f"mlfast serve needs the web stack ({e.name} is missing): "
              "pip install 'mlfast[serve]'", file=sys.stderr)
        return 2
    path = args.path or mlfast.demo_model_path()
    try:
        service = build_service(path, name=args.name)
    except (OSError, ValueError) as e:
        print(f"mlfast: cannot serve {path}: {e}", file=sys.stderr)
        return 1
    try:
        run(service, host=args.host, port=args.port, workers=args.workers,
            framework=args.framework, log_level=args.log_level)
    except ImportError as e:
        print(f"mlfast serve needs the web stack ({e.name} is missing): "
              "pip install 'mlfast[serve]'", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"mlfast: {e}", file=sys.stderr)
        return 2
    return 0


def _inspect(args: argparse.Namespace) -> int:
    import mlfast

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
