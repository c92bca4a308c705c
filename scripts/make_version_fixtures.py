#!/usr/bin/env python3
"""Record golden model files from older scikit-learn / numpy / joblib stacks.

mlfast must read files that older stacks wrote (numpy 1.x ``numpy.core.*``
names and, before 1.17, ``numpy.random.__RandomState_ctor``; joblib < 1.2
without alignment padding, joblib 1.2-1.4 object arrays as nested protocol-2
pickles; Python 3.7's protocol 3; the public module paths of scikit-learn
< 0.22 such as ``sklearn.ensemble.forest``; scikit-learn state that changed
meaning across versions).  CI cannot install a dozen old stacks, so this
script is run by hand, once, and its output is committed:

    python3 scripts/make_version_fixtures.py            # every stack
    python3 scripts/make_version_fixtures.py sk1.3.2    # some stacks

For each stack of STACKS it creates (or reuses) a virtualenv under
/tmp/mlfast-venvs/<name> with ``python -m venv`` + pip (wheels only), the
python being PYTHONS[name] from pyenv for the stacks older than CPython
3.11's wheels (scikit-learn < 1.1: Python 3.7 and 3.8), else --python; then
it runs scripts/_fixture_generator.py with that venv's python.  The
generator fits small estimators on generated data with fixed seeds, saves
them with that stack's joblib (and, for a few, compressed with each codec,
through sklearn.externals.joblib where it exists, and with
``pickle.dump(protocol=0, 1, 2)``), and records the outputs of every method
on fixed float64 and float32 test inputs, computed by that stack's
scikit-learn, in ``<fixture>.npz``.

Output: tests/fixtures/versions/<stack>/ (model files, <fixture>.npz with
the recorded outputs, inputs.npz with the test inputs) and
tests/fixtures/versions/manifest.json: stack -> requirements, versions, the
modules the files name, facts all its files share (tree node layouts), and
fixtures (estimator, methods with their output dtypes, test input, files by
variant, a few version-dependent facts of the pickled state, what scikit-learn
refused to answer, and, for a file mlfast must refuse, the error).
Read by tests/test_versions.py.  The run is reproducible byte for byte
(fixed seeds, fixed zip and gzip timestamps), so regenerating changes no
unchanged file.

The whole matrix (14 stacks) takes about five minutes once the venvs exist
(about 4 GB under /tmp/mlfast-venvs; creating them takes longer).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "scripts" / "_fixture_generator.py"
OUT = ROOT / "tests" / "fixtures" / "versions"
VENVS = Path(os.environ.get("MLFAST_VENVS", "/tmp/mlfast-venvs"))

#: name -> pip requirements.  Each combination resolves with binary wheels
#: only on CPython 3.11 (checked with ``pip install --dry-run --only-binary``).
#: numpy and scipy are pinned because the old scikit-learn wheels do not cap
#: numpy < 2 in their metadata although they were built against numpy 1.x.
STACKS = {
    # the last release with the public module names (sklearn.ensemble.forest,
    # sklearn.tree.tree, sklearn.linear_model.logistic, ...), the first with
    # _gb_losses and Dummy init_ estimators; LogisticRegression's solver and
    # multi_class defaults are still 'warn' (liblinear, one-vs-rest)
    "sk0.21.3": ["scikit-learn==0.21.3", "numpy==1.16.6", "scipy==1.3.3", "joblib==0.13.2"],
    # Python 3.7: joblib 0.14 writes protocol 3 (GLOBAL, BINPUT, no frames);
    # sklearn.externals.joblib still exists (a shim over joblib); the first
    # release with the private module names (sklearn.ensemble._forest, ...)
    "sk0.22.2": ["scikit-learn==0.22.2.post1", "numpy==1.17.5", "scipy==1.4.1", "joblib==0.14.1"],
    # Python 3.8: protocol 4; sklearn.externals.joblib is gone
    "sk0.23.2": [
        "scikit-learn==0.23.2",
        "numpy==1.18.5",
        "scipy==1.5.4",
        "joblib==0.16.0",
        "threadpoolctl==2.1.0",
    ],
    # n_features_in_ appears; HistGradientBoosting learns categorical features
    "sk0.24.2": [
        "scikit-learn==0.24.2",
        "numpy==1.19.5",
        "scipy==1.6.3",
        "joblib==1.0.1",
        "threadpoolctl==2.1.0",
    ],
    # Python 3.7 again (protocol 3) with the last loss_ attributes
    "sk1.0.2": [
        "scikit-learn==1.0.2",
        "numpy==1.21.6",
        "scipy==1.7.3",
        "joblib==1.1.0",
        "threadpoolctl==3.0.0",
    ],
    # numpy 1.x `numpy.core` names; joblib 1.1: no alignment padding
    "sk1.1.3": [
        "scikit-learn==1.1.3",
        "numpy==1.23.5",
        "scipy==1.9.3",
        "joblib==1.1.1",
        "threadpoolctl<3.6",
    ],
    # joblib 1.2: first with alignment padding; object arrays as protocol-2 pickles
    "sk1.2.2": [
        "scikit-learn==1.2.2",
        "numpy==1.24.4",
        "scipy==1.10.1",
        "joblib==1.2.0",
        "threadpoolctl<3.6",
    ],
    # trees gain missing_go_to_left (node itemsize 64)
    "sk1.3.2": [
        "scikit-learn==1.3.2",
        "numpy==1.25.2",
        "scipy==1.11.4",
        "joblib==1.3.2",
        "threadpoolctl<3.6",
    ],
    # tree values become fractions; GradientBoosting moves to sklearn._loss
    "sk1.4.2": ["scikit-learn==1.4.2", "numpy==1.26.4", "scipy==1.13.1", "joblib==1.4.0"],
    # numpy 2 (`numpy._core` names) with joblib 1.4 (nested protocol-2 pickles)
    "sk1.5.2": ["scikit-learn==1.5.2", "numpy==2.0.2", "scipy==1.14.1", "joblib==1.4.2"],
    # joblib 1.5: nested pickles of object arrays at protocol 5
    "sk1.6.1": ["scikit-learn==1.6.1", "numpy==2.2.6", "scipy==1.15.3", "joblib==1.5.1"],
    "sk1.7.2": ["scikit-learn==1.7.2", "numpy==2.3.5", "scipy==1.16.3", "joblib==1.5.2"],
    "sk1.8.0": ["scikit-learn==1.8.0", "numpy==2.3.5", "scipy==1.17.1", "joblib==1.5.3"],
    "sk1.9.1": ["scikit-learn==1.9.1", "numpy==2.4.6", "scipy==1.17.1", "joblib==1.6.0"],
}

#: stacks that need an older interpreter than the one running this script
#: (scikit-learn < 1.1 has no wheels for CPython 3.11): pyenv's, if present
PYTHONS = {
    "sk0.21.3": "3.7",
    "sk0.22.2": "3.7",
    "sk0.23.2": "3.8",
    "sk0.24.2": "3.8",
    "sk1.0.2": "3.7",
}

_STAMP = ".mlfast-requirements"


def python_for(name: str, default: str) -> str:
    """The interpreter of a stack: PYTHONS[name] from pyenv (the newest
    patch release installed) or from PATH, else the default."""
    wanted = PYTHONS.get(name)
    if wanted is None:
        return default
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(
        root.glob(f"{wanted}.*/bin/python{wanted}"),
        key=lambda p: [int(x) for x in p.parts[-3].split(".") if x.isdigit()],
    )
    if found:
        return str(found[-1])
    on_path = shutil.which(f"python{wanted}")
    if on_path is None:
        raise SystemExit(f"[{name}] needs Python {wanted}: install it with pyenv")
    return on_path


def ensure_venv(name: str, requirements: list, python: str) -> Path:
    """The venv's python, creating the venv or reinstalling when its
    requirements changed."""
    venv = VENVS / name
    py = venv / "bin" / "python"
    stamp = venv / _STAMP
    wanted = "\n".join([f"python: {python}", *requirements]) + "\n"
    if py.exists() and stamp.exists() and stamp.read_text() == wanted:
        return py
    if venv.exists():
        shutil.rmtree(venv)
    print(f"[{name}] creating {venv}", flush=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--only-binary=:all:", *requirements],
        check=True,
    )
    stamp.write_text(wanted)
    return py


def run_generator(name: str, py: Path) -> dict:
    out = OUT / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    print(f"[{name}] generating fixtures in {out.relative_to(ROOT)}", flush=True)
    # -I: isolated mode, nothing from the caller's environment or from this
    # checkout (mlfast, .venv) leaks into the old stack.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["OMP_NUM_THREADS"] = "1"
    env["OPENBLAS_NUM_THREADS"] = "1"
    subprocess.run(
        [str(py), "-I", str(GENERATOR), str(out), name], check=True, env=env, cwd=str(out)
    )
    part = out / "manifest.part.json"
    result = json.loads(part.read_text())
    part.unlink()
    return result


def write_manifest(path: Path, stacks: dict) -> None:
    """manifest.json: stack -> {requirements, versions, fixtures: name -> entry},
    one line per fixture (small, and diffs well)."""
    lines = [
        "{",
        ' "about": "Golden files written by scripts/make_version_fixtures.py, '
        "checked by tests/test_versions.py; file names are relative to the stack's "
        'folder",',
        ' "stacks": {',
    ]
    for i, (name, info) in enumerate(stacks.items()):
        head = {k: v for k, v in info.items() if k != "fixtures"}
        lines.append(f"  {json.dumps(name)}: {{")
        for k, v in head.items():
            lines.append(f"   {json.dumps(k)}: {json.dumps(v)},")
        lines.append('   "fixtures": {')
        fixtures = list(info["fixtures"].items())
        for j, (fixture, entry) in enumerate(fixtures):
            comma = "," if j < len(fixtures) - 1 else ""
            lines.append(f"    {json.dumps(fixture)}: {json.dumps(entry)}{comma}")
        lines.append("   }")
        lines.append("  }" + ("," if i < len(stacks) - 1 else ""))
    lines += [" }", "}"]
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks", nargs="*", help=f"subset of {', '.join(STACKS)}")
    parser.add_argument("--python", default="python3", help="interpreter for the venvs")
    parser.add_argument("--setup-only", action="store_true", help="only create the venvs")
    args = parser.parse_args(argv)
    names = args.stacks or list(STACKS)
    unknown = [n for n in names if n not in STACKS]
    if unknown:
        parser.error(f"unknown stacks {unknown}; known: {', '.join(STACKS)}")

    pythons = {
        name: ensure_venv(name, STACKS[name], python_for(name, args.python)) for name in names
    }
    if args.setup_only:
        return 0

    manifest_path = OUT / "manifest.json"
    stacks = {}
    if manifest_path.exists():  # keep the stacks not regenerated now
        stacks = {
            n: v
            for n, v in json.loads(manifest_path.read_text())["stacks"].items()
            if "fixtures" in v
        }
    for name in names:
        result = run_generator(name, pythons[name])
        fixtures = {}
        for entry in result["fixtures"]:
            assert entry.pop("stack") == name
            fixtures[entry.pop("fixture")] = entry
        stacks[name] = {
            "requirements": STACKS[name],
            "versions": result["versions"],
            "modules": result["modules"],
            "facts": result["facts"],
            "fixtures": dict(sorted(fixtures.items())),
        }
    order = {n: i for i, n in enumerate(STACKS)}
    stacks = {n: stacks[n] for n in sorted(stacks, key=lambda n: order.get(n, len(order)))}
    write_manifest(manifest_path, stacks)
    n_fixtures = sum(len(info["fixtures"]) for info in stacks.values())
    n_files = sum(len(e["files"]) for info in stacks.values() for e in info["fixtures"].values())

    total = 0
    per_stack = {}
    for path in OUT.rglob("*"):
        if path.is_file():
            total += path.stat().st_size
            stack = path.relative_to(OUT).parts[0]
            per_stack[stack] = per_stack.get(stack, 0) + path.stat().st_size
    for stack, size in sorted(per_stack.items(), key=lambda kv: order.get(kv[0], 99)):
        print(f"  {stack:<14} {size / 1024:8.1f} KiB")
    print(
        f"{n_fixtures} fixtures ({n_files} model files), total size "
        f"{total / 1024:.1f} KiB ({total} bytes) in {OUT.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
