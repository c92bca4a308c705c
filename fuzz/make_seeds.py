"""Builds the seed inputs of fuzz/fuzz_load.py in a directory (default
/tmp/mlfast-seeds); ``fuzz/run.sh --merge`` then keeps the few hundred of
them (and of what fuzzing found) that cover something new, in fuzz/corpus/.

Seeds:

* every model file of tests/fixtures/versions/ (fourteen scikit-learn stacks,
  joblib files, pickles of protocols 0 to 2 and joblib's compressed files
  (ensembles are stored compressed only)), so that the
  fuzzer starts from real files of every family: linear models, scalers and
  imputers, pipelines, trees, forests, gradient and histogram boosting,
  isolation forests;
* those files recompressed with every codec the loader recognises (zlib,
  gzip, bz2, xz, lzma, lz4), truncated, and as concatenated gzip members, so
  that the decompression path of mlfast/_loader.py is exercised;
* the code-execution payloads of tests/support/hostile/payloads.py;
* every byte string tests/test_hostile.py hands to the VM, recorded by
  fuzz/capture_plugin.py (hand-assembled opcodes, truncations, bit flips).

For fuzz/fuzz_codec.py (``make_seeds.py codec DIR``): requests of every
protocol and body type (the lesson's JSON, instances, bare arrays, rows by
feature name, CSV, NPY, V2 tensors as JSON and as Triton's binary
extension), valid and broken, each behind fuzz_codec's 8-byte prefix.

Run with the project's interpreter:  .venv/bin/python fuzz/make_seeds.py [load|codec] [DIR]
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "versions"
MAX_SEED = 64 * 1024

# recompressed in every codec: one file per family
RECOMPRESS = [
    "logreg_binary.joblib",
    "logreg_strings_obj.joblib",
    "pipeline_scaler_logreg.joblib",
    "standard_scaler.joblib",
    "imputer_mean_indicator.joblib",
    "dtc.joblib",
    "rfc.z3.joblib",
    "hgbc_nan.z3.joblib",
    "hgbr_cat.z3.joblib",
    "iforest.z3.joblib",
    "gbr.z3.joblib",
]


def write(out: Path, prefix: str, data: bytes) -> None:
    if 0 < len(data) <= MAX_SEED:
        (out / f"{prefix}-{hashlib.sha1(data).hexdigest()[:16]}").write_bytes(data)


def compressed_variants(raw: bytes):
    yield "zlib", zlib.compress(raw, 3)
    yield "gzip", gzip.compress(raw, 3, mtime=0)
    yield "bz2", bz2.compress(raw, 3)
    yield "xz", lzma.compress(raw, lzma.FORMAT_XZ)
    yield "lzma", lzma.compress(raw, lzma.FORMAT_ALONE)
    try:
        import lz4.frame
    except ImportError:
        pass
    else:
        yield "lz4", lz4.frame.compress(raw)
    # two gzip members (gzip itself reads them as one stream)
    half = len(raw) // 2
    yield "gzip2", gzip.compress(raw[:half], mtime=0) + gzip.compress(raw[half:], mtime=0)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    n0 = len(list(out.iterdir()))

    # 1. real files of every family and variant
    for path in sorted(FIXTURES.glob("*/*")):
        if path.suffix in (".joblib", ".pkl"):
            write(out, f"fixture-{path.parent.name}-{path.stem}", path.read_bytes())

    # 2. compressed variants (of the newest and the oldest stack)
    for stack in ("sk1.9.1", "sk1.1.3"):
        for name in RECOMPRESS:
            path = FIXTURES / stack / name
            if not path.exists():
                continue
            raw = path.read_bytes()
            if name.endswith(".z3.joblib"):
                raw = zlib.decompress(raw)  # recompressed below with every codec
            for codec, data in compressed_variants(raw):
                write(out, f"{codec}-{stack}-{path.stem}", data)
                if stack == "sk1.9.1" and name == "logreg_binary.joblib":
                    write(out, f"{codec}-truncated", data[: len(data) * 2 // 3])

    # 3. the hostile suite's code-execution payloads
    sys.path.insert(0, str(ROOT / "tests"))
    from support.hostile import payloads as P

    with tempfile.TemporaryDirectory() as tmp:
        for name, build in P.PAYLOADS.items():
            d = Path(tmp) / hashlib.sha1(name.encode()).hexdigest()[:8]
            d.mkdir()
            try:
                payload = build(P.Ctx(d / "MARKER", d))
            except Exception as e:  # noqa: BLE001 - a payload this Python cannot build
                print(f"skipped payload {name}: {e}", file=sys.stderr)
                continue
            write(out, "payload", payload.data)

        # 4. everything tests/test_hostile.py feeds the VM
        capture = Path(tmp) / "captured"
        env = dict(
            os.environ,
            FUZZ_CAPTURE_DIR=str(capture),
            PYTHONPATH=os.pathsep.join([str(ROOT / "fuzz"), env_path()]),
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "capture_plugin",
                "-p",
                "no:cacheprovider",
                str(ROOT / "tests" / "test_hostile.py"),
            ],
            cwd=str(ROOT),
            env=env,
            check=False,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        if capture.is_dir():
            for path in capture.iterdir():
                write(out, "hostile", path.read_bytes())

    print(f"{len(list(out.iterdir())) - n0} seeds in {out}")


def env_path() -> str:
    return os.environ.get("PYTHONPATH", "")


def codec_bodies(n: int, names):
    """(content-type index key, header length or None, body) for a model of
    n features, names its feature names (or None)."""
    import io
    import json

    import numpy as np

    row = [float(i % 5) + 0.5 for i in range(n)]
    rows = [row, [v * 2 for v in row]]
    js = lambda v: json.dumps(v).encode()  # noqa: E731
    out = [
        ("application/json", None, js({"features": row})),
        ("application/json", None, js({"features": rows})),
        ("application/json", None, js({"instances": rows})),
        ("application/json", None, js({"instances": [{"features": row}]})),
        ("application/json", None, js(rows)),
        ("application/json", None, js(row)),
        ("application/json", None, js({"instances": rows, "parameters": {"a": 1}})),
        ("application/json", None, json.dumps({"features": [float("nan")] + row[1:]}).encode()),
        ("application/json", None, js({"features": [None] + row[1:]})),
        ("application/json", None, js({"features": row[:-1]})),
        ("application/json", None, js({"features": ["a"] + row[1:]})),
        ("application/json", None, js({"features": [rows]})),
        ("application/json", None, js({"features": []})),
        ("application/json", None, js({"features": [[1.0], [1.0, 2.0]]})),
        ("application/json", None, js({"features": [10**30] + row[1:]})),
        ("application/json", None, js({"inputs": []})),
        ("application/json", None, b'{"features": [1, 2'),
        ("application/json", None, b""),
        ("application/json", None, js({})),
        ("text/csv", None, ("\n".join(",".join(map(str, r)) for r in rows) + "\n").encode()),
        ("text/csv", None, b"nan," + ",".join(map(str, row[1:])).encode()),
        ("text/csv", None, b"1,2\n3\n"),
        ("text/csv", None, b"a,b\n"),
    ]
    if names is not None:
        named = {str(k): v for k, v in zip(names, row)}
        out.append(("application/json", None, js({"instances": [named]})))
        out.append(("application/json", None, js({"features": named})))
    for array in (
        np.array(rows),
        np.asfortranarray(rows, dtype=np.float32),
        np.array(rows, dtype=">f8"),
        np.array(rows).astype(np.int16),
        np.array(row),
        np.zeros((1, 1, n)),
    ):
        buf = io.BytesIO()
        np.save(buf, array)
        out.append(("application/x-npy", None, buf.getvalue()))
        out.append(("application/x-npy", None, buf.getvalue()[:-3]))
    for dt, cast in (
        ("FP64", float),
        ("FP32", float),
        ("FP16", float),
        ("INT64", int),
        ("INT8", int),
        ("UINT8", int),
        ("BOOL", bool),
    ):
        data = [cast(v) for v in row]
        doc = {"inputs": [{"name": "input", "shape": [1, n], "datatype": dt, "data": data}]}
        out.append(("application/json", None, js(doc)))
    for outputs in (
        [{"name": "predict_proba"}],
        [{"name": "predict"}, {"name": "decision_function"}],
        [{"name": "transform", "parameters": {"binary_data": True}}],
    ):
        doc = {
            "id": "x",
            "inputs": [{"name": "input", "shape": [2, n], "datatype": "FP64", "data": rows}],
            "outputs": outputs,
            "parameters": {"binary_data_output": True},
        }
        out.append(("application/json", None, js(doc)))
    for dt, np_dt in (("FP32", "<f4"), ("FP64", "<f8"), ("INT32", "<i4")):
        raw = np.array(rows, dtype=np_dt).tobytes()
        header = js(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [2, n],
                        "datatype": dt,
                        "parameters": {"binary_data_size": len(raw)},
                    }
                ],
                "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
            }
        )
        out.append(("application/octet-stream", len(header), header + raw))
        out.append(("application/octet-stream", len(header), header + raw[:-1]))
    return out


def codec_seeds(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT / "fuzz"))
    import fuzz_codec as F

    count = 0
    for m, (service, posts, _gets) in enumerate(F.SERVICES):
        served = service.registry.default
        names = served.feature_names
        bodies = codec_bodies(served.n_features or 1, None if names is None else list(names))
        for r, route in enumerate(posts):
            for ct_name, header_length, body in bodies:
                # every body on the lesson's and V2's routes; a sample elsewhere
                if route.name not in (
                    "predict",
                    "v2_infer",
                    "sagemaker_invocations",
                    "vertex_predict",
                    "v1_predict",
                ) and (count % 5):
                    count += 1
                    continue
                ct = F.CONTENT_TYPES.index(ct_name)
                hl = (1, *header_length.to_bytes(2, "little")) if header_length else (0, 0, 0)
                prefix = bytes([m, r, ct, count % len(F.ACCEPTS), *hl, 0])
                write(out, f"codec-{route.name}", prefix + body)
                count += 1
    print(f"{len(list(out.iterdir()))} codec seeds in {out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "codec":
        codec_seeds(Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/mlfast-seeds-codec"))
    else:
        args = sys.argv[2:] if len(sys.argv) > 1 and sys.argv[1] == "load" else sys.argv[1:]
        main(Path(args[0] if args else "/tmp/mlfast-seeds"))
