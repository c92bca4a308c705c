"""Hostile model files: mlfast must refuse them with the right error, say what
and where, and never run anything, crash or hang.

Every payload is built here, opcode by opcode (tests/hostile/__init__.py) or
by pickling small objects whose ``__reduce__`` names a dangerous callable
(tests/support/hostile/payloads.py).  Each test checks three things:

1. the exact exception class: ``UnsafeModelError`` for a forbidden global,
   opcode or construct, ``ModelFormatError`` for corrupt, truncated or lying
   data, ``UnsupportedModelError`` for valid input mlfast does not serve or
   that is over a cap;
2. the message: the global's dotted name or the opcode, and "byte N";
3. no side effect: payloads that would run code try to create a marker file
   in tmp_path, and the marker must not exist afterwards.

Cases that could crash or hang the interpreter run in a subprocess.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import random
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from support.hostile import Asm, frombuffer_pickle, ndarray_pickle
from support.hostile import payloads as P

import mlfast
from mlfast import ModelFormatError, UnsafeModelError, UnsupportedModelError, _core

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


# ---- helpers ------------------------------------------------------------------------


def where(op: str, offset: int) -> str:
    return f"(at {op}, byte {offset})"


def expect(exc, data, *fragments, raw=True, marker=None, max_memory=None):
    """mlfast.loads(data) and, if raw, mlfast._core.unpickle(data) both raise
    exactly `exc`, with every fragment in the message; the marker (if any)
    does not exist afterwards.  Returns the message of loads."""
    kw = {} if max_memory is None else {"max_memory": max_memory}
    messages = []
    for fn in (mlfast.loads, _core.unpickle) if raw else (mlfast.loads,):
        try:
            fn(data, **kw)
        except Exception as e:  # noqa: BLE001 - the class is what is checked
            got = e
        else:
            pytest.fail(
                f"{fn.__module__}.{fn.__name__} accepted the payload; expected {exc.__name__}"
            )
        assert type(got) is exc, (
            f"{fn.__module__}.{fn.__name__}: expected {exc.__name__}, got "
            f"{type(got).__module__}.{type(got).__name__}: {got}"
        )
        msg = str(got)
        for fragment in fragments:
            assert fragment in msg, f"{fragment!r} not in message: {msg}"
        messages.append(msg)
    if marker is not None:
        assert not Path(marker).exists(), "the payload ran: the marker file exists"
    return messages[0]


def run_python(code: str, timeout: float, env=None):
    """Runs code in a fresh interpreter with mlfast importable."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(TESTS)] + ([full_env["PYTHONPATH"]] if full_env.get("PYTHONPATH") else [])
    )
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=str(ROOT),
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    # the scratch dir is importable: a payload that imported its module
    # would create the marker
    monkeypatch.syspath_prepend(str(tmp_path))
    return P.Ctx(marker=tmp_path / "MARKER", scratch=tmp_path)


# ---- real model files ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.array([[0.0, 1], [1, 0], [2, 2], [3, 1], [0.5, 3], [2.5, 0.2], [1.5, 1.5]])
    # object dtype: joblib writes classes_ as a nested pickle after its wrapper
    y = np.array(["a", "b", "a", "b", "c", "c", "a"], dtype=object)
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, y)
    return model, X


@pytest.fixture(scope="module")
def joblib_bytes(pipeline):
    import joblib

    buf = io.BytesIO()
    joblib.dump(pipeline[0], buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def proto2_bytes(pipeline):
    return pickle.dumps(pipeline[0], protocol=2)


@pytest.fixture(scope="module")
def proto0_bytes(pipeline):
    return pickle.dumps(pipeline[0], protocol=0)


@pytest.fixture(scope="module")
def joblib_p1_bytes(pipeline):
    import joblib

    buf = io.BytesIO()
    joblib.dump(pipeline[0], buf, protocol=1)
    return buf.getvalue()


def nested_stream(data: bytes, attribute: bytes = b"classes_"):
    """(start, end) of the nested pickle joblib wrote for an object array:
    it follows the wrapper's SETITEMS + BUILD right after the attribute name."""
    at = data.index(attribute)
    start = data.index(b"ub\x80", at) + 2
    end = start
    for op, _arg, pos in pickletools.genops(data[start:]):
        if op.name == "STOP":
            end = start + pos + 1
            break
    assert data[start] == 0x80 and end > start
    return start, end


def test_real_files_load(pipeline, joblib_bytes, proto2_bytes):
    """The files the truncation and corruption tests start from are good."""
    model, X = pipeline
    for data in (joblib_bytes, proto2_bytes):
        fast = mlfast.loads(data)
        np.testing.assert_array_equal(fast.predict(X), model.predict(X))
    start, end = nested_stream(joblib_bytes)
    inner = _core.unpickle(joblib_bytes[start:end])
    assert inner.dtype == object and list(inner) == ["a", "b", "c"]


# =============================================================================================
# 1. Code execution through globals: REDUCE, NEWOBJ, GLOBAL, STACK_GLOBAL
# =============================================================================================


@pytest.mark.parametrize("name", list(P.PAYLOADS))
def test_code_execution_payload_is_refused(name, ctx):
    p = P.build(name, ctx)
    expect(UnsafeModelError, p.data, p.refusal, where(p.op, p.offset), marker=ctx.marker)


def test_code_execution_payloads_are_live_under_cpython(tmp_path):
    """Control: CPython's pickle.loads does run the payloads marked live (in a
    subprocess), so the test above refuses real attacks, not broken bytes."""
    names, dirs = [], []
    for name, fn in P.PAYLOADS.items():
        d = tmp_path / name.replace("/", "_").replace(" ", "_")
        d.mkdir()
        p = fn(P.Ctx(d / "MARKER", d))
        if not p.live:
            continue  # a browser, a debugger, or simply not runnable
        (d / "payload.pkl").write_bytes(p.data)
        names.append(name)
        dirs.append(str(d))
    assert len(names) >= 30
    env = {"PYTHONPATH": os.pathsep.join([str(TESTS)] + dirs)}
    r = subprocess.run(
        [sys.executable, "-m", "support.hostile.payloads", str(tmp_path)] + names,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        cwd=str(tmp_path),
        stdin=subprocess.DEVNULL,
    )
    status = dict(
        line.split(" ", 1)[::-1]
        for line in r.stdout.splitlines()
        if line.startswith(("LIVE ", "DEAD "))
    )
    for name in names:
        assert status.get(name) == "LIVE", (
            f"{name}: payload did not run under CPython\n{r.stderr[-2000:]}"
        )


def test_load_from_a_path_is_refused_too(ctx, tmp_path):
    p = P.build("os.system/proto2", ctx)
    path = tmp_path / "model.pkl"
    path.write_bytes(p.data)
    with pytest.raises(UnsafeModelError, match=r"'posix\.system'.*byte 2\)"):
        mlfast.load(path)
    with pytest.raises(UnsafeModelError, match=r"'posix\.system'"):
        mlfast.inspect(path)
    assert not ctx.marker.exists()


def test_every_global_of_the_payloads_is_classified_refused():
    """classify_global (used by the inspect command) agrees with the VM."""
    for module, name in [
        ("posix", "system"),
        ("os", "system"),
        ("builtins", "eval"),
        ("builtins", "map"),
        ("builtins", "filter"),
        ("importlib", "import_module"),
        ("pkgutil", "resolve_name"),
        ("operator", "attrgetter"),
        ("functools", "reduce"),
        ("runpy", "run_path"),
        ("pdb", "run"),
        ("marshal", "loads"),
        ("types", "FunctionType"),
        ("shutil", "rmtree"),
        ("webbrowser", "open"),
        ("asyncio", "run"),
        ("numpy", "load"),
        ("joblib", "load"),
        ("pickle", "loads"),
        ("numpy.ctypeslib", "load_library"),
        ("numpy", "__builtins__"),
        ("sklearn", "__builtins__"),
        ("sklearn.utils", "__loader__"),
        ("sklearn", "utils.os.system"),
        ("numpy.lib.npyio", "load"),
        ("numpy.random", "__builtins__"),
        ("numpy.random._pickle", "__builtins__"),
        ("joblib.numpy_pickle", "NDArrayWrapper"),
        ("copyreg", "__newobj__"),
        ("_loss", "os"),
        ("_loss", "__builtins__"),
        ("sklearn..x", "Y"),
        ("sklearn ", "Y"),
        ("", "Y"),
    ]:
        assert _core.classify_global(module, name) == 0, f"{module}.{name} is not refused"


def test_a_class_outside_the_table_is_a_name_never_imported(ctx):
    """A user's own class (in __main__ or a package) or another library's is
    classified as unknown: instantiated as an inert record by NEWOBJ or
    copyreg._reconstructor, refused when called; the standard library and
    the libraries mlfast reads stay refused when named."""
    unknown = _core.GLOBAL_KINDS["unknown"]
    for module, name in [
        ("__main__", "MyTransformer"),
        ("mypkg.features", "Clip"),
        ("torch.nn.modules.linear", "Linear"),
        ("mlfast_hostile_x", "x"),
    ]:
        assert _core.classify_global(module, name) == unknown, f"{module}.{name}"
    for module, name in [
        ("os", "system"),
        ("posixpath", "join"),
        ("imp", "load_source"),
        ("distutils.spawn", "spawn"),
        ("numpy.lib.npyio", "load"),
        ("scipy.io", "loadmat"),
        ("pandas.io.pickle", "read_pickle"),
        ("joblib.numpy_pickle", "load"),
        ("dill", "loads"),
        ("cloudpickle.cloudpickle", "subimport"),
        ("__builtin__", "eval"),
    ]:
        assert _core.classify_global(module, name) == 0, f"{module}.{name} is not refused"
    # NEWOBJ + BUILD: an inert record, its state kept as data
    a = Asm(4).stack_global(ctx.evil_module(), "Thing").op("EMPTY_TUPLE").newobj()
    a.op("EMPTY_DICT").str("alpha").op("BININT1", b"\x03").op("SETITEM").op("BUILD").stop()
    rec = _core.unpickle(a.bytes())
    assert rec.path.endswith(".Thing") and rec.state == {"alpha": 3}
    assert rec.cls.kind == unknown
    # protocols 0 and 1 make the same object through copyreg._reconstructor
    a = Asm(2).global_("copy_reg", "_reconstructor").global_("__main__", "Mine")
    a.global_("__builtin__", "object").op("NONE").tuple_n(3).reduce().stop()
    assert _core.unpickle(a.bytes()).path == "__main__.Mine"
    # an unknown class named as a value is a name too
    a = Asm(4).stack_global("mypkg.funcs", "score").stop()
    assert _core.unpickle(a.bytes()).path == "mypkg.funcs.score"
    # a call of it is refused where it is made, and nothing was imported
    for args in (b"", None):
        a = Asm(4).stack_global("mypkg.funcs", "score")
        a = a.op("EMPTY_TUPLE") if args == b"" else a.str("x").tuple_n(1)
        a.reduce(label="call").stop()
        expect(
            UnsafeModelError,
            a.bytes(),
            "'mypkg.funcs.score' is called",
            where("REDUCE", a.pos("call")),
            marker=ctx.marker,
        )
    assert not ctx.marker.exists()


def test_a_users_own_class_is_unsupported_and_named(tmp_path):
    """A Pipeline holding a user's transformer loads as far as the builders,
    which name every class mlfast does not serve and where it sits."""
    script = tmp_path / "train.py"
    out = tmp_path / "model.pkl"
    script.write_text(
        "import joblib, numpy as np\n"
        "from sklearn.base import BaseEstimator, TransformerMixin\n"
        "from sklearn.pipeline import Pipeline\n"
        "from sklearn.preprocessing import StandardScaler\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "class Clip(BaseEstimator, TransformerMixin):\n"
        "    def fit(self, X, y=None):\n        return self\n"
        "    def transform(self, X):\n        return np.clip(X, 0, 1)\n"
        "X = np.random.RandomState(0).rand(40, 3); y = (X[:, 0] > 0.5).astype(int)\n"
        "m = Pipeline([('clip', Clip()), ('s', StandardScaler()), ('c', Clip()),\n"
        "              ('lr', LogisticRegression())]).fit(X, y)\n"
        f"joblib.dump(m, {str(out)!r})\n"
    )
    subprocess.run([sys.executable, str(script)], check=True, cwd=tmp_path)
    with pytest.raises(UnsupportedModelError) as info:
        mlfast.load(out)
    msg = str(info.value)
    assert "model.steps[0] is a __main__.Clip" in msg and "model.steps[2] is a __main__.Clip" in msg
    assert "mlfast does not serve 2 estimators of this model:" in msg
    assert "defined in the script or notebook that saved the model" in msg
    assert "supported_estimators()" in msg
    # inspect shows the tree, the user's class by name
    assert "__main__.Clip" in mlfast.inspect(out)


def test_a_users_own_function_is_unsupported_and_named(tmp_path):
    """FunctionTransformer(func=a function of the user's): the name is kept
    as an inert value, never imported, and the builder names it."""
    script = tmp_path / "train.py"
    script.write_text(
        "import pickle, numpy as np\n"
        "from sklearn.preprocessing import FunctionTransformer\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "def clip01(X):\n    return np.clip(X, 0, 1)\n"
        "X = np.random.RandomState(0).rand(30, 3); y = (X[:, 0] > 0.5).astype(int)\n"
        "m = make_pipeline(FunctionTransformer(clip01), LogisticRegression()).fit(X, y)\n"
        "pickle.dump(m, open('m.pkl', 'wb'))\n"
    )
    subprocess.run([sys.executable, str(script)], check=True, cwd=tmp_path)
    with pytest.raises(
        UnsupportedModelError,
        match=r"model\.steps\[0\] \(FunctionTransformer\): func is __main__\.clip01, "
        r"which mlfast does not serve",
    ):
        mlfast.load(tmp_path / "m.pkl")


def test_getattr_only_names_a_method_of_an_inert_record(ctx):
    """builtins.getattr may stand for a bound method of an inert record (how
    pickle writes the numpy.vectorize(getattr(self, '_entropy')) that scipy's
    discrete distributions keep); on anything else -- a global, a module a
    payload hopes to reach, a dunder name -- it is refused, and it is never
    called."""
    a = Asm(4).stack_global("builtins", "getattr").stack_global("builtins", "set")
    a.str("add").tuple_n(2).reduce(label="call").stop()
    expect(
        UnsafeModelError,
        a.bytes(),
        "builtins.getattr is refused on anything but an inert",
        where("REDUCE", a.pos("call")),
        marker=ctx.marker,
    )
    for name in ("__class__", "__reduce_ex__", "not an identifier", "__globals__"):
        a = Asm(4).stack_global("builtins", "getattr")
        a.stack_global("sklearn.linear_model", "LogisticRegression").op("EMPTY_TUPLE").newobj()
        a.str(name).tuple_n(2).reduce(label="call").stop()
        expect(
            UnsafeModelError,
            a.bytes(),
            "builtins.getattr is refused",
            where("REDUCE", a.pos("call")),
            marker=ctx.marker,
        )
    a = Asm(4).stack_global("builtins", "getattr")
    a.stack_global("sklearn.linear_model", "LogisticRegression").op("EMPTY_TUPLE").newobj()
    a.str("predict").tuple_n(2).reduce().stop()
    ref = mlfast._core.unpickle(a.bytes())
    assert ref.path == "builtins.getattr" and ref.args[1] == "predict"
    assert ref.args[0].path == "sklearn.linear_model.LogisticRegression"
    a = Asm(4).stack_global("builtins", "getattr").op("EMPTY_TUPLE").newobj(label="new").stop()
    expect(
        UnsafeModelError,
        a.bytes(),
        "may not be instantiated with NEWOBJ",
        where("NEWOBJ", a.pos("new")),
    )


def test_scipy_and_numpy_ma_are_read_only_as_records():
    """The search objects' masked arrays and scipy.stats distributions are
    inert records; other scipy and numpy names stay refused."""
    kinds = mlfast._core.GLOBAL_KINDS
    record, typeref = kinds["record"], kinds["typeref"]
    classify = mlfast._core.classify_global
    assert classify("scipy.stats._distn_infrastructure", "rv_continuous_frozen") == record
    assert classify("scipy.stats._discrete_distns", "randint_gen") == record
    assert classify("numpy.ma.core", "_mareconstruct") == record
    assert classify("numpy.ma.core", "MaskedArray") == typeref
    for module, name in [
        ("scipy.stats", "_gen"),
        ("scipy.stats._x", "__init_gen"),
        ("scipy.io", "loadmat"),
        ("scipy.stats", "rvs"),
        ("scipy.stats._distn_infrastructure", "rv_frozen_gen_x"),
        ("numpy.ma.core", "fromfile"),
        ("numpy.ma", "load"),
        ("scipy", "stats"),
        ("scipy.stats.os", "system"),
    ]:
        assert classify(module, name) == 0, (module, name)


def test_functools_partial_only_around_a_scikit_learn_function(ctx):
    """functools.partial is allowed (HistGradientBoosting keeps one) but only
    around a scikit-learn name, it stays an inert Record, and the partial
    can never be called."""
    a = Asm(4).stack_global("functools", "partial").stack_global("numpy", "dtype").tuple_n(1)
    a.reduce(label="call").stop()
    expect(
        UnsafeModelError,
        a.bytes(),
        "functools.partial is refused around anything but a scikit-learn function",
        where("REDUCE", a.pos("call")),
    )
    a = Asm(4).stack_global("functools", "partial").stack_global("sklearn.datasets", "fetch_openml")
    a.str("x").tuple_n(2).reduce(label="call").stop()
    expect(
        UnsafeModelError, a.bytes(), "functools.partial is refused", where("REDUCE", a.pos("call"))
    )
    a = Asm(4).stack_global("functools", "partial").op("EMPTY_TUPLE").newobj(label="new").stop()
    expect(
        UnsafeModelError,
        a.bytes(),
        "'functools.partial' may not be instantiated with NEWOBJ",
        where("NEWOBJ", a.pos("new")),
    )
    # partial(sklearn.datasets.load_files, path)(): built, then called
    a = (
        Asm(4)
        .stack_global("functools", "partial")
        .stack_global("sklearn.datasets", "load_files")
        .tuple_n(1)
    )
    a.reduce().mark().stack_global("sklearn.datasets", "load_files").value((str(ctx.scratch),)).op(
        "EMPTY_DICT"
    )
    a.none().tuple().build()
    record = _core.unpickle(a.bytes() + b".")
    assert isinstance(record, _core.Record) and record.path == "functools.partial"
    a.op("EMPTY_TUPLE").reduce(label="call").stop()
    expect(
        ModelFormatError,
        a.bytes(),
        "REDUCE of a mlfast._core.Record; only named globals are callable",
        where("REDUCE", a.pos("call")),
        marker=ctx.marker,
    )


def test_sklearn_namespace_functions_stay_inert(ctx):
    """Anything under sklearn.* becomes an inert Record: even a name that
    would be joblib.load in an old scikit-learn is never called."""
    path = ctx.scratch / "evil.joblib"
    path.write_bytes(pickle.dumps(P.Reduce(os.system, ctx.cmd), protocol=2))
    a = (
        Asm(4)
        .stack_global("sklearn.externals.joblib", "load")
        .str(str(path))
        .tuple_n(1)
        .reduce()
        .stop()
    )
    record = _core.unpickle(a.bytes())
    assert isinstance(record, _core.Record)
    assert record.path == "sklearn.externals.joblib.load" and record.args == (str(path),)
    expect(
        UnsupportedModelError,
        a.bytes(),
        "sklearn.externals.joblib.load",
        "does not serve",
        raw=False,
        marker=ctx.marker,
    )


def test_random_state_constructor_stays_inert(ctx):
    """numpy's __bit_generator_ctor instantiates any class it is given; here
    it is a Record and its argument a name."""
    a = Asm(4).stack_global("numpy.random._pickle", "__bit_generator_ctor")
    a.stack_global("sklearn.datasets._base", "Bunch").tuple_n(1).reduce().stop()
    record = _core.unpickle(a.bytes())
    assert record.path == "numpy.random._pickle.__bit_generator_ctor"
    assert isinstance(record.args[0], _core.Global)
    assert not ctx.marker.exists()


# ---- NEWOBJ / NEWOBJ_EX over what may not be instantiated -------------------------------------


@pytest.mark.parametrize(
    "module,name",
    [
        ("builtins", "set"),
        ("builtins", "int"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
    ],
)
@pytest.mark.parametrize("opcode", ["NEWOBJ", "NEWOBJ_EX"])
def test_newobj_over_allowed_non_class(module, name, opcode):
    a = Asm(4).stack_global(module, name).op("EMPTY_TUPLE")
    if opcode == "NEWOBJ_EX":
        a.op("EMPTY_DICT")
    a.op(opcode, label="new").stop()
    expect(
        UnsafeModelError,
        a.bytes(),
        f"'{module}.{name}' may not be instantiated with NEWOBJ",
        where(opcode, a.pos("new")),
    )


def test_newobj_ex_with_keyword_arguments_is_unsupported():
    a = Asm(4).stack_global("sklearn.linear_model", "LogisticRegression").op("EMPTY_TUPLE")
    a.op("EMPTY_DICT").str("C").int(1).op("SETITEM").op("NEWOBJ_EX", label="new").stop()
    expect(
        UnsupportedModelError,
        a.bytes(),
        "NEWOBJ_EX with keyword arguments",
        where("NEWOBJ_EX", a.pos("new")),
    )


@pytest.mark.parametrize(
    "module,name",
    [
        ("builtins", "int"),
        ("numpy", "float64"),
        ("numpy.random", "MT19937"),
        ("builtins", "object"),
        ("numpy.random._pickle", "os"),
        ("numpy.random.mtrand", "seed"),
    ],
)
def test_reduce_of_a_type_reference_is_refused(module, name):
    """Types may be named as values (dtype=np.float64), never called; every
    public name under numpy.random is such an inert reference (the bit
    generator classes are), even the module's own imports."""
    a = Asm(4).stack_global(module, name).str("1").tuple_n(1).reduce(label="call").stop()
    expect(
        UnsafeModelError,
        a.bytes(),
        f"'{module}.{name}' may not be called",
        where("REDUCE", a.pos("call")),
    )


def test_reduce_of_a_non_global_is_corrupt():
    a = Asm(4).str("posix.system").str("x").tuple_n(1).reduce(label="call").stop()
    expect(
        ModelFormatError,
        a.bytes(),
        "REDUCE of a str; only named globals are callable",
        where("REDUCE", a.pos("call")),
    )


def test_copyreg_reconstructor_of_a_non_estimator():
    a = (
        Asm(2)
        .global_("copy_reg", "_reconstructor")
        .global_("numpy", "dtype")
        .global_("__builtin__", "object")
    )
    a.none().tuple_n(3).reduce(label="call").stop()
    expect(
        UnsafeModelError,
        a.bytes(),
        "copyreg._reconstructor of something other than an allowed class",
        where("REDUCE", a.pos("call")),
    )
    a = Asm(2).global_("copy_reg", "_reconstructor").global_("sklearn.base", "BaseEstimator")
    a.global_("__builtin__", "set").none().tuple_n(3).reduce(label="call").stop()
    expect(
        UnsupportedModelError, a.bytes(), "base other than object", where("REDUCE", a.pos("call"))
    )


# ---- BUILD --------------------------------------------------------------------------------


def test_build_plants_setstate_then_second_build(ctx):
    """pickle's BUILD calls inst.__setstate__ if the *instance dict* has one:
    plant it with a first BUILD, trigger it with a second."""
    a = Asm(4).stack_global("sklearn.linear_model", "LogisticRegression").op("EMPTY_TUPLE").newobj()
    a.op("EMPTY_DICT").str("__setstate__").stack_global("sklearn.datasets._base", "load_iris")
    a.op("SETITEM").build()
    a.str(ctx.cmd).build(label="second").stop()
    expect(
        UnsafeModelError,
        a.bytes(),
        "a second BUILD on the same object",
        where("BUILD", a.pos("second")),
        marker=ctx.marker,
    )


def test_build_plants_a_forbidden_setstate(ctx):
    a = Asm(4).stack_global("sklearn.linear_model", "LogisticRegression").op("EMPTY_TUPLE").newobj()
    a.op("EMPTY_DICT").str("__setstate__").stack_global("posix", "system", label="first")
    a.op("SETITEM").build().str(ctx.cmd).build().stop()
    expect(
        UnsafeModelError,
        a.bytes(),
        "'posix.system'",
        where("STACK_GLOBAL", a.pos("first")),
        marker=ctx.marker,
    )


def test_build_slotstate_on_a_shared_class_is_unsafe():
    """BUILD (None, {'__reduce__': ...}) on a class object sets attributes on
    the class itself in CPython (setattr through slotstate) - a known attack
    on every later pickle of that class.  Refusing it is not enough: it is a
    hostile construct, not a corrupt file."""
    a = Asm(4).stack_global("sklearn.linear_model", "LogisticRegression").memoize()
    a.none().op("EMPTY_DICT").str("__reduce__").str("x").op("SETITEM").tuple_n(2)
    a.build(label="build").stop()
    expect(UnsafeModelError, a.bytes(), "BUILD", where("BUILD", a.pos("build")))


def test_build_slotstate_on_a_record_stays_inert(ctx):
    a = Asm(4).stack_global("sklearn.linear_model", "LogisticRegression").op("EMPTY_TUPLE").newobj()
    a.none().op("EMPTY_DICT").str("__class__").stack_global("sklearn.datasets._base", "Bunch")
    a.op("SETITEM").tuple_n(2).build().stop()
    record = _core.unpickle(a.bytes())
    assert record.state[0] is None and isinstance(record.state[1]["__class__"], _core.Global)
    expect(
        ModelFormatError, a.bytes(), "expected its state to be a dict", raw=False, marker=ctx.marker
    )


def test_build_on_a_plain_container_is_corrupt():
    a = (
        Asm(4)
        .op("EMPTY_DICT")
        .memoize()
        .none()
        .op("EMPTY_DICT")
        .tuple_n(2)
        .build(label="build")
        .stop()
    )
    expect(ModelFormatError, a.bytes(), "BUILD on a dict", where("BUILD", a.pos("build")))


# =============================================================================================
# 2. Opcodes a model file never needs
# =============================================================================================


def _refused_opcode(opname: str) -> Asm:
    """A pickle whose opcode `opname` (labelled "op") must be refused."""
    a = Asm(5)
    if opname == "INST":
        a.op("INST", b"posix\nsystem\n", label="op")
    elif opname == "OBJ":
        # an allowed class, so that OBJ itself is what is refused
        a.mark().stack_global("sklearn.base", "BaseEstimator").op("OBJ", label="op")
    elif opname == "PERSID":
        a.op("PERSID", b"touch MARKER\n", label="op")
    elif opname == "BINPERSID":
        a.str("touch MARKER").op("BINPERSID", label="op")
    elif opname == "EXT1":
        a.op("EXT1", b"\x01", label="op")
    elif opname == "EXT2":
        a.op("EXT2", b"\x01\x02", label="op")
    elif opname == "EXT4":
        a.op("EXT4", b"\x01\x02\x03\x04", label="op")
    elif opname == "NEXT_BUFFER":
        a.op("NEXT_BUFFER", label="op")
    elif opname == "READONLY_BUFFER":
        a.op("BYTEARRAY8", struct.pack("<Q", 1) + b"x").op("READONLY_BUFFER", label="op")
    return a.stop()


REFUSED_OPCODES = {
    "INST": "INST/OBJ are refused: they call a class directly",
    "OBJ": "INST/OBJ are refused: they call a class directly",
    "PERSID": "persistent ids are refused",
    "BINPERSID": "persistent ids are refused",
    "EXT1": "extension-registry opcodes are refused",
    "EXT2": "extension-registry opcodes are refused",
    "EXT4": "extension-registry opcodes are refused",
    "NEXT_BUFFER": "out-of-band buffers are refused",
    "READONLY_BUFFER": "out-of-band buffers are refused",
}


@pytest.mark.parametrize("opname", sorted(REFUSED_OPCODES))
def test_refused_opcode(opname):
    a = _refused_opcode(opname)
    expect(UnsafeModelError, a.bytes(), REFUSED_OPCODES[opname], where(opname, a.pos("op")))


def test_obj_over_a_forbidden_class_stops_at_the_global():
    a = Asm(2).mark().global_("posix", "system", label="first").str("touch MARKER").op("OBJ").stop()
    expect(
        UnsafeModelError,
        a.bytes(),
        "global 'posix.system' is refused",
        where("GLOBAL", a.pos("first")),
    )


def test_future_protocols_and_python2_strings():
    expect(UnsupportedModelError, b"\x80\x06N.", "pickle protocol 6", where("PROTO", 0))
    expect(
        UnsupportedModelError,
        b"\x80\x02S'x'\n.",
        "STRING (a Python 2 str) is not supported",
        where("STRING", 2),
    )
    with pytest.raises(UnsupportedModelError, match=r"STRING .*\(at STRING, byte 0\)"):
        _core.unpickle(b"S'x'\n.")
    # a first byte that no pickle starts with
    with pytest.raises(
        ModelFormatError, match=r"not a pickle: first byte is 0xff.*\(at PROTO, byte 0\)"
    ):
        _core.unpickle(b"\xffN.")


def test_invalid_opcode():
    expect(ModelFormatError, b"\x80\x04N\xff.", "invalid opcode 0xff", "byte 3")


# =============================================================================================
# 3. The memo
# =============================================================================================


def test_get_of_a_never_stored_index():
    a = Asm(4).none().binput(0).op("POP").binget(7, label="get").stop()
    expect(
        ModelFormatError, a.bytes(), "memo key 7 was never stored", where("BINGET", a.pos("get"))
    )
    a = Asm(4).none().op("LONG_BINGET", struct.pack("<I", 2**32 - 1), label="get").stop()
    expect(
        ModelFormatError,
        a.bytes(),
        f"memo key {2**32 - 1} was never stored",
        where("LONG_BINGET", a.pos("get")),
    )
    a = Asm(4).op("GET", b"3\n", label="get").stop()
    expect(ModelFormatError, a.bytes(), "memo key 3 was never stored", where("GET", a.pos("get")))
    a = Asm(4).none().op("GET", b"-1\n", label="get").stop()
    expect(ModelFormatError, a.bytes(), "invalid memo index text", where("GET", a.pos("get")))


@pytest.mark.parametrize(
    "opname,arg,index",
    [
        ("LONG_BINPUT", struct.pack("<I", 2**31), 2**31),
        ("LONG_BINPUT", struct.pack("<I", 2**32 - 1), 2**32 - 1),
        ("LONG_BINPUT", struct.pack("<I", 70000), 70000),  # past the gap a PUT may leave
        ("PUT", b"999999999\n", 999999999),
    ],
)
def test_put_at_a_huge_index(opname, arg, index):
    a = Asm(4).none().op(opname, arg, label="put").stop()
    expect(
        ModelFormatError, a.bytes(), f"memo index {index} out of range", where(opname, a.pos("put"))
    )


def test_put_memoize_confusion_reads_what_cpython_reads():
    """MEMOIZE stores at len(memo) - the number of entries - not at one past
    the highest index: after PUT 1, MEMOIZE overwrites index 1 in CPython.  A
    loader that numbers differently reads a different object from the same
    file than every other pickle tool does (the scanner/loader confusion)."""
    a = Asm(4).str("x").binput(1).op("POP").str("y").memoize().op("POP").binget(1).stop()
    assert pickle.loads(a.bytes()) == "y"
    try:
        value = _core.unpickle(a.bytes())
    except mlfast.MlfastError:
        return  # refusing the mix is fine too
    assert value == "y", f"mlfast read {value!r} where CPython reads 'y'"


def test_memoize_after_sparse_put_matches_cpython():
    a = Asm(4).str("x").binput(5).op("POP").str("y").memoize().op("POP").binget(1).stop()
    assert pickle.loads(a.bytes()) == "y"
    try:
        value = _core.unpickle(a.bytes())
    except mlfast.MlfastError:
        return
    assert value == "y"


def test_memo_cannot_outgrow_max_memory():
    """A PUT may land up to 65536 past the end of the memo: 256 such PUTs
    (about 1.3 KB) grow the memo to 2**24 slots, 128 MiB, whatever max_memory
    says."""
    a = Asm(4).none()
    index = 0
    while index + 65536 < 2**24:
        index += 65536
        a.op("LONG_BINPUT", struct.pack("<I", index))
    a.stop()
    data = a.bytes()
    assert len(data) < 2000
    max_memory = 1 << 20
    tracemalloc.start()
    try:
        try:
            _core.unpickle(data, max_memory=max_memory)
        except UnsupportedModelError:
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * max_memory, (
        f"a {len(data)}-byte file made the VM allocate {peak >> 20} MiB "
        f"under max_memory={max_memory}"
    )


def test_unfinished_object_memoized_too_often():
    a = Asm(4).reconstruct_head()
    for i in range(5):
        a.binput(i, label=f"put{i}")
    a.stop()
    expect(
        ModelFormatError, a.bytes(), "memoized more than 4 times", where("BINPUT", a.pos("put4"))
    )


def test_nested_pickle_cannot_read_the_outer_memo(joblib_bytes):
    """The nested stream of an object array runs with its own memo."""
    start, end = nested_stream(joblib_bytes)
    inner = Asm(4).binget(2, label="get").stop()
    data = joblib_bytes[:start] + inner.bytes() + joblib_bytes[end:]
    expect(
        ModelFormatError,
        data,
        "memo key 2 was never stored",
        where("BINGET", start + inner.pos("get")),
    )


# =============================================================================================
# 4. Lying lengths
# =============================================================================================

LYING = [
    ("BINUNICODE", struct.pack("<I", 2**32 - 1) + b"abc", 2**32 - 1),
    ("BINBYTES", struct.pack("<I", 2**31) + b"abc", 2**31),
    ("SHORT_BINBYTES", b"\xff" + b"abc", 255),
    ("SHORT_BINUNICODE", b"\xff" + b"abc", 255),
    ("BINUNICODE8", struct.pack("<Q", 2**63) + b"abc", 2**63),
    ("BINBYTES8", struct.pack("<Q", 2**63) + b"abc", 2**63),
    ("BINBYTES8", struct.pack("<Q", 2**64 - 1) + b"abc", 2**64 - 1),
    ("BYTEARRAY8", struct.pack("<Q", 2**63 + 5) + b"abc", 2**63 + 5),
    ("FRAME", struct.pack("<Q", 2**63) + b"N.", 2**63),
    ("FRAME", struct.pack("<Q", 100) + b"N.", 100),
]


@pytest.mark.parametrize("opname,arg,claimed", LYING, ids=[f"{o}-{c}" for o, _, c in LYING])
def test_lying_length(opname, arg, claimed):
    a = Asm(5).op(opname, arg, label="op")
    left = len(arg) - (
        8
        if opname in ("BINUNICODE8", "BINBYTES8", "BYTEARRAY8", "FRAME")
        else 4
        if opname in ("BINUNICODE", "BINBYTES")
        else 1
    )
    expect(
        ModelFormatError,
        a.bytes(),
        f"length {claimed} is more than the {left} bytes left",
        where(opname, a.pos("op")),
    )


def test_long4_over_the_cap_is_unsupported():
    payload = (2**2000).to_bytes(300, "little")
    a = Asm(4).op("LONG4", struct.pack("<i", 300) + payload, label="op").stop()
    expect(
        UnsupportedModelError,
        a.bytes(),
        "integer of 300 bytes (at most 256)",
        where("LONG4", a.pos("op")),
    )


def test_long4_claiming_more_bytes_than_remain_is_corrupt():
    """A LONG4 that claims 2**31-1 bytes in a 12-byte file is a lie (corrupt),
    like any other length field that runs past the end of the data."""
    a = Asm(4).op("LONG4", struct.pack("<i", 2**31 - 1) + b"abcd", label="op").stop()
    expect(ModelFormatError, a.bytes(), where("LONG4", a.pos("op")))


def test_long4_negative_length():
    a = Asm(4).op("LONG4", struct.pack("<i", -1), label="op").stop()
    expect(ModelFormatError, a.bytes(), "negative LONG4 byte count", where("LONG4", a.pos("op")))


def test_text_lines_must_end():
    a = Asm(2).op("GLOBAL", b"posix\n" + b"system" * 1000, label="op")
    expect(ModelFormatError, a.bytes(), "line not terminated", where("GLOBAL", a.pos("op")))
    a = Asm(2).op("INT", b"1" * 5000 + b"\n", label="op").stop()
    expect(
        ModelFormatError,
        a.bytes(),
        "line not terminated within 4096 bytes",
        where("INT", a.pos("op")),
    )
    # beyond 64 bits INT is read as pickle reads it, as an arbitrary integer
    a = Asm(2).op("INT", b"99999999999999999999999\n", label="op").stop()
    assert _core.unpickle(a.bytes()) == pickle.loads(a.bytes()) == 99999999999999999999999


def test_invalid_utf8_text():
    a = Asm(4).op("SHORT_BINUNICODE", b"\x02\xff\xfe", label="op").stop()
    expect(
        ModelFormatError, a.bytes(), "invalid string data", where("SHORT_BINUNICODE", a.pos("op"))
    )
    a = Asm(2).op("SHORT_BINSTRING", b"\x01\xe9", label="op").stop()
    expect(
        ModelFormatError, a.bytes(), "invalid string data", where("SHORT_BINSTRING", a.pos("op"))
    )


# =============================================================================================
# 5. The stack
# =============================================================================================


def test_stack_underflow():
    expect(ModelFormatError, b"\x80\x04a.", "stack underflow", where("APPEND", 2))
    # APPEND may not reach the list below a MARK
    a = Asm(4).op("EMPTY_LIST").mark().none().op("APPEND", label="op").stop()
    expect(ModelFormatError, a.bytes(), "stack underflow", where("APPEND", a.pos("op")))
    a = Asm(4).none().none().mark().none().op("TUPLE2", label="op").stop()
    expect(ModelFormatError, a.bytes(), "TUPLE2 needs 2 items", where("TUPLE2", a.pos("op")))
    a = (
        Asm(4)
        .stack_global("sklearn.base", "BaseEstimator")
        .mark()
        .op("EMPTY_TUPLE")
        .reduce(label="op")
        .stop()
    )
    expect(ModelFormatError, a.bytes(), "nothing above the last MARK", where("REDUCE", a.pos("op")))
    a = Asm(4).none().op("POP_MARK", label="op").stop()
    expect(ModelFormatError, a.bytes(), "no MARK to pop to", where("POP_MARK", a.pos("op")))
    a = Asm(4).op("POP", label="op").stop()
    expect(ModelFormatError, a.bytes(), "stack underflow", where("POP", a.pos("op")))
    a = Asm(4).op("EMPTY_DICT").mark().none().op("SETITEMS", label="op").stop()
    expect(ModelFormatError, a.bytes(), "odd number of items", where("SETITEMS", a.pos("op")))
    a = Asm(4).mark().none().op("DUP").op("ADDITEMS", label="op").stop()
    expect(ModelFormatError, a.bytes(), "no set to add to", where("ADDITEMS", a.pos("op")))


def test_pop_below_a_mark_pops_the_mark_like_cpython():
    """POP with nothing above the MARK discards the MARK (CPython does the
    same); the item below is then an ordinary item."""
    a = Asm(4).none().mark().op("POP").stop()
    assert pickle.loads(a.bytes()) is None
    assert _core.unpickle(a.bytes()) is None
    a = Asm(4).none().mark().op("POP").op("POP").op("POP", label="op").stop()
    expect(ModelFormatError, a.bytes(), "stack underflow", where("POP", a.pos("op")))


def test_stop_with_extra_items_or_marks():
    a = Asm(4).none().none().stop(label="stop")
    expect(
        ModelFormatError, a.bytes(), "STOP with 2 items and 0 marks", where("STOP", a.pos("stop"))
    )
    a = Asm(4).mark().none().stop(label="stop")
    expect(
        ModelFormatError, a.bytes(), "STOP with 1 items and 1 marks", where("STOP", a.pos("stop"))
    )
    a = Asm(4).stop(label="stop")
    expect(ModelFormatError, a.bytes(), "STOP with 0 items", where("STOP", a.pos("stop")))
    expect(ModelFormatError, b"\x80\x04N", "the pickle ends before STOP", "byte 3")
    expect(ModelFormatError, b"", "not a pickle", raw=False)
    with pytest.raises(ModelFormatError, match="empty input"):
        _core.unpickle(b"")


# =============================================================================================
# 6. Deep nesting: fail cleanly or succeed, never crash (run in a subprocess)
# =============================================================================================

DEEP = 1_000_000


def deep_lists(n=DEEP):
    return b"\x80\x04" + b"]" * n + b"a" * (n - 1) + b"."


def deep_tuples(n=DEEP):
    return b"\x80\x04N" + b"\x85" * n + b"."


def deep_dicts(n=DEEP):
    # string keys: non-string keys are capped at 65536 a file
    return b"\x80\x04" + b"}\x8c\x01k" * n + b"N" + b"s" * n + b"."


def deep_frozensets(n=DEEP):
    # refused at the 65537th element (the non-string key cap), cleanly
    return b"\x80\x04N" + b"q\x000(h\x00\x91" * n + b"."


def deep_records(n=250_000):
    head = Asm(4).stack_global("sklearn.base", "BaseEstimator").binput(0).op("POP").none().bytes()
    return head + b"q\x010h\x00h\x01\x85R" * n + b"."


def deep_sets_of_tuples(n=DEEP):
    # tuple -> frozenset -> tuple ...: hashing is cached per frozenset
    return b"\x80\x04K\x01" + b"\x85q\x000(h\x00\x91" * n + b"."


def deep_object_arrays(n=100_000):
    a = Asm(4)
    a.stack_global("numpy._core.multiarray", "_reconstruct").binput(0).op("POP")
    a.stack_global("numpy", "ndarray").binput(1).op("POP")
    a.dtype("O8", "|").binput(2).op("POP")
    a.int(1).tuple_n(1).binput(3).op("POP")
    a.none()
    level = Asm(None)
    level.binput(4).op("POP")
    level.binget(0).binget(1).int(0).tuple_n(1).bytes_(b"b").tuple_n(3).reduce()
    level.mark().int(1).binget(3).binget(2).false().op("EMPTY_LIST").binget(4).op(
        "APPEND"
    ).tuple().build()
    return a.bytes() + level.bytes() * n + b"."


DEEP_CASES = {
    "lists": (deep_lists, None),
    "tuples": (deep_tuples, None),
    "dicts": (deep_dicts, None),
    "frozensets": (deep_frozensets, ("UnsupportedModelError", "too many non-string keys")),
    "records": (deep_records, None),
    "tuple-frozenset": (deep_sets_of_tuples, ("UnsupportedModelError", "too many non-string keys")),
    "object-arrays": (deep_object_arrays, None),
    "marks": (
        lambda: b"\x80\x04" + b"(" * DEEP + b".",
        ("UnsupportedModelError", "more than 1024 nested MARKs", "(at MARK, byte 1026)"),
    ),
}

DEEP_CHILD = textwrap.dedent("""
    import gc, sys
    import numpy as np
    import mlfast
    from mlfast import _core
    data = open(sys.argv[1], 'rb').read()
    for fn in (_core.unpickle, mlfast.loads):
        try:
            value = fn(data)
            print("LOADED", type(value).__name__, flush=True)
        except mlfast.MlfastError as e:
            print("REFUSED", type(e).__name__, str(e)[:300], flush=True)
        value = None
        gc.collect()
    # the interpreter still works
    model = mlfast.load(mlfast.demo_model_path())
    assert model.predict(np.array([[5.1, 3.5, 1.4, 0.2]])).shape == (1,)
    print("ALIVE", flush=True)
""")


@pytest.fixture(scope="module")
def deep_results(tmp_path_factory):
    """All deep cases run at once, in parallel subprocesses."""
    d = tmp_path_factory.mktemp("deep")
    procs = {}
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for name, (make, _) in DEEP_CASES.items():
        path = d / f"{name}.pkl"
        path.write_bytes(make())
        procs[name] = subprocess.Popen(
            [sys.executable, "-c", DEEP_CHILD, str(path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(ROOT),
            stdin=subprocess.DEVNULL,
        )
    results = {}
    deadline = time.monotonic() + 60
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += "\nTIMEOUT"
        results[name] = (proc.returncode, out, err)
    return results


@pytest.mark.parametrize("name", list(DEEP_CASES))
def test_deep_nesting_never_crashes(name, deep_results):
    rc, out, err = deep_results[name]
    assert rc == 0 and "ALIVE" in out, (
        f"deep {name}: the interpreter died (exit code {rc}; {-rc if rc and rc < 0 else ''} is the signal)\n"
        f"stdout: {out[-1000:]}\nstderr: {err[-2000:]}"
    )
    lines = [line for line in out.splitlines() if line.startswith(("LOADED", "REFUSED"))]
    assert len(lines) == 2
    expected = DEEP_CASES[name][1]
    if expected is not None:
        for line in lines:
            assert line.startswith("REFUSED " + expected[0]), line
            for fragment in expected[1:]:
                assert fragment in line, line
    # loads never hands back anything but an estimator
    assert lines[1].startswith("REFUSED"), lines[1]


# =============================================================================================
# 7. numpy arrays, dtypes and scalars
# =============================================================================================


def test_reconstruct_huge_shape():
    a = ndarray_pickle((2**40, 2**40), "f8", b"")
    expect(ModelFormatError, a.bytes(), "array shape overflows", where("BUILD", a.pos("build")))
    a = ndarray_pickle((2**40,), "f8", b"")
    expect(
        ModelFormatError,
        a.bytes(),
        f"array data is 0 bytes, shape and dtype need {2**43}",
        where("BUILD", a.pos("build")),
    )
    a = ndarray_pickle((2**49,), "f8", b"")
    expect(
        ModelFormatError,
        a.bytes(),
        "array dimension 0 is out of range",
        where("BUILD", a.pos("build")),
    )
    a = ndarray_pickle((2**100,), "f8", b"")
    expect(
        ModelFormatError,
        a.bytes(),
        "array dimension 0 is out of range",
        where("BUILD", a.pos("build")),
    )


def test_reconstruct_negative_and_non_integer_dims():
    a = ndarray_pickle((3, -1), "f8", b"")
    expect(
        ModelFormatError,
        a.bytes(),
        "array dimension 1 is out of range",
        where("BUILD", a.pos("build")),
    )
    a = ndarray_pickle((3, "4"), "f8", b"")
    expect(
        ModelFormatError, a.bytes(), "array dimension 1 is a str", where("BUILD", a.pos("build"))
    )
    a = Asm(4).reconstruct_head()
    a.mark().int(1).value([3]).dtype("f8").false().bytes_(b"").tuple().build(label="build").stop()
    expect(ModelFormatError, a.bytes(), "array shape is a list", where("BUILD", a.pos("build")))


def test_reconstruct_too_many_dims():
    a = ndarray_pickle((1,) * 33, "f8", b"\0" * 8)
    expect(
        UnsupportedModelError,
        a.bytes(),
        "array with 33 dimensions (at most 32)",
        where("BUILD", a.pos("build")),
    )
    a = ndarray_pickle((1,) * 32, "f8", b"\0" * 8)
    assert _core.unpickle(a.bytes()).ndim == 32


@pytest.mark.parametrize(
    "shape,spec,nbytes",
    [((2, 3), "f8", 47), ((2, 3), "f8", 49), ((0,), "i4", 4), ((5,), "U3", 59), ((1,), "V8", 0)],
)
def test_data_length_must_match_shape_and_itemsize(shape, spec, nbytes):
    need = int(np.prod(shape)) * np.dtype(spec).itemsize
    a = ndarray_pickle(shape, spec, b"\1" * nbytes)
    expect(
        ModelFormatError,
        a.bytes(),
        f"array data is {nbytes} bytes, shape and dtype need {need}",
        where("BUILD", a.pos("build")),
    )
    a = frombuffer_pickle(b"\1" * nbytes, spec, shape)
    expect(
        ModelFormatError,
        a.bytes(),
        f"array data is {nbytes} bytes, shape and dtype need {need}",
        where("REDUCE", a.pos("call")),
    )


def test_object_array_with_an_overflowing_empty_shape():
    """A zero first dimension must not hide an overflowing product of the
    other sizes (numpy refuses such a shape too), whatever the dtype."""
    a = ndarray_pickle((0, 2**48, 2**48), "f8", b"")
    expect(ModelFormatError, a.bytes(), "shape overflows", where("BUILD", a.pos("build")))
    a = ndarray_pickle((0, 2**48, 2**48), "O8", [])
    expect(ModelFormatError, a.bytes(), where("BUILD", a.pos("build")))


def test_fortran_flag_that_is_an_array():
    """The is_fortran item of an ndarray state is tested for truth; an array
    there (built earlier in the file) has no truth value."""
    a = Asm(5).reconstruct_head()
    a.mark().int(1).value((0,)).dtype("f8")
    a.stack_global("numpy._core.numeric", "_frombuffer").mark().bytes_(b"\0" * 16).dtype("f8")
    a.value((2,)).str("C").tuple().reduce()
    a.bytes_(b"").tuple().build(label="build").stop()
    expect(ModelFormatError, a.bytes(), where("BUILD", a.pos("build")))


def test_object_array_data_must_be_a_matching_list():
    a = ndarray_pickle((3,), "O8", ["a", "b"])
    expect(
        ModelFormatError,
        a.bytes(),
        "object array data must be a list of 3 items",
        where("BUILD", a.pos("build")),
    )
    a = ndarray_pickle((1,), "O8", b"\0" * 8)
    expect(
        ModelFormatError,
        a.bytes(),
        "object array data must be a list of 1 items",
        where("BUILD", a.pos("build")),
    )


def test_frombuffer_of_object_dtype_is_unsafe():
    """Raw bytes read as PyObject pointers would be an arbitrary-address read."""
    for spec in ("O8", "O4"):
        a = frombuffer_pickle(struct.pack("<Q", 0x4141414141414141), spec, (1,))
        expect(
            UnsafeModelError,
            a.bytes(),
            "_frombuffer of an object dtype would read raw pointers",
            where("REDUCE", a.pos("call")),
        )


def test_frombuffer_arguments():
    a = frombuffer_pickle(b"\0" * 8, "f8", (1,), order="K")
    expect(
        ModelFormatError,
        a.bytes(),
        "_frombuffer order must be 'C' or 'F'",
        where("REDUCE", a.pos("call")),
    )
    a = Asm(5).stack_global("numpy._core.numeric", "_frombuffer").mark().str("x" * 8).dtype("f8")
    a.value((1,)).str("C").tuple().reduce(label="call").stop()
    expect(
        ModelFormatError,
        a.bytes(),
        "_frombuffer buffer is a str, expected bytes",
        where("REDUCE", a.pos("call")),
    )


def test_reconstruct_of_something_else_than_ndarray():
    a = Asm(4).stack_global("numpy._core.multiarray", "_reconstruct")
    a.stack_global("numpy", "dtype").int(0).tuple_n(1).bytes_(b"b").tuple_n(3).reduce(
        label="call"
    ).stop()
    expect(
        ModelFormatError,
        a.bytes(),
        "_reconstruct expects (numpy.ndarray, shape, typecode)",
        where("REDUCE", a.pos("call")),
    )
    a = Asm(4).stack_global("numpy._core.multiarray", "_reconstruct")
    a.stack_global("posix", "system", label="first").int(0).tuple_n(1).bytes_(b"b").tuple_n(
        3
    ).reduce().stop()
    expect(UnsafeModelError, a.bytes(), "'posix.system'", where("STACK_GLOBAL", a.pos("first")))


def dtype_call(spec: str) -> Asm:
    return (
        Asm(4)
        .stack_global("numpy", "dtype")
        .str(spec)
        .false()
        .true()
        .tuple_n(3)
        .reduce(label="call")
        .stop()
    )


@pytest.mark.parametrize(
    "spec",
    [
        "M8",
        "m8",
        "M8[ns]",
        "O",
        "V999999999",
        "<f8",
        "f8 ",
        "U",
        "f",
        "i8,i8",
        "(2,)f8",
        "a8",
        "?1",
        "S-1",
        "O8[x]",
    ],
)
def test_dtype_string_outside_the_allowed_set(spec):
    a = dtype_call(spec)
    expect(
        UnsupportedModelError,
        a.bytes(),
        f"numpy dtype '{spec}' is not supported",
        where("REDUCE", a.pos("call")),
    )


@pytest.mark.parametrize("spec", ["i9", "O16", "u16", "b3"])
def test_dtype_string_numpy_does_not_know(spec):
    a = dtype_call(spec)
    expect(ModelFormatError, a.bytes(), "invalid numpy dtype", where("REDUCE", a.pos("call")))


def test_dtype_string_with_a_lone_surrogate():
    """BINUNICODE is decoded with surrogatepass, so a type string can hold a
    lone surrogate; it must be refused as bad model data, not leak a
    UnicodeEncodeError."""
    a = dtype_call("f\ud8008")
    for fn in (mlfast.loads, _core.unpickle):
        with pytest.raises(Exception) as info:
            fn(a.bytes())
        assert type(info.value) in (ModelFormatError, UnsupportedModelError), repr(info.value)
        assert where("REDUCE", a.pos("call")) in str(info.value)


def test_dtype_state():
    def with_state(*items):
        a = Asm(4).stack_global("numpy", "dtype").str("f8").false().true().tuple_n(3).reduce()
        a.value(tuple(items)).build(label="build").stop()
        return a

    a = with_state(5, "<", None, None, None, -1, -1, 0)
    expect(
        UnsupportedModelError,
        a.bytes(),
        "numpy dtype state version 5",
        where("BUILD", a.pos("build")),
    )
    a = with_state(4, "<", None, None, None, -1, -1, 0, "meta")
    expect(UnsupportedModelError, a.bytes(), "metadata", where("BUILD", a.pos("build")))
    a = with_state(3, "<", (1, 2), None, None, -1, -1, 0)
    expect(UnsupportedModelError, a.bytes(), "subarray", where("BUILD", a.pos("build")))
    a = with_state(3, "x", None, None, None, -1, -1, 0)
    expect(ModelFormatError, a.bytes(), "byte order must be one of", where("BUILD", a.pos("build")))
    a = with_state(3, "<", None, None)
    expect(
        ModelFormatError,
        a.bytes(),
        "numpy dtype state must be a tuple of 8 or 9 items",
        where("BUILD", a.pos("build")),
    )
    a = with_state(3, "<", None, ("a",), {}, 8, 1, 0)
    expect(
        ModelFormatError,
        a.bytes(),
        "fields given for a non-void dtype",
        where("BUILD", a.pos("build")),
    )


def structured(fields, elsize, names=None, base=None) -> Asm:
    a = Asm(4)
    a.dtype(base or f"V{elsize}", "|", names=names or tuple(fields), fields=fields, elsize=elsize)
    return a.stop()


def test_structured_dtype_field_out_of_range():
    for fields in (
        {"a": ("f8", 0), "b": ("i4", 6)},
        {"a": ("f8", 1)},
        {"a": ("f8", -1)},
        {"a": ("f8", 2**70)},
    ):
        a = structured(fields, 8)
        msg = expect(ModelFormatError, a.bytes(), "lies outside its 8-byte item", "(at BUILD, byte")
        assert msg.endswith(f"byte {len(a.buf) - 2})")  # the outer BUILD, just before STOP


def test_structured_dtype_with_object_or_nested_fields():
    a = structured({"a": ("f8", 0), "b": ("O8", 8)}, 16)
    expect(UnsupportedModelError, a.bytes(), "structured dtype field 'b' holds objects or nests")


def test_structured_dtype_item_size():
    a = structured({"a": ("f8", 0)}, 16, base="V8")
    expect(
        ModelFormatError,
        a.bytes(),
        "structured dtype item size 16 differs from its type string's 8",
    )
    a = structured({"a": ("f8", 0)}, 2_000_000)
    expect(ModelFormatError, a.bytes(), "structured dtype item size 2000000 out of range")


def test_structured_dtype_field_listing():
    a = structured({"a": ("f8", 0)}, 8, names=("a", "zz"))
    expect(ModelFormatError, a.bytes(), "structured dtype field 'zz' has no entry")
    a = structured({"a": ("f8", 0)}, 8, names=("a", "a"))
    expect(ModelFormatError, a.bytes(), "invalid structured dtype")


def test_structured_dtype_overlapping_fields_read_like_numpy():
    """numpy allows overlapping plain fields; the VM gives numpy's answer,
    byte order conversion included, and nothing is read out of bounds."""
    a = Asm(4).reconstruct_head()
    a.mark().int(1).value((2,))
    a.dtype(
        "V8", "|", names=("a", "b"), fields={"a": ("f8", 0, ">"), "b": ("i4", 2, ">")}, elsize=8
    )
    a.false().bytes_(bytes(range(16))).tuple().build().stop()
    got = _core.unpickle(a.bytes())
    want = pickle.loads(a.bytes())
    assert got.dtype.names == want.dtype.names
    np.testing.assert_array_equal(got["a"], want["a"])
    np.testing.assert_array_equal(got["b"], want["b"])


def test_numpy_scalars():
    def scalar(spec, data):
        a = Asm(4).stack_global("numpy._core.multiarray", "scalar").dtype(spec).value(data)
        return a.tuple_n(2).reduce(label="call").stop()

    a = scalar("f8", b"\0" * 7)
    expect(
        ModelFormatError,
        a.bytes(),
        "numpy scalar data must be 8 bytes",
        where("REDUCE", a.pos("call")),
    )
    a = scalar("V8", b"\0" * 8)
    expect(
        UnsupportedModelError,
        a.bytes(),
        "numpy void scalars are not supported",
        where("REDUCE", a.pos("call")),
    )
    a = scalar("U1", b"\xff\xff\xff\xff")  # not a code point
    expect(ModelFormatError, a.bytes(), "invalid numpy scalar", where("REDUCE", a.pos("call")))
    assert _core.unpickle(scalar("f8", struct.pack("<d", 1.5)).bytes()) == 1.5


# =============================================================================================
# 8. joblib
# =============================================================================================


def wrapper_file(
    shape=(2,),
    spec="f8",
    data=None,
    pad=None,
    alignment=16,
    order="C",
    subclass=("numpy", "ndarray"),
    drop=(),
) -> Asm:
    a = Asm(4).stack_global("joblib.numpy_pickle", "NumpyArrayWrapper").op("EMPTY_TUPLE").newobj()
    a.op("EMPTY_DICT").mark()
    state = [
        ("subclass", None),
        ("shape", tuple(shape)),
        ("order", order),
        ("dtype", None),
        ("allow_mmap", True),
        ("numpy_array_alignment_bytes", alignment),
    ]
    for key, value in state:
        if key in drop:
            continue
        a.str(key)
        if key == "subclass":
            a.stack_global(*subclass)
        elif key == "dtype":
            a.dtype(spec)
        else:
            a.value(value)
    a.op("SETITEMS").build(label="build")
    if data is None:
        data = np.arange(int(np.prod(shape)), dtype=spec).tobytes()
    if alignment is not None:
        if pad is None:
            pad = alignment - (a.here() + 1) % alignment
        a.raw(bytes([pad]) + b"\xff" * pad)
    return a.raw(data).stop()


def test_joblib_wrapper_reads_inline_data():
    arr = _core.unpickle(wrapper_file().bytes())
    np.testing.assert_array_equal(arr, [0.0, 1.0])


def test_joblib_wrapper_inline_data_truncated():
    a = wrapper_file(shape=(4,), data=b"\0" * 31)
    a.buf = a.buf[:-1]  # no STOP either
    expect(
        ModelFormatError,
        a.bytes(),
        "joblib array of 4 items of 8 bytes is larger than the 31 bytes left",
        where("BUILD", a.pos("build")),
    )
    a = wrapper_file(shape=(2**30, 2**10), data=b"")
    expect(ModelFormatError, a.bytes(), "is larger than the", where("BUILD", a.pos("build")))
    a = wrapper_file(shape=(2**40, 2**20), data=b"")
    expect(ModelFormatError, a.bytes(), "shape overflows", where("BUILD", a.pos("build")))


def test_joblib_padding_byte_lies():
    a = wrapper_file(pad=200)
    expect(
        ModelFormatError,
        a.bytes(),
        "joblib padding of 200 bytes exceeds the alignment 16",
        where("BUILD", a.pos("build")),
    )
    a = wrapper_file(data=b"")
    a.buf = a.buf[: a.pos("build") + 1] + bytes([16]) + b"\xff" * 3
    expect(
        ModelFormatError,
        a.bytes(),
        "truncated: needs 16 more bytes, 3 left",
        where("BUILD", a.pos("build")),
    )
    a = wrapper_file(alignment=10**6, pad=0)
    expect(
        ModelFormatError,
        a.bytes(),
        "joblib array alignment out of range",
        where("BUILD", a.pos("build")),
    )
    a = wrapper_file(alignment=0, pad=0)
    expect(
        ModelFormatError,
        a.bytes(),
        "joblib array alignment out of range",
        where("BUILD", a.pos("build")),
    )


def test_joblib_padding_off_by_some_in_a_real_file(joblib_bytes):
    """A padding byte that is wrong by a little shifts the array: it must load
    (joblib would too) or be refused as corrupt, never read out of bounds."""
    i = joblib_bytes.index(b"numpy_array_alignment_bytes")
    pad_at = joblib_bytes.index(b"ub", i) + 2
    pad = joblib_bytes[pad_at]
    for wrong in {0, max(pad - 1, 0), min(pad + 1, 16), 16}:
        data = joblib_bytes[:pad_at] + bytes([wrong]) + joblib_bytes[pad_at + 1 :]
        try:
            mlfast.loads(data)
        except mlfast.MlfastError:
            pass


def test_joblib_wrapper_state():
    a = wrapper_file(subclass=("sklearn.datasets._base", "Bunch"))
    expect(
        UnsupportedModelError,
        a.bytes(),
        "subclass other than numpy.ndarray",
        where("BUILD", a.pos("build")),
    )
    a = wrapper_file(drop=("shape",))
    expect(
        ModelFormatError,
        a.bytes(),
        "lacks subclass, shape, order or dtype",
        where("BUILD", a.pos("build")),
    )
    a = wrapper_file(order="K")
    expect(
        ModelFormatError,
        a.bytes(),
        "joblib array order must be 'C' or 'F'",
        where("BUILD", a.pos("build")),
    )


def test_joblib_legacy_ndarray_wrapper_side_file(ctx):
    for cls in ("NDArrayWrapper", "ZNDArrayWrapper"):
        a = Asm(2).global_("joblib.numpy_pickle", cls, label="first").op("EMPTY_TUPLE").newobj()
        a.value(
            {"filename": "../../etc/passwd", "subclass": None, "allow_mmap": False}
        ).build().stop()
        expect(
            UnsafeModelError,
            a.bytes(),
            f"global 'joblib.numpy_pickle.{cls}' is refused",
            "side files",
            where("GLOBAL", a.pos("first")),
            marker=ctx.marker,
        )
    a = (
        Asm(2)
        .global_("sklearn.externals.joblib.numpy_pickle", "NDArrayWrapper", label="first")
        .stop()
    )
    expect(UnsafeModelError, a.bytes(), "side files", where("GLOBAL", a.pos("first")))


def test_malicious_nested_object_array_stream(joblib_bytes, ctx):
    """The nested pickle joblib writes for an object array (here classes_)
    replaced by one that calls os.system: refused under the outer rules."""
    start, end = nested_stream(joblib_bytes)
    for proto in (2, 4, 5):
        evil = pickle.dumps(P.Reduce(os.system, ctx.cmd), protocol=proto)
        op, pos = P.first_global(evil)
        data = joblib_bytes[:start] + evil + joblib_bytes[end:]
        expect(
            UnsafeModelError,
            data,
            "global 'posix.system' is refused",
            where(op, start + pos),
            marker=ctx.marker,
        )
        # and inside a compressed joblib file
        msg = expect(
            UnsafeModelError, zlib.compress(data, 3), "'posix.system'", raw=False, marker=ctx.marker
        )
        assert f"byte {start + pos}" in msg


def test_nested_stream_with_every_code_execution_payload(joblib_bytes, ctx):
    start, end = nested_stream(joblib_bytes)
    for name in P.PAYLOADS:
        p = P.build(name, ctx)
        data = joblib_bytes[:start] + p.data + joblib_bytes[end:]
        expect(UnsafeModelError, data, p.refusal, where(p.op, start + p.offset), marker=ctx.marker)


def test_nested_stream_may_not_hold_a_joblib_wrapper(joblib_bytes):
    start, end = nested_stream(joblib_bytes)
    inner = wrapper_file()
    first = inner.bytes().index(b"\x93")
    data = joblib_bytes[:start] + inner.bytes() + joblib_bytes[end:]
    expect(
        UnsafeModelError,
        data,
        "a joblib array wrapper inside an object array's nested pickle",
        where("STACK_GLOBAL", start + first),
    )


def test_nested_stream_must_hold_the_described_array(joblib_bytes):
    start, end = nested_stream(joblib_bytes)
    for inner in (
        pickle.dumps({"a": 1}, protocol=4),
        pickle.dumps(np.array(["a", "b"], dtype=object), protocol=4),  # 2 items, not 3
        pickle.dumps(np.zeros(3), protocol=4),
    ):  # not object
        data = joblib_bytes[:start] + inner + joblib_bytes[end:]
        expect(
            ModelFormatError,
            data,
            "the nested pickle does not hold the array its wrapper describes",
        )


def test_nested_stream_truncated(joblib_bytes):
    start, end = nested_stream(joblib_bytes)
    inner = pickle.dumps(np.array(["a", "b", "c"], dtype=object), protocol=2)  # no frames
    data = joblib_bytes[:start] + inner[:-1]
    expect(ModelFormatError, data, "the pickle ends before STOP", f"byte {start + len(inner) - 1}")
    data = joblib_bytes[:start] + inner[:-1] + b"\xff"
    expect(ModelFormatError, data, "invalid opcode 0xff", f"byte {start + len(inner) - 1}")


def test_memory_budget_for_arrays():
    big = ndarray_pickle((300_000,), "f8", bytes(2_400_000))
    # the array's bytes are charged when read, before the array is made
    expect(
        UnsupportedModelError,
        big.bytes(),
        "memory budget of 1000000 bytes",
        "(at BINBYTES, byte",
        max_memory=1_000_000,
    )
    assert _core.unpickle(big.bytes(), max_memory=5_000_000).shape == (300_000,)
    a = wrapper_file(shape=(300_000,))
    expect(
        UnsupportedModelError,
        a.bytes(),
        "memory budget",
        where("BUILD", a.pos("build")),
        max_memory=1_000_000,
    )
    text = Asm(4).str("x" * 2_000_000, label="op").stop()
    expect(
        UnsupportedModelError,
        text.bytes(),
        "memory budget",
        where("BINUNICODE", 2),
        max_memory=1_000_000,
    )
    with pytest.raises(ValueError, match="max_memory must be positive"):
        _core.unpickle(b"\x80\x04N.", max_memory=0)


# =============================================================================================
# 9. Dictionary keys
# =============================================================================================


def test_key_with_deep_tuple_nesting():
    a = Asm(4).op("EMPTY_DICT").int(1)
    for _ in range(40):
        a.tuple_n(1)
    a.none().op("SETITEM", label="set").stop()
    expect(ModelFormatError, a.bytes(), "key nested deeper than 32", where("SETITEM", a.pos("set")))


@pytest.mark.parametrize("value,name", [([], "list"), ({}, "dict")])
def test_unhashable_or_unsafe_keys(value, name):
    a = Asm(4).op("EMPTY_DICT").value(value).none().op("SETITEM", label="set").stop()
    expect(
        ModelFormatError,
        a.bytes(),
        f"a {name} cannot be a dictionary key",
        where("SETITEM", a.pos("set")),
    )
    a = Asm(4).op("EMPTY_SET").mark().value(value).op("ADDITEMS", label="add").stop()
    expect(
        ModelFormatError,
        a.bytes(),
        f"a {name} cannot be a dictionary key or set element",
        where("ADDITEMS", a.pos("add")),
    )


def test_key_that_is_an_array():
    a = Asm(5).op("EMPTY_DICT")
    a.raw(frombuffer_pickle(b"\0" * 8, "f8", (1,)).bytes()[2:-1])
    a.none().op("SETITEM", label="set").stop()
    expect(
        ModelFormatError,
        a.bytes(),
        "a numpy.ndarray cannot be a dictionary key",
        where("SETITEM", a.pos("set")),
    )


DAG_KEY_CHILD = textwrap.dedent("""
    import sys, time
    from mlfast import _core, MlfastError
    data = open(sys.argv[1], 'rb').read()
    t = time.monotonic()
    try:
        _core.unpickle(data)
        print("LOADED", time.monotonic() - t, flush=True)
    except MlfastError as e:
        print("REFUSED", type(e).__name__, e, time.monotonic() - t, flush=True)
""")


def test_key_that_is_a_wide_dag_of_shared_tuples_does_not_hang(tmp_path):
    """A tuple key whose items are the same tuple, again and again (DUP / memo
    GET cost two bytes each): 14 levels of 40 references each is 40**14
    leaves to check and hash, from 1.2 KB (5 levels already take 14 s).  The depth cap does not bound
    that; a cap on the work per key must."""
    a = Asm(4).op("EMPTY_DICT").int(1)
    for _ in range(14):
        a.binput(0).op("POP").mark()
        for _ in range(40):
            a.binget(0)
        a.tuple()
    a.none().op("SETITEM").stop()
    path = tmp_path / "dag.pkl"
    path.write_bytes(a.bytes())
    assert len(a.bytes()) < 2000
    start = time.monotonic()
    try:
        r = run_python(DAG_KEY_CHILD.replace("sys.argv[1]", repr(str(path))), timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"a {len(a.bytes())}-byte file kept the VM busy for more than 5 s (dict key check/hash)"
        )
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - start < 5
    assert r.stdout.startswith(("LOADED", "REFUSED"))


def colliding_ints(n: int, base: int = 0):
    """Distinct ints with the same hash: hash(k * (2**61 - 1)) == 0."""
    return [(base + i) * (2**61 - 1) for i in range(n)]


def test_many_colliding_int_keys_finish_quickly():
    assert len({hash(k) for k in colliding_ints(10)}) == 1
    a = Asm(4).mark()
    for d in range(64):
        a.op("EMPTY_DICT").mark()
        for k in colliding_ints(1024, base=d * 1024 + 1):
            a.int(k).none()
        a.op("SETITEMS")
    a.op("LIST").stop()
    t = time.monotonic()
    value = _core.unpickle(a.bytes())
    elapsed = time.monotonic() - t
    assert len(value) == 64 and all(len(d) == 1024 for d in value)
    assert elapsed < 5, f"64 dicts of 1024 colliding keys took {elapsed:.1f} s"


def test_too_many_non_string_keys():
    a = Asm(4).op("EMPTY_DICT").mark()
    for k in colliding_ints(1025, base=1):
        a.int(k).none()
    a.op("SETITEMS", label="set").stop()
    expect(
        UnsupportedModelError,
        a.bytes(),
        "too many non-string keys (at most 1024 in a container, 65536 in a file)",
        where("SETITEMS", a.pos("set")),
    )
    # the same cap for sets
    a = Asm(4).mark()
    for k in colliding_ints(1025, base=1):
        a.int(k)
    a.op("FROZENSET", label="set").stop()
    expect(
        UnsupportedModelError,
        a.bytes(),
        "too many non-string keys",
        where("FROZENSET", a.pos("set")),
    )
    # and per file
    a = Asm(4).mark()
    for d in range(65):
        a.op("EMPTY_DICT").mark()
        for k in range(1024 if d < 64 else 1):
            a.int(k).none()
        a.op("SETITEMS", label=f"set{d}")
    a.op("LIST").stop()
    expect(UnsupportedModelError, a.bytes(), "65536 in a file", where("SETITEMS", a.pos("set64")))


# =============================================================================================
# 10. Compressed files
# =============================================================================================


def zero_bomb(codec: str, size: int) -> bytes:
    zeros = bytes(1 << 20)
    if codec == "zlib":
        c = zlib.compressobj(9)
        parts = [c.compress(zeros) for _ in range(size >> 20)] + [c.flush()]
    elif codec == "gzip":
        c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        parts = [c.compress(zeros) for _ in range(size >> 20)] + [c.flush()]
    elif codec == "bz2":
        import bz2

        c = bz2.BZ2Compressor(9)
        parts = [c.compress(zeros) for _ in range(size >> 20)] + [c.flush()]
    elif codec in ("xz", "lzma"):
        import lzma

        c = lzma.LZMACompressor(
            format=lzma.FORMAT_XZ if codec == "xz" else lzma.FORMAT_ALONE, preset=1
        )
        parts = [c.compress(zeros) for _ in range(size >> 20)] + [c.flush()]
    else:
        import lz4.frame

        c = lz4.frame.LZ4FrameCompressor()
        parts = [c.begin()] + [c.compress(zeros) for _ in range(size >> 20)] + [c.flush()]
    return b"".join(parts)


@pytest.mark.parametrize("codec", ["zlib", "gzip", "bz2", "xz", "lzma", "lz4"])
def test_decompression_bomb_with_a_small_cap(codec):
    bomb = zero_bomb(codec, 64 << 20)
    assert mlfast._loader.codec_of(bomb[:8]) == codec
    cap = 1 << 20
    tracemalloc.start()
    t = time.monotonic()
    try:
        # the output passes the cap, or (xz, lzma) the decoder's dictionary
        # alone would: liblzma's memlimit is the cap too
        expect(
            UnsupportedModelError,
            bomb,
            f"the {codec} stream",
            f"the memory budget of {cap} bytes",
            raw=False,
            max_memory=cap,
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < len(bomb) + 8 * cap, f"peak {peak >> 20} MiB for a {cap >> 20} MiB cap"
    assert time.monotonic() - t < 10


BOMB_CHILD = textwrap.dedent("""
    import resource, sys, time
    import lz4.frame
    import mlfast
    zeros = bytes(256 << 20)
    c = lz4.frame.LZ4FrameCompressor()
    bomb = c.begin() + b"".join(c.compress(zeros) for _ in range(20)) + c.flush()   # 5 GiB of zeros
    del zeros
    t = time.monotonic()
    try:
        mlfast.loads(bomb)
        print("LOADED")
    except mlfast.UnsupportedModelError as e:
        print("REFUSED", e)
    print("SECONDS", time.monotonic() - t)
    print("MAXRSS_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def test_decompression_bomb_with_the_default_cap():
    """5 GiB of zeros in 22 MB of lz4 (the fastest codec to run to the cap):
    refused once the default budget (2 GiB) is reached, never held in full."""
    r = run_python(BOMB_CHILD, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (
        f"REFUSED the lz4 stream expands past the memory budget of {2 << 30} bytes" in r.stdout
    ), r.stdout
    rss = int(r.stdout.split("MAXRSS_KIB")[1].split()[0]) * 1024
    assert rss < (2 << 30) + (700 << 20), f"peak RSS {rss >> 20} MiB for a 2 GiB budget"


@pytest.mark.parametrize("codec", ["zlib", "gzip", "bz2", "xz", "lz4"])
def test_truncated_and_corrupt_compressed_streams(codec, joblib_bytes):
    import joblib

    buf = io.BytesIO()
    joblib.dump(joblib.load(io.BytesIO(joblib_bytes)), buf, compress=(codec, 3))
    data = buf.getvalue()
    assert mlfast._loader.codec_of(data[:8]) == codec
    mlfast.loads(data)
    expect(ModelFormatError, data[: len(data) // 2], codec, raw=False)
    corrupt = bytearray(data)
    for i in range(len(data) // 3, len(data) // 3 + 16):
        corrupt[i] ^= 0x55
    with pytest.raises(mlfast.MlfastError):
        mlfast.loads(bytes(corrupt))


def test_joblib_zfile_header():
    expect(
        UnsupportedModelError,
        b"ZF0x00000000000000a0" + zlib.compress(b"\x80\x02N."),
        "joblib < 0.10 compressed file ('ZF' header)",
        raw=False,
    )


def test_unknown_header():
    expect(ModelFormatError, b"\x00\x01garbage", "not a pickle or joblib file", raw=False)
    with pytest.raises(ModelFormatError):
        mlfast.loads(b"\x78\x01broken")


def test_lz4_file_loads(pipeline):
    import joblib

    model, X = pipeline
    buf = io.BytesIO()
    joblib.dump(model, buf, compress="lz4")
    assert buf.getvalue()[:4] == b"\x04\x22\x4d\x18"
    np.testing.assert_array_equal(mlfast.loads(buf.getvalue()).predict(X), model.predict(X))


# =============================================================================================
# 11. Lying estimator contents: a tree that would never end or read out of bounds
# =============================================================================================


class _TreeWithState:
    """Pickles as sklearn.tree._tree.Tree(*args) + BUILD(state): a tree file
    with whatever state a test wants, without asking scikit-learn (whose own
    pickling of a lying Tree reads out of bounds)."""

    def __init__(self, args, state):
        self.args, self.state = args, state

    def __reduce__(self):
        from sklearn.tree._tree import Tree

        return Tree, self.args, self.state


@pytest.fixture(scope="module")
def small_tree():
    from sklearn.tree import DecisionTreeClassifier

    X = np.random.RandomState(0).rand(60, 3)
    y = (X[:, 0] > 0.5).astype(int) + (X[:, 1] > 0.5)
    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y), X


def lying_tree(small_tree, change) -> bytes:
    import copy

    est = copy.deepcopy(small_tree[0])
    state = dict(est.tree_.__getstate__())
    state["nodes"] = state["nodes"].copy()
    change(state["nodes"], state)
    est.__dict__["tree_"] = _TreeWithState(est.tree_.__reduce__()[1], state)
    return pickle.dumps(est, protocol=5)


LYING_TREES = {
    "root is its own left child": (
        lambda n, s: n["left_child"].__setitem__(0, 0),
        "node 0 is reached twice",
    ),
    "both children the same node": (
        lambda n, s: n["right_child"].__setitem__(0, n["left_child"][0]),
        "is reached twice",
    ),
    "child past the end": (
        lambda n, s: n["right_child"].__setitem__(0, 10**6),
        "outside the tree's",
    ),
    "negative child": (lambda n, s: n["right_child"].__setitem__(0, -5), "outside the tree's"),
    "feature past the end": (
        lambda n, s: n["feature"].__setitem__(0, 10**9),
        "splits on feature 1000000000 of 3",
    ),
    "node_count lies": (lambda n, s: s.__setitem__("node_count", 10**6), "node_count 1000000"),
}


@pytest.mark.parametrize("name", list(LYING_TREES))
def test_lying_tree(name, small_tree):
    change, text = LYING_TREES[name]
    expect(ModelFormatError, lying_tree(small_tree, change), text, raw=False)


def test_very_deep_tree_loads_and_predicts(small_tree):
    """A 100000-deep chain of splits (a legal tree): no recursion, no crash."""

    def chain(nodes, state):
        m = 100_000
        deep = np.zeros(2 * m + 1, dtype=nodes.dtype)
        i = np.arange(m)
        deep["left_child"][2 * i] = 2 * i + 2
        deep["right_child"][2 * i] = 2 * i + 1
        deep["left_child"][2 * i + 1] = deep["right_child"][2 * i + 1] = -1
        deep["left_child"][-1] = deep["right_child"][-1] = -1
        deep["threshold"][:] = 2.0
        state.update(
            nodes=deep,
            node_count=len(deep),
            max_depth=m,
            values=np.full((len(deep),) + state["values"].shape[1:], 1.0 / 3),
        )

    model = mlfast.loads(lying_tree(small_tree, chain))
    assert model.predict(small_tree[1]).shape == (60,)


# =============================================================================================
# 12. Truncation at every byte and random corruption of real files
# =============================================================================================


@pytest.fixture
def real_file(request):
    """A real model file by name: joblib's default, protocol 2, protocol 0,
    and joblib at protocol 1 (its array wrappers made by copyreg)."""
    return request.getfixturevalue(
        {
            "joblib": "joblib_bytes",
            "proto2": "proto2_bytes",
            "proto0": "proto0_bytes",
            "joblib_p1": "joblib_p1_bytes",
        }[request.param]
    )


REAL_FILES = ["joblib", "proto2", "proto0", "joblib_p1"]


@pytest.mark.parametrize("real_file", REAL_FILES, indirect=True)
def test_truncation_at_every_byte(real_file):
    data = real_file
    wrong = []
    for n in range(len(data)):
        for fn in (mlfast.loads, _core.unpickle):
            try:
                fn(data[:n])
            except ModelFormatError:
                continue
            except Exception as e:  # noqa: BLE001
                wrong.append(f"{n}: {fn.__name__}: {type(e).__name__}: {e}")
            else:
                wrong.append(f"{n}: {fn.__name__}: loaded")
    assert not wrong, f"{len(wrong)} prefixes of {len(data)} misbehaved:\n" + "\n".join(wrong[:20])


@pytest.mark.parametrize("real_file", REAL_FILES, indirect=True)
def test_random_corruption(real_file):
    data = real_file
    rng = random.Random(20240601 + len(data))
    wrong, outcomes = [], {}
    for attempt in range(4000):
        d = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 3, 8))):
            k = rng.randrange(len(d))
            if rng.random() < 0.5:
                d[k] ^= 1 << rng.randrange(8)
            else:
                d[k] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
        try:
            mlfast.loads(bytes(d))
            outcome = "loaded"
        except mlfast.MlfastError as e:
            outcome = type(e).__name__
        except Exception as e:  # noqa: BLE001
            outcome = "WRONG"
            wrong.append(f"attempt {attempt}: {type(e).__name__}: {e}")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert not wrong, "\n".join(wrong[:20])
    assert outcomes.get("ModelFormatError", 0) > 100  # the corruption did bite


# =============================================================================================
# 13. Protocols 0 and 1: the same VM, the same rules, text opcodes with checked lines
# =============================================================================================


def expect_vm(exc, data, *fragments, max_memory=None):
    """expect() for a bare stream of old-protocol values: the loader takes
    only what opens like a model file (see the last test), the VM any pickle."""
    kw = {} if max_memory is None else {"max_memory": max_memory}
    with pytest.raises(exc) as info:
        _core.unpickle(data, **kw)
    assert type(info.value) is exc, f"got {type(info.value).__name__}: {info.value}"
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in message: {info.value}"


def _same_value(a, b) -> bool:
    """Equal values, arrays compared by dtype, shape and content (NaN too)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.flags.f_contiguous == b.flags.f_contiguous
            and (a.tolist() == b.tolist() if a.dtype.kind == "O" else a.tobytes() == b.tobytes())
        )
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same_value, a, b))
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, float) and a != a:
        return isinstance(b, float) and b != b
    return type(a) is type(b) and a == b


PLAIN_VALUES = [
    "line\nbreak and back\\slash",
    "\u00e9t\u00e9 \u2603 \U0001f600",
    "",
    bytes(range(256)),
    b"",
    b"\n\\",
    0,
    1,
    -1,
    255,
    65535,
    2**31 - 1,
    -(2**31),
    2**31,
    -(2**63),
    2**64 + 1,
    -(10**300),
    0.0,
    -0.0,
    1.5,
    1e-310,
    float("inf"),
    float("-inf"),
    float("nan"),
    True,
    False,
    None,
    (),
    (1,),
    (1, 2, 3, 4),
    [],
    [1, [2, [3]]],
    {},
    {"a": {"b": None}},
    {1: "int key", (1, "a"): "tuple key"},
    {1, 2},
    frozenset({"x"}),
    np.arange(7.0),
    np.arange(12, dtype=np.int32).reshape(3, 4).T,
    np.array([], dtype="<U3"),
    np.array(["a", None, 1.5], dtype=object),
    np.array([b"ab", b"\n"]),
    np.float64(0.1),
    np.dtype([("a", "<i8"), ("b", "<f4")]),
    np.array([(1, 2.5), (-3, np.nan)], dtype=[("left", "<i8"), ("threshold", "<f8")]),
]


@pytest.mark.parametrize("proto", [0, 1])
def test_protocol_0_and_1_read_as_pickle_reads_them(proto):
    """Differential against CPython's own unpickler, on values whose text or
    binary forms differ between the protocols (escapes in UNICODE lines, ints
    beyond 32 bits as LONG text, floats as FLOAT text or BINFLOAT, bytes and
    array data through _codecs.encode, the Python 2 names of protocols < 3)."""
    data = pickle.dumps(PLAIN_VALUES, protocol=proto)
    assert data[:1] != b"\x80"
    ours, theirs = _core.unpickle(data), pickle.loads(data)
    bad = [(i, a, b) for i, (a, b) in enumerate(zip(ours, theirs)) if not _same_value(a, b)]
    assert not bad, bad[:5]
    assert len(ours) == len(PLAIN_VALUES)


@pytest.mark.parametrize("proto", [0, 1])
@pytest.mark.parametrize("how", ["pickle", "joblib", "joblib_z3"])
def test_protocol_0_and_1_model_files(proto, how, pipeline):
    """Whole model files at protocols 0 and 1, plain or written by joblib (its
    array wrappers then come through copyreg._reconstructor and their data
    still follows inline), compressed or not."""
    import joblib

    model, X = pipeline
    if how == "pickle":
        data = pickle.dumps(model, protocol=proto)
    else:
        buf = io.BytesIO()
        joblib.dump(model, buf, protocol=proto, compress=3 if how == "joblib_z3" else 0)
        data = buf.getvalue()
    assert (data[:1] == b"c") == (how != "joblib_z3")  # no PROTO: a GLOBAL first
    fast = mlfast.loads(data)
    np.testing.assert_array_equal(fast.predict(X), model.predict(X))
    np.testing.assert_allclose(
        fast.predict_proba(X), model.predict_proba(X), rtol=1e-12, atol=1e-12
    )


def test_protocol_0_python2_names_map_as_pickle_maps_them():
    """Python 3 writes builtins.str and int as __builtin__.unicode and .long
    at protocols < 3 (fix_imports); they come back as themselves."""
    for cls in (str, int, float, bool):
        data = pickle.dumps(cls, protocol=0)
        g = _core.unpickle(data)
        assert pickle.loads(data) is cls
        assert (g.module, g.name) == ("builtins", cls.__name__), data


@pytest.mark.parametrize("proto", [0, 1])
def test_protocol_0_and_1_payloads_are_refused_at_their_global(proto, ctx):
    """A payload of an old protocol names its callable with a GLOBAL line at
    byte 0 (or after a MARK); it is refused there, and it is live under
    CPython."""
    payload = pickle.dumps(P.Reduce(os.system, ctx.cmd), protocol=proto)
    assert payload.startswith(b"cposix\nsystem\n")
    expect(
        UnsafeModelError,
        payload,
        "global 'posix.system' is refused",
        where("GLOBAL", 0),
        marker=ctx.marker,
    )
    data = b"c__builtin__\neval\n(Vprint(1)\ntR."
    expect(UnsafeModelError, data, "global 'builtins.eval' is refused", where("GLOBAL", 0))
    data = b"(c__builtin__\n__import__\n(Vos\ntRtR."
    expect(UnsafeModelError, data, "global 'builtins.__import__' is refused", where("GLOBAL", 1))
    r = run_python(f"import pickle; pickle.loads({payload!r})", timeout=30)
    assert r.returncode == 0 and ctx.marker.exists(), r.stderr[-2000:]


UNICODE_CASES = [
    # (line after 'V', what is expected)
    (b"no newline at all", "line not terminated"),
    (b"\\u12\n", "invalid string data"),  # a \u escape cut short
    (b"\\U00110000\n", "invalid string data"),  # past the last code point
]


@pytest.mark.parametrize("line,fragment", UNICODE_CASES)
def test_protocol_0_unicode_lines(line, fragment):
    a = Asm(None).op("UNICODE", line, label="op").stop()
    expect_vm(ModelFormatError, a.bytes(), fragment, where("UNICODE", a.pos("op")))


def test_protocol_0_unicode_line_may_be_long_and_is_charged():
    """A UNICODE line is as long as its array's data (no MF_LINE_MAX), and
    what decoding it may take (4 bytes a character) is charged before."""
    text = "\u00ff" * 100_000
    data = pickle.dumps(text.encode("latin1"), protocol=0)
    assert _core.unpickle(data) == pickle.loads(data)
    a = Asm(None).op("UNICODE", b"x" * 300_000 + b"\n", label="op").stop()
    expect_vm(
        UnsupportedModelError, a.bytes(), "memory budget", where("UNICODE", 0), max_memory=1_000_000
    )


TEXT_INTS = [
    # what CPython's unpickler reads, and what mlfast refuses instead
    (b"I010\n", 8),  # strtol with base 0: octal
    (b"I0x1f\n", 31),  # hexadecimal
    (b"I+5\n", 5),
    (b"I 5\n", 5),
    (b"I1_000\n", 1000),  # int() with base 0: underscores
    (b"L012L\n", None),
    (b"I-\n", None),
    (b"I\n", None),
    (b"L\n", None),
]


@pytest.mark.parametrize("text,cpython", TEXT_INTS)
def test_protocol_0_ints_in_python_spelling_only(text, cpython):
    """INT and LONG take decimal text as Python writes it: anything CPython
    would read as another base (or not at all) is refused, so that no
    spelling means one number to pickle and another to mlfast."""
    data = text + b"."
    if cpython is None:
        with pytest.raises(Exception):  # noqa: B017 (CPython's type varies by opcode)
            pickle.loads(data)
    else:
        assert pickle.loads(data) == cpython
    expect_vm(
        ModelFormatError,
        data,
        "invalid integer text",
        where("INT" if text[:1] == b"I" else "LONG", 0),
    )


def test_protocol_0_ints_have_a_digit_cap():
    ok = b"L" + b"9" * 617 + b"L\n."
    assert _core.unpickle(ok) == pickle.loads(ok) == int("9" * 617)
    assert _core.unpickle(b"I-2147483649\n.") == -2147483649
    assert _core.unpickle(b"I00\n.") is False and _core.unpickle(b"I01\n.") is True
    expect_vm(
        UnsupportedModelError,
        b"L" + b"9" * 618 + b"L\n.",
        "integer of 618 digits (at most 617)",
        where("LONG", 0),
    )
    expect_vm(
        UnsupportedModelError, b"I-" + b"1" * 700 + b"\n.", "integer of 700 digits", where("INT", 0)
    )


def test_protocol_0_floats_and_memo_text():
    assert _core.unpickle(b"F1e-310\n.") == 1e-310
    assert np.isnan(_core.unpickle(b"Fnan\n."))
    expect_vm(ModelFormatError, b"Fone\n.", "invalid float text", where("FLOAT", 0))
    expect_vm(ModelFormatError, b"F1.5x\n.", "invalid float text", where("FLOAT", 0))
    expect_vm(ModelFormatError, b"Np-1\n.", "invalid memo index text", where("PUT", 1))
    expect_vm(ModelFormatError, b"Np0\n0g1\n.", "memo key 1 was never stored", where("GET", 5))
    expect_vm(
        ModelFormatError,
        b"Np" + b"9" * 12 + b"\n.",
        "memo index text of 12 characters",
        where("PUT", 1),
    )


def test_protocol_0_or_1_is_recognised_by_its_first_bytes():
    """The loader hands a file to the VM when it opens like an old-protocol
    pickle (a GLOBAL line, a MARK, an empty container); text that merely
    starts with 'c' is still not a pickle."""
    for data in (b"cat model.txt\n", b"class Model:\n    pass\n", b"hello world", b"c\n"):
        expect(ModelFormatError, data, "not a pickle or joblib file", raw=False)
    expect(UnsupportedModelError, pickle.dumps([1], protocol=0), "model is a list", raw=False)
    expect(UnsupportedModelError, pickle.dumps({}, protocol=1), "model is a dict", raw=False)


# =============================================================================================
# Decompositions, GLMs, preprocessing, selection, clustering, mixtures: lying arrays
# =============================================================================================


def _family_models():
    from sklearn.cluster import Birch, BisectingKMeans, KMeans
    from sklearn.covariance import EllipticEnvelope
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.decomposition import PCA, FactorAnalysis, KernelPCA
    from sklearn.feature_selection import RFE, SelectKBest
    from sklearn.isotonic import IsotonicRegression
    from sklearn.kernel_approximation import Nystroem
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import LinearRegression, PoissonRegressor
    from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
    from sklearn.preprocessing import KBinsDiscretizer, PowerTransformer, QuantileTransformer
    from sklearn.random_projection import SparseRandomProjection

    rng = np.random.RandomState(0)
    X = rng.randn(60, 4)
    y = np.abs(X[:, 0]) + 0.1
    return [
        PCA(2, whiten=True).fit(X),
        FactorAnalysis(2).fit(X),
        KernelPCA(2, kernel="rbf").fit(X),
        PLSRegression(2).fit(X, y),
        SparseRandomProjection(3, density=0.5, random_state=0).fit(X),
        PoissonRegressor().fit(X, y),
        KernelRidge(kernel="rbf").fit(X, y),
        Nystroem(n_components=10, random_state=0).fit(X),
        GaussianMixture(2, covariance_type="full", random_state=0).fit(X),
        BayesianGaussianMixture(n_components=2, random_state=0).fit(X),
        EllipticEnvelope(random_state=0).fit(X),
        KMeans(3, n_init=1, random_state=0).fit(X),
        BisectingKMeans(3, random_state=0).fit(X),
        Birch(n_clusters=2).fit(X),
        IsotonicRegression().fit(X[:, 0], y),
        QuantileTransformer(n_quantiles=10).fit(X),
        PowerTransformer().fit(X),
        KBinsDiscretizer(3, encode="onehot-dense").fit(X),
        SelectKBest(k=2).fit(X, y > 1),
        RFE(LinearRegression(), n_features_to_select=2).fit(X, y),
    ]


def _lies(value):
    """Arrays that lie about an attribute: shorter, wider, flat, empty, huge
    integers, NaN."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiub":
        return []
    lies = [
        value[:1],
        value.reshape(-1),
        np.zeros((0,) + value.shape[1:], value.dtype),
        np.full(value.shape, 10**9, dtype=np.int64),
        np.full(value.shape, np.nan),
    ]
    if value.ndim >= 1:
        lies.append(np.concatenate([value, value[:1]]))
    if value.ndim == 2:
        lies.append(np.ascontiguousarray(value.T))
    return lies


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("index", range(20))
def test_new_families_with_lying_arrays(index):
    """Every array attribute of a fitted model replaced by one that lies
    about its shape or its values: a clean refusal (MlfastError) or a model
    that answers, never a crash or a read out of bounds (ASan runs this)."""
    import copy
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = _family_models()[index]
    rows = np.random.RandomState(1).randn(5, getattr(est, "n_features_in_", 1))
    for key, value in list(vars(est).items()):
        for lie in _lies(value):
            bad = copy.deepcopy(est)
            setattr(bad, key, lie)
            try:
                model = mlfast.loads(pickle.dumps(bad))
            except mlfast.MlfastError:
                continue
            for method in ("predict", "transform", "predict_proba", "score_samples"):
                if hasattr(model, method):
                    try:
                        getattr(model, method)(rows)
                    except ValueError:
                        pass
