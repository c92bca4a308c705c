"""Processes: uvicorn for one FastAPI worker, gunicorn for the rest.

The model is loaded once, in this process, before any worker exists:
gunicorn runs with ``preload_app`` and forks, so workers share the model's
arrays copy-on-write.  FastAPI workers under gunicorn use the
``uvicorn-worker`` package's worker class; Flask runs on gunicorn's
threaded worker (a WSGI app needs a WSGI server, and Flask's development
server is not one to expose).
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

from mlfast.serving import FRAMEWORKS, create_app
from mlfast.serving.core import Service


def run(
    service: Service,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    framework: str = "fastapi",
    threads: int = 4,
    timeout: int = 60,
    log_level: str = "info",
) -> None:
    """Serve ``service`` until SIGTERM or Ctrl-C."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {', '.join(FRAMEWORKS)}, got {framework!r}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    app = create_app(service, framework=framework)
    served = service.registry.default
    print(f"mlfast: serving {served.name} ({served.model.estimator}) with {framework} on "
          f"http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''})", flush=True)
    if framework == "fastapi" and workers == 1:
        import uvicorn

        uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=30)
        return
    options: Dict[str, Any] = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "preload_app": True,
        "timeout": timeout,
        "graceful_timeout": 30,
        "loglevel": log_level,
        "accesslog": "-",
        "errorlog": "-",
        # gunicorn 25+ opens a control socket at one fixed path per user, so
        # two servers on a machine would fight over it; mlfast does not use it
        "control_socket_disable": True,
    }
    if framework == "fastapi":
        options["worker_class"] = "uvicorn_worker.UvicornWorker"
    else:
        options["worker_class"] = "gthread"
        options["threads"] = threads
    _gunicorn(app, options).run()


def _gunicorn(app: Any, options: Dict[str, Any]):
    """gunicorn's documented "custom application": an app object already
    built (and its model already loaded) instead of an import string.
    Imported here: gunicorn is Unix-only, one uvicorn worker is not."""
    from gunicorn.app.base import BaseApplication

    class Application(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings:  # older gunicorns lack newer settings
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    return Application()


def env_int(env, name: str, default: Optional[int]) -> Optional[int]:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"mlfast: {name} must be an integer, got {value!r}") from None


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
