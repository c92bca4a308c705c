"""README's Layout names every source file that exists, so that it stays a
map a newcomer can trust."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _layout() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Layout")
    block = re.search(r"```\n(.*?)```", text[start:], re.S)
    assert block, "README's Layout has no code block"
    return block.group(1)


def _sources():
    for folder, pattern in [
        ("csrc", "*.[ch]"),
        ("mlfast", "*.py"),
        ("mlfast", "*.pyi"),
        ("mlfast/_builders", "*.py"),
        ("mlfast/formats", "*.py"),
        ("mlfast/serving", "*.py"),
        ("benchmarks", "*.py"),
        ("benchmarks", "*.lua"),
        ("fuzz", "*"),
        ("scripts", "*"),
        ("apps", "*.py"),
    ]:
        for path in sorted((ROOT / folder).glob(pattern)):
            if path.is_file() and not path.name.startswith("."):
                yield path


def test_readme_layout_names_every_source_file():
    layout = _layout()
    missing = [
        str(p.relative_to(ROOT))
        for p in _sources()
        if not re.search(rf"(?<![\w.]){re.escape(p.name)}(?![\w])", layout)
    ]
    assert not missing, f"README's Layout does not name: {', '.join(missing)}"


def test_readme_layout_names_only_files_that_exist():
    layout = _layout()
    names = set(re.findall(r"[\w]+\.(?:py|c|h|pyi|sh|lua|supp)\b", layout))
    existing = {p.name for p in ROOT.rglob("*") if ".venv" not in p.parts and ".git" not in p.parts}
    gone = sorted(names - existing)
    assert not gone, f"README's Layout names files that do not exist: {', '.join(gone)}"
