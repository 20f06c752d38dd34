"""docs/writing-a-provider.md shows every file of this package in full, exactly as it is here.

(This file and ``smoke.py`` belong to the dsrs repository, not to the example: they are not shown.)
"""

from __future__ import annotations

import re
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1]
GUIDE = EXAMPLE.parents[1] / "docs" / "writing-a-provider.md"
TITLED = re.compile(r'^```\w+ title="([^"]+)"\n(.*?)^```', re.S | re.M)
NOT_SHOWN = {"tests/test_guide.py"}


def shown() -> dict[str, str]:
    return {m.group(1): m.group(2) for m in TITLED.finditer(GUIDE.read_text(encoding="utf-8"))}


def package_files() -> set[str]:
    files = {"pyproject.toml"}
    files |= {str(p.relative_to(EXAMPLE)) for p in (EXAMPLE / "src").rglob("*.py")}
    files |= {str(p.relative_to(EXAMPLE)) for p in (EXAMPLE / "tests").glob("*.py")}
    return files - NOT_SHOWN


def test_every_file_is_shown() -> None:
    missing = package_files() - set(shown())
    assert not missing, f"the guide does not show {sorted(missing)}"


def test_each_shown_file_is_the_file() -> None:
    blocks = shown()
    assert blocks, f"no titled blocks in {GUIDE}"
    for path, text in blocks.items():
        assert (EXAMPLE / path).read_text(encoding="utf-8") == text, f"the guide's {path} differs from the file"
