"""``mlfast serve`` against ``mlflow models serve --env-manager local`` on the
same MLflow model directory.

    python benchmarks/bench_mlflow.py            # writes benchmarks/results/mlflow.json
    python benchmarks/bench_mlflow.py --quick    # iris LogisticRegression, one second a run

Models: iris LogisticRegression and a RandomForest of 100 trees, each saved
by ``mlflow.sklearn.save_model`` (skops, MLflow's default format, with a
signature).  Both servers run one worker on a free loopback port.  Time to
first answer: from starting the command to the first 200 answer to a
``dataframe_split`` request (the health check alone does not prove the model
loaded).  Then, taking turns, each server is asked ``dataframe_split``
bodies of 1 and of 100 rows by ``--clients`` client threads on keep-alive
connections for ``--seconds``: requests a second and latency percentiles.
Both servers' answers are compared before timing.

The clients are Python threads on the same machine: they take CPU from the
servers (the same handicap for both), and they bound what a fast server can
show, so the ratios are lower bounds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port: int, body: bytes, timeout: float = 10.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _models(work: Path, quick: bool) -> Dict[str, Path]:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    fitted = {"iris_lr": LogisticRegression(max_iter=1000).fit(X, y)}
    if not quick:
        fitted["rf100"] = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
    out = {}
    for key, est in fitted.items():
        path = work / key
        if not (path / "MLmodel").exists():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mlflow.sklearn.save_model(
                    est,
                    str(path),
                    signature=infer_signature(X, est.predict(X)),
                    pip_requirements=["scikit-learn"],
                    skops_trusted_types=["sklearn.tree._tree.Tree"],
                )
        out[key] = path
    return out


def _bodies() -> Dict[str, bytes]:
    import numpy as np
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True).data
    rng = np.random.RandomState(0)
    rows = (data.sample(100, random_state=0).to_numpy() + rng.normal(0, 0.1, (100, 4))).round(3)
    columns = list(data.columns)
    return {
        f"{n} row{'s' if n > 1 else ''}": json.dumps(
            {"dataframe_split": {"columns": columns, "data": rows[:n].tolist()}}
        ).encode()
        for n in (1, 100)
    }


def _start(argv: List[str], log: Path, env: Dict[str, str]) -> subprocess.Popen:
    with open(log, "wb") as fh:
        return subprocess.Popen(
            argv,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=10)


def _first_answer(
    proc: subprocess.Popen,
    port: int,
    body: bytes,
    started: float,
    log: Path,
    timeout: float = 180.0,
) -> float:
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {log.read_text()[-1500:]}")
        try:
            status, _ = _post(port, body, timeout=5)
            if status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"no answer after {timeout:.0f} s: {log.read_text()[-1500:]}")


def _load(port: int, body: bytes, clients: int, seconds: float) -> Dict[str, float]:
    latencies: List[List[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop_at = time.perf_counter() + seconds

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Content-Type": "application/json"}
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                break
            try:
                conn.request("POST", "/invocations", body, headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                ok = False
            if ok:
                latencies[i].append(time.perf_counter() - t0)
            else:
                errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    all_lat = sorted(x for xs in latencies for x in xs)
    n = len(all_lat)

    def pct(q: float) -> float:
        return all_lat[min(n - 1, int(q * n))] * 1e3 if n else float("nan")

    return {
        "requests": n,
        "errors": sum(errors),
        "rps": n / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "mlfast-bench-mlflow"
    )
    ap.add_argument("--out", type=Path, default=HERE / "results" / "mlflow.json")
    args = ap.parse_args()
    seconds, rounds = (1.0, 1) if args.quick else (args.seconds, args.rounds)
    args.work.mkdir(parents=True, exist_ok=True)
    models = _models(args.work, args.quick)
    bodies = _bodies()
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # mlflow runs `uvicorn` from PATH
    mlflow_cli = BIN / "mlflow"
    commands = {
        "mlfast serve": lambda path, port: [
            sys.executable,
            "-m",
            "mlfast",
            "serve",
            str(path),
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        "mlflow models serve": lambda path, port: [
            str(mlflow_cli),
            "models",
            "serve",
            "-m",
            str(path),
            "--env-manager",
            "local",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
    }
    result: Dict[str, object] = {
        "config": {
            "seconds": seconds,
            "rounds": rounds,
            "clients": args.clients,
            "cpus": os.cpu_count(),
        },
        "runs": [],
    }
    for key, path in models.items():
        procs = {}
        try:
            first = {}
            for name, command in commands.items():
                port = _free_port()
                log = args.work / f"{key}-{name.split()[0]}.log"
                started = time.perf_counter()
                proc = _start(command(path, port), log, env)
                procs[name] = (proc, port)
                first[name] = _first_answer(proc, port, bodies["1 row"], started, log)
                print(f"{key} {name}: first answer after {first[name]:.2f} s", flush=True)
            answers = {
                name: json.loads(_post(port, bodies["100 rows"])[1])
                for name, (_, port) in procs.items()
            }
            same = len({json.dumps(a, sort_keys=True) for a in answers.values()}) == 1
            print(f"{key}: answers equal: {same}", flush=True)
            for label, body in bodies.items():
                samples: Dict[str, List[Dict[str, float]]] = {name: [] for name in procs}
                _load(procs["mlfast serve"][1], body, args.clients, 0.5)  # warm-up
                _load(procs["mlflow models serve"][1], body, args.clients, 0.5)
                for _ in range(rounds):
                    for name, (_, port) in procs.items():
                        samples[name].append(_load(port, body, args.clients, seconds))
                for name, runs in samples.items():
                    best = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
                    entry = {
                        "model": key,
                        "payload": label,
                        "server": name,
                        "first_answer_s": first[name],
                        "answers_equal": same,
                        **best,
                    }
                    result["runs"].append(entry)
                    print(
                        f"{key:8} {label:9} {name:20} {best['rps']:9.1f} req/s  "
                        f"p50 {best['p50_ms']:7.2f} ms  p99 {best['p99_ms']:7.2f} ms  "
                        f"errors {best['errors']}",
                        flush=True,
                    )
        finally:
            for proc, _ in procs.values():
                _stop(proc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
