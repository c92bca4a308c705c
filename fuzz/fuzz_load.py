#!/usr/bin/env python3
"""Fuzz target: a model file, from its first byte to predictions.

Each input goes through what ``mlfast.loads`` does -- decompression by magic
bytes (mlfast/_loader.py), the restricted pickle VM (csrc/unpickle.c), the
builders (mlfast/_builders/) and the C constructors of the graph
(csrc/graph.c and each op's prepare) -- then ``inspect``'s tree printer, and, when a model comes
out, every predict-like method on a few fixed batches (csrc/trees.c,
linear.c, transform.c, links.c), so that a file whose numbers lie (a child
index past the end, a feature past n_features, a class count of zero) is
run, not only parsed.

Run under atheris with the extension built by clang with
``-fsanitize=address,undefined,fuzzer-no-link`` (fuzz/run.sh does it all:
``make fuzz``).  A crash of the C code is reported by ASan/UBSan and
libFuzzer writes the input to fuzz/artifacts/.

What counts as a finding besides a crash, a hang (-timeout) or a memory
blow-up (-rss_limit_mb, -malloc_limit_mb; the loader runs with max_memory
of 64 MiB, so an allocation much past that means a cap is not honoured):
an exception that is not an ``MlfastError`` from loading, or not a
``ValueError`` from predicting.  Those are written to $FUZZ_FINDINGS
(one input per exception type and place) and fuzzing goes on; with
FUZZ_STRICT=1 they stop it like a crash.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import traceback
from pathlib import Path

import atheris

if os.environ.get("FUZZ_PY_COVERAGE", "1") == "1":
    with atheris.instrument_imports(include=["mlfast"]):
        import mlfast
        from mlfast import _inspect, _loader
else:
    # C coverage only: what `fuzz/run.sh merge` keeps the corpus small with
    import mlfast
    from mlfast import _inspect, _loader

import numpy as np

MAX_MEMORY = 64 << 20
MAX_FEATURES = 4096
STRICT = os.environ.get("FUZZ_STRICT") == "1"
FINDINGS = Path(os.environ.get("FUZZ_FINDINGS", "fuzz/findings"))
METHODS = (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
    "score_samples",
)

_seen = set()
_batches = {}


# A finding already reported can be stepped around here until its fix lands
# (FUZZ_STRICT=1: never), so that fuzzing looks for new ones: the hardening
# run wrapped lzma.LZMADecompressor with a memlimit until F1 (a header's
# dictionary size allocated regardless of max_memory) was fixed.  None today.


def batches(n_features: int):
    """Fixed inputs for a model of n_features: ordinary rows, extreme values
    and NaN, in float64 C order, float32 Fortran order and a strided view."""
    if n_features not in _batches:
        n = max(n_features, 1)
        rows = np.array(
            [
                np.zeros(n),
                np.linspace(-3.0, 3.0, n),
                np.full(n, 1e30),
                np.full(n, -1e30),
                np.arange(n, dtype=np.float64) % 7,
            ]
        )
        with_nan = rows.copy()
        with_nan[::2, ::2] = np.nan
        wide = np.repeat(rows, 2, axis=1)
        _batches[n_features] = [
            rows,
            np.asfortranarray(rows, dtype=np.float32),
            wide[:, ::2],
            with_nan,
            rows[:1, :],
        ]
    return _batches[n_features]


def finding(kind: str, exc: BaseException, data: bytes) -> None:
    """Records an exception that should not escape, once per type and place."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "?"
    # the message without its numbers: one C constructor raises many errors
    message = re.sub(r"[0-9]+", "N", str(exc))[:60]
    key = (kind, type(exc).__name__, where, message)
    if STRICT:
        raise exc
    if key in _seen:
        return
    _seen.add(key)
    # one file per finding, across processes too (libFuzzer's fork mode
    # runs the target in a fresh process for every job)
    digest = hashlib.sha1(repr(key).encode()).hexdigest()[:16]
    stem = FINDINGS / f"load-{kind}-{type(exc).__name__}-{digest}"
    if stem.exists():
        return
    FINDINGS.mkdir(parents=True, exist_ok=True)
    stem.write_bytes(data)
    stem.with_suffix(".txt").write_text(
        f"{kind}: {type(exc).__name__}: {exc}\n" + "".join(traceback.format_exception(exc))
    )
    print(
        f"\n== finding ({kind}): {type(exc).__name__} at {where}: {str(exc)[:200]}",
        file=sys.stderr,
        flush=True,
    )


def TestOneInput(data: bytes) -> None:
    try:
        tree = _loader.load_tree(data, MAX_MEMORY)
    except mlfast.MlfastError:
        return
    except Exception as e:  # noqa: BLE001 - any other class is the finding
        finding("load_tree", e, data)
        return
    try:
        _inspect.format_tree(tree)
    except Exception as e:  # noqa: BLE001
        finding("inspect", e, data)
    try:
        model = mlfast._build(tree)
    except mlfast.MlfastError:
        return
    except Exception as e:  # noqa: BLE001
        finding("build", e, data)
        return
    try:
        repr(model)
        model._repr_html_()
    except Exception as e:  # noqa: BLE001
        finding("repr", e, data)
    n = model.n_features_in_
    if not isinstance(n, int) or n > MAX_FEATURES:
        return
    for X in batches(n):
        for name in METHODS:
            fn = getattr(model, name, None)
            if fn is None:
                continue
            try:
                fn(X)
            except ValueError:
                pass
            except Exception as e:  # noqa: BLE001
                finding(name, e, data)
    # a wrong feature count must be refused, never read past the row
    first = next((getattr(model, m) for m in METHODS if hasattr(model, m)), None)
    try:
        if first is not None:
            first(np.zeros((2, n + 1)))
    except ValueError:
        pass
    except Exception as e:  # noqa: BLE001
        finding("predict-wrong-width", e, data)


if __name__ == "__main__":
    from _harness import run

    run(TestOneInput)
