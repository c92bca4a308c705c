"""Code-execution payloads: each would create a marker file if a pickle VM
ran it.  ``test_hostile.py`` checks that mlfast refuses every one of them at
the right global and byte, and (in a subprocess) that CPython's own
``pickle.loads`` really does create the marker, so that the payloads are
known to be live.

A payload builder takes a ``Ctx`` (the marker path and a scratch directory)
and returns a ``Payload``: the bytes, the dotted name of the global mlfast
must refuse first, and the opcode and byte offset where it appears.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import marshal
import operator
import os
import pickle
import pickletools
import pkgutil
import runpy
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional

from . import Asm


@dataclass
class Ctx:
    marker: Path  # must not exist after mlfast has seen the payload
    scratch: Path  # files a payload refers to (scripts, modules, pickles)

    @property
    def cmd(self) -> str:
        return f"touch {shlex.quote(str(self.marker))}"

    @property
    def py(self) -> str:
        return f"open({str(self.marker)!r}, 'w').close()"

    def evil_module(self) -> str:
        """A module in scratch whose import creates the marker (scratch must be
        on sys.path for that to happen)."""
        name = "mlfast_hostile_" + self.marker.parent.name.replace("-", "_").replace(".", "_")
        (self.scratch / f"{name}.py").write_text(self.py + "\nx = 1\n")
        return name

    def evil_script(self) -> str:
        path = self.scratch / "evil_script.py"
        path.write_text(self.py + "\n")
        return str(path)


@dataclass
class Payload:
    data: bytes
    refused: str  # dotted name of the first refused global
    op: str  # GLOBAL / STACK_GLOBAL
    offset: int  # byte offset of that opcode
    live: bool = True  # CPython's pickle.loads creates the marker
    env_path: bool = False  # needs ctx.scratch on PYTHONPATH to be live
    message: str = ""  # mlfast's refusal, if not "global '<refused>' is refused"

    @property
    def refusal(self) -> str:
        return self.message or f"global '{self.refused}' is refused"


class Reduce:
    """pickle writes ``fn(*args)``; instances are callable so that they can be
    the callable of another Reduce (chains)."""

    def __init__(self, fn, *args):
        self.fn = fn
        self.args = args

    def __reduce__(self):
        return self.fn, self.args

    def __call__(self, *a):  # pragma: no cover - only pickled, never called
        raise AssertionError("never called")


def globals_of(data: bytes):
    """[(dotted name, opname, offset)] of the GLOBAL/STACK_GLOBAL opcodes of a
    pickle as a pickler writes it (STACK_GLOBAL's strings pushed directly or
    fetched from the memo)."""
    found, pushed, memo = [], [], {}
    for op, arg, pos in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            pushed.append(arg)
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            pushed.append(memo.get(int(arg)))
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg)] = pushed[-1] if pushed else None
        elif op.name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif op.name == "GLOBAL":
            found.append((arg.replace(" ", "."), op.name, pos))
        elif op.name == "STACK_GLOBAL":
            found.append((f"{pushed[-2]}.{pushed[-1]}", op.name, pos))
        if op.name not in (
            "SHORT_BINUNICODE",
            "BINUNICODE",
            "BINUNICODE8",
            "UNICODE",
            "BINGET",
            "LONG_BINGET",
            "GET",
            "BINPUT",
            "LONG_BINPUT",
            "PUT",
            "MEMOIZE",
        ):
            pushed.append(None)
    return found


def first_global(data: bytes):
    """(opname, offset) of the first GLOBAL/STACK_GLOBAL of a pickle."""
    _name, op, pos = globals_of(data)[0]
    return op, pos


def dumped(obj, refused: str, proto: int, **kw) -> Payload:
    """A pickled object; `refused` is the global mlfast must stop at."""
    data = pickle.dumps(obj, protocol=proto)
    for name, op, pos in globals_of(data):
        if name == refused:
            return Payload(data, refused, op, pos, **kw)
    raise AssertionError(f"{refused} is not among the globals {globals_of(data)}")


def assembled(a: Asm, refused: str, label: str = "first", **kw) -> Payload:
    op = "GLOBAL" if a.buf[a.pos(label)] == ord("c") else "STACK_GLOBAL"
    return Payload(a.bytes(), refused, op, a.pos(label), **kw)


PAYLOADS: Dict[str, Callable[[Ctx], Payload]] = {}


def payload(name: str):
    def deco(fn):
        PAYLOADS[name] = fn
        return fn

    return deco


# ---- the os and subprocess family -------------------------------------------


@payload("os.system/proto2")
def _(c: Ctx) -> Payload:
    return dumped(Reduce(os.system, c.cmd), "posix.system", 2)


@payload("os.system/proto5")
def _(c: Ctx) -> Payload:
    return dumped(Reduce(os.system, c.cmd), "posix.system", 5)


@payload("os.system/by-module-os")
def _(c: Ctx) -> Payload:
    a = Asm(4).stack_global("os", "system", label="first").str(c.cmd).tuple_n(1).reduce().stop()
    return assembled(a, "os.system")


@payload("posix.system/GLOBAL-opcode")
def _(c: Ctx) -> Payload:
    a = Asm(2).global_("posix", "system", label="first").str(c.cmd).tuple_n(1).reduce().stop()
    return assembled(a, "posix.system")


@payload("subprocess.Popen")
def _(c: Ctx) -> Payload:
    return dumped(Reduce(subprocess.Popen, ["touch", str(c.marker)]), "subprocess.Popen", 4)


@payload("subprocess.call")
def _(c: Ctx) -> Payload:
    return dumped(Reduce(subprocess.call, ["touch", str(c.marker)]), "subprocess.call", 4)


@payload("subprocess.run")
def _(c: Ctx) -> Payload:
    return dumped(Reduce(subprocess.run, ["touch", str(c.marker)]), "subprocess.run", 5)


@payload("shutil.copyfile")
def _(c: Ctx) -> Payload:
    src = c.scratch / "shutil_src"
    src.write_text("x")
    return dumped(Reduce(shutil.copyfile, str(src), str(c.marker)), "shutil.copyfile", 4)


@payload("webbrowser.open")
def _(c: Ctx) -> Payload:
    a = Asm(4).stack_global("webbrowser", "open", label="first").str(c.marker.as_uri())
    a.tuple_n(1).reduce().stop()
    return assembled(a, "webbrowser.open", live=False)


@payload("asyncio.create_subprocess_shell")
def _(c: Ctx) -> Payload:
    # asyncio.run(asyncio.create_subprocess_shell(cmd)): the coroutine would
    # be run by asyncio.run
    a = Asm(4).stack_global("asyncio", "run", label="first")
    a.stack_global("asyncio", "create_subprocess_shell").str(c.cmd).tuple_n(1).reduce()
    a.tuple_n(1).reduce().stop()
    return assembled(a, "asyncio.run")


# ---- builtins -------------------------------------------------------------------


@payload("builtins.eval")
def _(c: Ctx) -> Payload:
    return dumped(Reduce(builtins.eval, c.py), "builtins.eval", 4)


@payload("builtins.exec")
def _(c: Ctx) -> Payload:
    return dumped(Reduce(builtins.exec, c.py), "builtins.exec", 5)


@payload("__builtin__.eval/python2-name")
def _(c: Ctx) -> Payload:
    a = Asm(2).global_("__builtin__", "eval", label="first").str(c.py).tuple_n(1).reduce().stop()
    return assembled(a, "builtins.eval")


@payload("io.open")
def _(c: Ctx) -> Payload:
    # builtins.open is io.open, which pickle names by its module: io up to
    # Python 3.11, _io from 3.12
    return dumped(Reduce(builtins.open, str(c.marker), "w"), f"{builtins.open.__module__}.open", 4)


@payload("builtins.open")
def _(c: Ctx) -> Payload:
    a = Asm(2).global_("__builtin__", "open", label="first").str(str(c.marker)).str("w")
    a.tuple_n(2).reduce().stop()
    return assembled(a, "builtins.open")


@payload("builtins.getattr")
def _(c: Ctx) -> Payload:
    # getattr(__import__('os'), 'system')(cmd): getattr itself may name a
    # method of an inert record (scipy.stats keeps such references), so the
    # refusal comes at __import__
    a = Asm(4).stack_global("builtins", "getattr")
    a.stack_global("builtins", "__import__", label="first").str("os").tuple_n(1).reduce()
    a.str("system").tuple_n(2).reduce().str(c.cmd).tuple_n(1).reduce().stop()
    return assembled(a, "builtins.__import__")


@payload("builtins.__import__")
def _(c: Ctx) -> Payload:
    a = Asm(4).stack_global("builtins", "__import__", label="first").str("os").tuple_n(1).reduce()
    a.binput(0).op("POP")
    a.stack_global("builtins", "getattr").binget(0).str("system").tuple_n(2).reduce()
    a.str(c.cmd).tuple_n(1).reduce().stop()
    return assembled(a, "builtins.__import__")


@payload("builtins.compile")
def _(c: Ctx) -> Payload:
    # exec(compile(src, '<x>', 'exec')) with compile first in the stream
    a = Asm(4).stack_global("builtins", "compile", label="first")
    a.str(c.py).str("<x>").str("exec").tuple_n(3).reduce().binput(0).op("POP")
    a.stack_global("builtins", "exec").binget(0).tuple_n(1).reduce().stop()
    return assembled(a, "builtins.compile")


@payload("builtins.__import__/module-import")
def _(c: Ctx) -> Payload:
    a = Asm(4).stack_global("builtins", "__import__", label="first").str(c.evil_module())
    a.tuple_n(1).reduce().stop()
    return assembled(a, "builtins.__import__", env_path=True)


# ---- import machinery --------------------------------------------------------------


@payload("importlib.import_module")
def _(c: Ctx) -> Payload:
    return dumped(
        Reduce(importlib.import_module, c.evil_module()),
        "importlib.import_module",
        4,
        env_path=True,
    )


@payload("pkgutil.resolve_name")
def _(c: Ctx) -> Payload:
    return dumped(
        Reduce(pkgutil.resolve_name, c.evil_module() + ":x"),
        "pkgutil.resolve_name",
        4,
        env_path=True,
    )


@payload("runpy.run_path")
def _(c: Ctx) -> Payload:
    return dumped(Reduce(runpy.run_path, c.evil_script()), "runpy.run_path", 4)


@payload("pdb.run")
def _(c: Ctx) -> Payload:
    a = Asm(4).stack_global("pdb", "run", label="first").str(c.py).tuple_n(1).reduce().stop()
    return assembled(a, "pdb.run", live=False)  # would stop in the debugger


# ---- operator and functools ------------------------------------------------------------


@payload("operator.attrgetter")
def _(c: Ctx) -> Payload:
    os_mod = Reduce(importlib.import_module, "os")
    return dumped(
        Reduce(Reduce(operator.attrgetter("system"), os_mod), c.cmd), "operator.attrgetter", 4
    )


@payload("operator.itemgetter")
def _(c: Ctx) -> Payload:
    os_dict = Reduce(builtins.vars, Reduce(importlib.import_module, "os"))
    return dumped(
        Reduce(Reduce(operator.itemgetter("system"), os_dict), c.cmd), "operator.itemgetter", 4
    )


@payload("operator.methodcaller")
def _(c: Ctx) -> Payload:
    return dumped(
        Reduce(operator.methodcaller("system", c.cmd), Reduce(importlib.import_module, "os")),
        "operator.methodcaller",
        4,
    )


@payload("functools.partial(os.system)")
def _(c: Ctx) -> Payload:
    # functools.partial itself is allowed around a scikit-learn function
    # (HistGradientBoosting keeps one); what it wraps here is not
    return dumped(Reduce(functools.partial(os.system, c.cmd)), "posix.system", 4)


# ---- code objects -------------------------------------------------------------------------

#: FunctionType(code, {}) runs with the caller's builtins from Python 3.10 on;
#: before, with none (no __import__), so these two payloads die in 3.9
_FUNCTION_GETS_BUILTINS = sys.version_info >= (3, 10)


@payload("marshal.loads")
def _(c: Ctx) -> Payload:
    code = marshal.dumps(compile(c.py, "<x>", "exec"))
    a = Asm(4).stack_global("marshal", "loads", label="first").bytes_(code).tuple_n(1).reduce()
    a.binput(0).op("POP")
    a.stack_global("types", "FunctionType").binget(0).op("EMPTY_DICT").tuple_n(2).reduce()
    a.op("EMPTY_TUPLE").reduce().stop()
    return assembled(a, "marshal.loads", live=_FUNCTION_GETS_BUILTINS)


@payload("types.FunctionType")
def _(c: Ctx) -> Payload:
    code = marshal.dumps(compile(c.py, "<x>", "exec"))
    a = Asm(4).stack_global("types", "FunctionType", label="first")
    a.stack_global("marshal", "loads").bytes_(code).tuple_n(1).reduce()
    a.op("EMPTY_DICT").tuple_n(2).reduce().op("EMPTY_TUPLE").reduce().stop()
    return assembled(a, "types.FunctionType", live=_FUNCTION_GETS_BUILTINS)


# ---- loaders called from the file ------------------------------------------------------------


def _evil_pickle(c: Ctx) -> bytes:
    return pickle.dumps(Reduce(os.system, c.cmd), protocol=2)


@payload("pickle.loads")
def _(c: Ctx) -> Payload:
    a = Asm(4).stack_global("pickle", "loads", label="first").bytes_(_evil_pickle(c))
    a.tuple_n(1).reduce().stop()
    return assembled(a, "pickle.loads")


@payload("_pickle.loads")
def _(c: Ctx) -> Payload:
    return dumped(Reduce(pickle.loads, _evil_pickle(c)), "_pickle.loads", 4)


@payload("joblib.load")
def _(c: Ctx) -> Payload:
    path = c.scratch / "evil.joblib"
    path.write_bytes(_evil_pickle(c))
    a = (
        Asm(4)
        .stack_global("joblib", "load", label="first")
        .str(str(path))
        .tuple_n(1)
        .reduce()
        .stop()
    )
    return assembled(a, "joblib.load")


@payload("numpy.load")
def _(c: Ctx) -> Payload:
    import numpy as np

    path = c.scratch / "evil.npy"
    arr = np.empty(1, dtype=object)
    arr[0] = Reduce(os.system, c.cmd)
    np.save(path, arr, allow_pickle=True)
    # numpy.load(path, None, True): mmap_mode=None, allow_pickle=True
    a = Asm(4).stack_global("numpy", "load", label="first").str(str(path)).none().true()
    a.tuple_n(3).reduce().stop()
    return assembled(a, "numpy.load")


@payload("numpy.ctypeslib.load_library")
def _(c: Ctx) -> Payload:
    a = Asm(4).stack_global("numpy.ctypeslib", "load_library", label="first")
    a.str("libc.so.6").str("/lib/x86_64-linux-gnu").tuple_n(2).reduce().stop()
    return assembled(a, "numpy.ctypeslib.load_library", live=False)


# ---- names that try to reach the above through allowed modules -------------------------------


@payload("numpy.__builtins__")
def _(c: Ctx) -> Payload:
    # operator.getitem(numpy.__builtins__, 'eval')(src), with the dunder first
    a = Asm(4).stack_global("numpy", "__builtins__", label="first").binput(0).op("POP")
    a.stack_global("operator", "getitem").binget(0).str("eval").tuple_n(2).reduce()
    a.str(c.py).tuple_n(1).reduce().stop()
    return assembled(a, "numpy.__builtins__")


@payload("sklearn.__builtins__")
def _(c: Ctx) -> Payload:
    a = Asm(4).stack_global("sklearn", "__builtins__", label="first").binput(0).op("POP")
    a.stack_global("operator", "getitem").binget(0).str("eval").tuple_n(2).reduce()
    a.str(c.py).tuple_n(1).reduce().stop()
    return assembled(a, "sklearn.__builtins__")


@payload("sklearn+dotted datasets._base.os.system")
def _(c: Ctx) -> Payload:
    # pickle resolves a dotted name with getattr, one part at a time
    a = Asm(4).stack_global("sklearn", "datasets._base.os.system", label="first").str(c.cmd)
    a.tuple_n(1).reduce().stop()
    return assembled(a, "sklearn.datasets._base.os.system")


@payload("sklearn.utils+dotted os.system")
def _(c: Ctx) -> Payload:
    a = Asm(4).stack_global("sklearn.utils", "os.system", label="first").str(c.cmd)
    a.tuple_n(1).reduce().stop()
    return assembled(a, "sklearn.utils.os.system", live=False)


@payload("numpy+dotted f2py.os.system")
def _(c: Ctx) -> Payload:
    a = Asm(4).stack_global("numpy", "f2py.os.system", label="first").str(c.cmd)
    a.tuple_n(1).reduce().stop()
    return assembled(a, "numpy.f2py.os.system")


@payload("builtins+dotted getattr.__self__")
def _(c: Ctx) -> Payload:
    # STACK_GLOBAL('builtins', 'getattr.__self__') is the builtins module itself
    a = Asm(4).stack_global("builtins", "getattr.__self__", label="first").binput(0).op("POP")
    a.stack_global("builtins", "getattr").binget(0).str("exec").tuple_n(2).reduce()
    a.str(c.py).tuple_n(1).reduce().stop()
    return assembled(a, "builtins.getattr.__self__")


# A name from outside the standard library and the libraries mlfast reads
# (a user's class in __main__ or a package) is only a name: mlfast never
# imports it, so it may be instantiated as an inert record, never called.


@payload("__main__.Anything")
def _(c: Ctx) -> Payload:
    a = Asm(4).stack_global("__main__", "Anything").str(c.cmd).tuple_n(1).reduce(label="call")
    a.stop()
    return Payload(
        a.bytes(),
        "__main__.Anything",
        "REDUCE",
        a.pos("call"),
        live=False,
        message="'__main__.Anything' is called; mlfast never calls",
    )


@payload("module import by naming a class")
def _(c: Ctx) -> Payload:
    # CPython's pickle imports a module to find a class it names, and so
    # runs the module's code even to instantiate an empty object; mlfast
    # never imports, so it reads the instance and refuses the call after it
    a = Asm(4).stack_global(c.evil_module(), "x").op("EMPTY_TUPLE").newobj()
    a.op("POP").stack_global(c.evil_module(), "x").str(c.cmd).tuple_n(1).reduce(label="call")
    a.stop()
    return Payload(
        a.bytes(),
        f"{c.evil_module()}.x",
        "REDUCE",
        a.pos("call"),
        env_path=True,
        message="is called; mlfast never calls",
    )


@payload("copyreg._reconstructor over posix.system")
def _(c: Ctx) -> Payload:
    # copyreg._reconstructor is allowed; what it is given is not
    a = Asm(2).global_("copy_reg", "_reconstructor")
    a.global_("posix", "system", label="first").global_("__builtin__", "str").str(c.cmd)
    a.tuple_n(3).reduce().stop()
    return assembled(a, "posix.system", live=False)


@payload("builtins.set(map(os.system, [cmd]))/NEWOBJ")
def _(c: Ctx) -> Payload:
    # set() is allowed and would drain the map, calling os.system
    a = Asm(4).stack_global("builtins", "set")
    a.stack_global("builtins", "map", label="first")
    a.stack_global("posix", "system").op("EMPTY_LIST").str(c.cmd).op("APPEND").tuple_n(2)
    a.newobj().tuple_n(1).reduce().stop()
    return assembled(a, "builtins.map")


@payload("builtins.frozenset(filter(os.system, [cmd]))/NEWOBJ_EX")
def _(c: Ctx) -> Payload:
    a = Asm(4).stack_global("builtins", "frozenset")
    a.stack_global("builtins", "filter", label="first")
    a.stack_global("posix", "system").op("EMPTY_LIST").str(c.cmd).op("APPEND").tuple_n(2)
    a.op("EMPTY_DICT").op("NEWOBJ_EX").tuple_n(1).reduce().stop()
    return assembled(a, "builtins.filter")


def build(name: str, ctx: Ctx) -> Payload:
    return PAYLOADS[name](ctx)


def live_names():
    """Payload names whose liveness the control test checks."""
    return list(PAYLOADS)


def control_main(argv: Optional[list] = None) -> None:  # pragma: no cover - run in a subprocess
    """python -m hostile.payloads DIR NAME...: run each payload through
    CPython's pickle.loads with its own marker under DIR; print the names
    whose marker appeared."""
    import sys
    import time

    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0])
    for name in argv[1:]:
        d = root / name.replace("/", "_").replace(" ", "_")
        ctx = Ctx(d / "MARKER", d)
        data = (d / "payload.pkl").read_bytes()
        try:
            pickle.loads(data)
        except Exception:
            pass
        for _ in range(50):  # Popen and friends run asynchronously
            if ctx.marker.exists():
                break
            time.sleep(0.02)
        print(("LIVE " if ctx.marker.exists() else "DEAD ") + name, flush=True)


if __name__ == "__main__":  # pragma: no cover
    control_main()
