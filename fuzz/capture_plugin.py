"""A pytest plugin for fuzz/make_seeds.py: records every byte string the
test suite hands to the VM (``mlfast._core.unpickle``), so that the hostile
suite's hand-assembled payloads become fuzzing seeds.

    FUZZ_CAPTURE_DIR=dir python -m pytest -p capture_plugin tests/test_hostile.py
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

MAX_SEED = 64 * 1024


def pytest_configure(config):
    out = os.environ.get("FUZZ_CAPTURE_DIR")
    if not out:
        return
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)

    import mlfast

    core = mlfast._core
    original = core.unpickle

    def recording_unpickle(data, *args, **kwargs):
        try:
            raw = bytes(data)
        except Exception:  # noqa: BLE001 - a test passing a non-buffer on purpose
            raw = None
        if raw is not None and 0 < len(raw) <= MAX_SEED:
            name = "hostile-" + hashlib.sha1(raw).hexdigest()[:16]
            (out_dir / name).write_bytes(raw)
        return original(data, *args, **kwargs)

    core.unpickle = recording_unpickle
