#!/usr/bin/env python3
"""The plugin contract's import rule, checked without importing anything: provider packages (every
``packages/*`` but dsrs-core, and the third-party example in ``tests/plugin_example``) import dsrs
only from its public modules. Run by the nox ``lint`` session; ``tests/core/test_public_surface.py``
runs the same check. Exit 1 and one line per violation when any is found.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ("dsrs", "dsrs.plugins", "dsrs.wire", "dsrs.errors", "dsrs.types", "dsrs.transport", "dsrs.testing")
#: Public submodules of public packages (importable as ``from dsrs.wire import openai_chat``).
PUBLIC_SUBMODULES = frozenset({"dsrs.wire.openai_chat", "dsrs.plugins.hookspecs"})


def dsrs_imports(path: Path) -> list[tuple[int, str, tuple[str, ...]]]:
    """``(line, module, names)`` of every absolute import of ``dsrs`` or a submodule in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str, tuple[str, ...]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(
                (node.lineno, a.name, ()) for a in node.names if a.name == "dsrs" or a.name.startswith("dsrs.")
            )
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and (node.module == "dsrs" or node.module.startswith("dsrs."))
        ):
            found.append((node.lineno, node.module, tuple(a.name for a in node.names)))
    return found


def violations(path: Path) -> list[str]:
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    bad = []
    for line, module, names in dsrs_imports(path):
        if module in PUBLIC_SUBMODULES:
            continue
        if module not in PUBLIC:
            bad.append(f"{where}:{line}: imports {module}")
            continue
        bad.extend(f"{where}:{line}: imports private {module}.{n}" for n in names if n.startswith("_"))
    return bad


def provider_sources() -> list[Path]:
    packages = sorted(p for p in (ROOT / "packages").iterdir() if p.name != "dsrs-core" and (p / "src").is_dir())
    files = [f for pkg in packages for f in sorted((pkg / "src").rglob("*.py"))]
    return files + sorted((ROOT / "tests" / "plugin_example").rglob("*.py"))


def main() -> int:
    sources = provider_sources()
    bad = [v for p in sources for v in violations(p)]
    for line in bad:
        print(line)
    if bad:
        print(f"{len(bad)} import(s) outside dsrs's public surface ({', '.join(PUBLIC)})", file=sys.stderr)
        return 1
    print(f"public surface: {len(sources)} provider source files import only {', '.join(PUBLIC)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
