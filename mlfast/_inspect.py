"""``mlfast inspect``: the object tree of a model file, built by the VM and
printed without building (or running) anything."""

from __future__ import annotations

from typing import Any, List

import numpy as np

from mlfast._core import Global, Record

_MAX_ITEMS = 12
_MAX_DEPTH = 24


def _scalar(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _array(a: np.ndarray) -> str:
    shape = "x".join(map(str, a.shape)) or "scalar"
    text = f"ndarray {a.dtype} [{shape}]"
    if a.dtype.kind == "O" or (a.size <= 6 and a.dtype.kind in "biufUS"):
        text += " " + _scalar(a.tolist())
    return text


def format_tree(obj: Any) -> str:
    """A readable outline of a value tree."""
    lines: List[str] = []
    seen = set()

    def walk(v: Any, label: str, depth: int) -> None:
        pad = "  " * depth
        head = f"{pad}{label}: " if label else pad
        if depth > _MAX_DEPTH:
            lines.append(head + "...")
            return
        if isinstance(v, Record):
            version = ""
            if isinstance(v.state, dict) and "_sklearn_version" in v.state:
                version = f"  (sklearn {v.state['_sklearn_version']})"
            if id(v) in seen:
                lines.append(f"{head}{v.path} (shown above)")
                return
            seen.add(id(v))
            lines.append(f"{head}{v.path}{version}")
            if v.args:
                walk(v.args, "args", depth + 1)
            if isinstance(v.state, dict):
                for k, item in v.state.items():
                    if k != "_sklearn_version":
                        walk(item, str(k), depth + 1)
            elif v.state is not None:
                walk(v.state, "state", depth + 1)
            if v.items:
                walk(v.items, "items", depth + 1)
            if v.listitems:
                walk(v.listitems, "listitems", depth + 1)
        elif isinstance(v, np.ndarray):
            lines.append(head + _array(v))
            if v.dtype.kind == "O" and v.size and isinstance(v.flat[0], Record):
                for i, item in enumerate(v.flat):
                    if i >= _MAX_ITEMS:
                        lines.append(f"{pad}  ... {v.size - i} more")
                        break
                    walk(item, f"[{i}]", depth + 1)
        elif isinstance(v, (list, tuple)):
            simple = all(not isinstance(x, (Record, np.ndarray, list, tuple, dict)) for x in v)
            if simple:
                lines.append(head + _scalar(v))
                return
            lines.append(f"{head}{type(v).__name__} of {len(v)}")
            for i, item in enumerate(v):
                if i >= _MAX_ITEMS:
                    lines.append(f"{pad}  ... {len(v) - i} more")
                    break
                walk(item, f"[{i}]", depth + 1)
        elif isinstance(v, dict):
            lines.append(f"{head}dict of {len(v)}")
            for i, (k, item) in enumerate(v.items()):
                if i >= _MAX_ITEMS:
                    lines.append(f"{pad}  ... {len(v) - i} more")
                    break
                walk(item, _scalar(k), depth + 1)
        elif isinstance(v, Global):
            lines.append(f"{head}<global {v.path}>")
        else:
            lines.append(head + _scalar(v))

    walk(obj, "", 0)
    return "\n".join(lines)
