"""`make lint` and pre-commit run the same tools at the same versions: the
`lint` extra of pyproject.toml (what `make lint` installs into .venv) and
the hooks' pins in .pre-commit-config.yaml name the same releases."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict

ROOT = Path(__file__).resolve().parent.parent

# the hooks that pre-commit installs itself (mypy and stubtest run from .venv)
HOOK_TOOLS = ("ruff", "clang-format", "codespell")


def _pins(text: str) -> Dict[str, str]:
    return {
        name.lower(): version
        for name, version in re.findall(r'"([A-Za-z0-9_.-]+)==([^";\s]+)', text)
    }


def _lint_extra() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    found = re.search(r"^lint = \[(.*?)^\]", text, re.S | re.M)
    assert found is not None, "pyproject.toml has no `lint` optional-dependencies list"
    return found.group(1)


def test_pre_commit_pins_the_lint_extras_versions():
    extra = _pins(_lint_extra())
    hooks = _pins((ROOT / ".pre-commit-config.yaml").read_text())
    for tool in HOOK_TOOLS:
        assert tool in extra, f"the lint extra does not pin {tool}"
        assert hooks.get(tool) == extra[tool], (
            f".pre-commit-config.yaml pins {tool} {hooks.get(tool)}, the lint extra {extra[tool]}"
        )
    assert "mypy" in extra, "the lint extra does not pin mypy"
