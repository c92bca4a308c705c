"""The benchmark scripts run and write their output (tiny sizes, --quick).

Not a test of speed: `make bench` measures.  This keeps benchmarks/ from
rotting between runs.  The in-process mlfast-vs-scikit-learn part always
runs; ONNX Runtime, wrk and matplotlib are bench-only tools (the `bench`
extra, Debian's wrk), so the parts that need them are checked only where
they are installed.  The three scripts run side by side (most of their
time is importing scikit-learn), then the report is built from what they
wrote.
"""

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

pytest.importorskip("sklearn")


def has(*modules):
    return all(importlib.util.find_spec(m) is not None for m in modules)


HTTP_TOOLS = shutil.which("wrk") is not None and has("fastapi", "uvicorn")
SCRIPTS = ["bench_inprocess.py", "bench_coldstart.py"] + (["bench_http.py"] if HTTP_TOOLS else [])


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    base = tmp_path_factory.mktemp("bench")
    folders = {"out": base / "results", "work": base / "work", "dest": base / "page"}
    procs = {}
    try:
        for script in SCRIPTS:
            argv = [
                sys.executable,
                str(BENCH / script),
                "--quick",
                "--out",
                str(folders["out"]),
                "--work",
                str(folders["work"]),
            ]
            procs[script] = subprocess.Popen(
                argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        outcomes = {}
        for script, proc in procs.items():
            out, err = proc.communicate(timeout=240)
            outcomes[script] = (proc.returncode, out, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return folders, outcomes


def result(ran, script, name):
    folders, outcomes = ran
    code, out, err = outcomes[script]
    assert code == 0, f"{script} failed:\n{out[-3000:]}\n{err[-3000:]}"
    return json.loads((folders["out"] / name).read_text())


def test_inprocess(ran):
    data = result(ran, "bench_inprocess.py", "inprocess.json")
    keys = [m["key"] for m in data["models"]]
    assert keys == [
        "iris_lr",
        "pipe_lr",
        "wide_lr",
        "rf100",
        "et100",
        "gb100",
        "hgb100",
        "vote3",
        "stack3",
        "pca_lr",
        "svc_rbf",
        "knn10k",
        "mlp2x100",
        "gnb",
    ]
    onnx = has("onnxruntime", "skl2onnx")
    for m in data["models"]:
        engines = set(m["latency"]["1"])
        assert {"scikit-learn", "mlfast 1 thread", "mlfast all cores"} <= engines
        assert ("ONNX Runtime" in engines) == onnx, m["key"]
        for name in ("mlfast 1 thread", "mlfast all cores"):
            assert m["check"][name]["label_mismatches"] == 0, (m["key"], m["check"][name])
            # (SVC without probability=True has no predict_proba)
            assert m["check"][name].get("max_abs_proba_diff", 0.0) < 1e-9, (
                m["key"],
                m["check"][name],
            )
        for timings in list(m["latency"].values()) + [m["latency_list_row"], m["throughput"]]:
            for s in timings.values():
                assert 0 < s["min"] <= s["median"] <= s["max"]
    assert data["machine"]["versions"]["numpy"]
    assert "found" in data["machine"]["openblas_env"]


def test_coldstart(ran):
    data = result(ran, "bench_coldstart.py", "coldstart.json")
    engines = data["models"][0]["engines"]
    assert {"joblib + scikit-learn", "mlfast"} <= set(engines)
    assert ("ONNX Runtime" in engines) == has("onnxruntime", "skl2onnx")
    for name, s in engines.items():
        assert s["answers_agree"], name
        assert s["import_load"]["median"] > 0
        assert s["peak_rss_kib_load"]["median"] > 1024  # > 1 MiB: a real reading, not 0


@pytest.mark.skipif(
    not HTTP_TOOLS, reason="needs wrk (bench-only: make bench installs it) and the serve extra"
)
def test_http(ran):
    data = result(ran, "bench_http.py", "http.json")
    measured = [r for r in data["runs"] if r.get("by_concurrency")]
    assert {r["server"] for r in measured} >= {"lesson FastAPI"}
    for r in measured:
        assert r["answer_mismatches"] == 0, r
        s = r["by_concurrency"]["1"]
        assert s["rps"]["median"] > 0 and s["errors"] == 0, r
    assert not [r for r in data["runs"] if r.get("failed")], data["runs"]
    # every server was stopped: nothing listens on the ports they used
    for r in data["runs"]:
        with socket.socket() as sock:
            sock.settimeout(1)
            assert sock.connect_ex(("127.0.0.1", r["port"])) != 0, f"{r['server']} still listening"


def test_report(ran):
    folders, outcomes = ran
    if outcomes["bench_inprocess.py"][0] != 0:
        pytest.skip("bench_inprocess.py failed (see test_inprocess)")
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "report.py"),
            "--results",
            str(folders["out"]),
            "--dest",
            str(folders["dest"]),
            "--command",
            "pytest",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = (folders["dest"] / "BENCHMARKS.md").read_text()
    for heading in (
        "## Machine",
        "## Headline",
        "### Targets from the issues",
        "## Reading",
        "## In-process predict",
        "## Cold start and memory",
    ):
        assert heading in page
    assert "Quick run" in page
    if has("matplotlib"):
        assert (folders["dest"] / "latency_vs_batch.png").stat().st_size > 1000
        assert (folders["dest"] / "coldstart.png").stat().st_size > 1000


def test_ops(tmp_path):
    """bench_ops.py --quick: overhead (where wrk is), instructions (where
    valgrind is), workers' memory and threads, and its tables."""
    argv = [
        sys.executable,
        str(BENCH / "bench_ops.py"),
        "--quick",
        "--out",
        str(tmp_path / "ops.json"),
    ]
    if shutil.which("wrk") is None:
        argv += ["--skip", "overhead"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "| workers | process | RSS | PSS | USS | shared |" in proc.stdout
    assert "threads:" in proc.stdout
    if shutil.which("wrk") is not None:
        assert "| 1 | metrics+auth |" in proc.stdout
    if shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None:
        assert "| metrics+auth |" in proc.stdout and "instructions a request" in proc.stdout
