"""The Dockerfile's command, run here as SageMaker and Vertex AI run it.

No Docker engine on this machine: the test reads the image's exec-form
ENTRYPOINT, CMD and ENV from the Dockerfile and runs that very command with
each platform's environment (python -> this interpreter; MLFAST_HOST set to
127.0.0.1 because tests bind loopback only).
"""

from __future__ import annotations

import json
import re
import shutil
import time

import pytest
import requests
from support.serving import PYTHON, REPO, Server, free_port

import mlfast

DOCKERFILE = (REPO / "Dockerfile").read_text()


def instruction(name):
    """The last stage's instruction ``name``, joined over continuation lines."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    last_stage = text.split("\nFROM ")[-1]
    found = re.findall(rf"^{name}\s+(.*)$", last_stage, re.M)
    return found[-1].strip() if found else None


def image_command(args=None):
    entrypoint = json.loads(instruction("ENTRYPOINT"))
    cmd = json.loads(instruction("CMD")) if args is None else args
    argv = entrypoint + cmd
    assert argv[0] == "python"
    return [PYTHON] + argv[1:]


def image_env():
    env = {}
    for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', instruction("ENV")):
        env[key] = value.strip('"')
    return env


def test_dockerfile_shape():
    assert instruction("ENTRYPOINT").startswith("["), "ENTRYPOINT must be exec form"
    assert instruction("CMD") == '["serve"]'
    assert instruction("EXPOSE") == "8080"
    assert image_env()["MLFAST_HOST"] == "0.0.0.0"
    assert '"mlfast[serve]"' in DOCKERFILE


@pytest.fixture
def model_dir(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    shutil.copy(mlfast.demo_model_path(), d / "model.joblib")
    return d


def test_sagemaker_runs_the_image_with_serve(model_dir):
    """`docker run IMAGE serve`: port from SAGEMAKER_BIND_TO_PORT, two
    gunicorn workers from SAGEMAKER_MODEL_SERVER_WORKERS, model from
    SM_MODEL_DIR (standing in for /opt/ml/model)."""
    port = free_port()
    env = {
        **image_env(),
        "MLFAST_HOST": "127.0.0.1",
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
        "SM_MODEL_DIR": str(model_dir),
    }
    with Server(image_command(["serve"]), port=port, env=env) as server:
        assert requests.get(server.url + "/ping", timeout=10).status_code == 200
        r = requests.post(
            server.url + "/invocations",
            data="5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3",
            headers={"Content-Type": "text/csv", "Accept": "text/csv"},
            timeout=10,
        )
        assert r.text == "0\n2\n"
        # ready once one worker answers; the second may still be booting
        deadline = time.monotonic() + 30
        while server.log().count("Booting worker") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.log().count("Booting worker") >= 2, server.log()


def test_vertex_runs_the_image_default_command(model_dir):
    port = free_port()
    env = {
        **image_env(),
        "MLFAST_HOST": "127.0.0.1",
        "AIP_HTTP_PORT": str(port),
        "AIP_HEALTH_ROUTE": "/v1/endpoints/123/deployedModels/456",
        "AIP_PREDICT_ROUTE": "/v1/endpoints/123/deployedModels/456:predict",
        "AIP_STORAGE_URI": str(model_dir),
        "AIP_DEPLOYED_MODEL_ID": "456",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
    }
    with Server(image_command(), port=port, env=env, health=env["AIP_HEALTH_ROUTE"]) as server:
        r = requests.post(
            server.url + env["AIP_PREDICT_ROUTE"],
            timeout=10,
            json={"instances": [[5.1, 3.5, 1.4, 0.2]], "parameters": {}},
        )
        assert r.json() == {"predictions": [0]}
        r = requests.post(
            server.url + env["AIP_PREDICT_ROUTE"],
            timeout=10,
            data=b"[" * 10 + b"1," * 800_000 + b"]" * 10,
        )
        assert r.status_code == 413


def test_gs_storage_uri_is_refused_clearly(tmp_path):
    import subprocess

    env = {
        "PATH": "/usr/bin:/bin",
        "AIP_HTTP_PORT": str(free_port()),
        "MLFAST_HOST": "127.0.0.1",
        "AIP_STORAGE_URI": "gs://bucket/model",
    }
    out = subprocess.run(image_command(), env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "gs://bucket/model is not a local path" in out.stderr and "Traceback" not in out.stderr


def test_other_commands_are_refused():
    import subprocess

    out = subprocess.run(image_command(["train"]), capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "run it with 'serve'" in out.stderr
