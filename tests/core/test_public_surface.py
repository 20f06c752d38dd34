"""The public surface: what provider authors may import, and that every exported name is real.

Like httpx's ``test_exported_members``: each public module's ``__all__`` resolves and lists each name
once. And the contract the plugin guide states: provider packages import dsrs only from its public
modules (``dsrs``, ``dsrs.plugins``, ``dsrs.wire``, ``dsrs.errors``, ``dsrs.types``,
``dsrs.transport``, ``dsrs.testing``) — checked by reading every provider package's source.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import dsrs

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = ("dsrs", "dsrs.plugins", "dsrs.wire", "dsrs.errors", "dsrs.types", "dsrs.transport", "dsrs.testing")
#: Public submodules of public packages (importable as ``from dsrs.wire import openai_chat``).
PUBLIC_SUBMODULES = {"dsrs.wire.openai_chat", "dsrs.plugins.hookspecs"}


@pytest.mark.parametrize("module_name", PUBLIC)
def test_all_resolves_and_lists_each_name_once(module_name: str) -> None:
    module = importlib.import_module(module_name)
    names = list(module.__all__)
    dupes = [n for n, c in Counter(names).items() if c > 1]
    assert not dupes, f"{module_name}.__all__ lists twice: {dupes}"
    for name in names:
        if module_name == "dsrs" and name == "RedisState":
            continue  # needs the [redis] extra; covered by the core-only star-import test
        assert getattr(module, name) is not None, f"{module_name}.{name}"


def test_lazy_names_are_exported() -> None:
    assert set(dsrs._LAZY) <= set(dsrs.__all__)
    assert set(dsrs.__all__) <= set(dir(dsrs))


def test_star_import_works_without_the_redis_extra() -> None:
    # A child interpreter where ``redis`` cannot be imported stands in for a core-only install.
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from dsrs import *\n"
        "import dsrs\n"
        "try:\n"
        "    RedisState('redis://localhost')\n"
        "except ImportError as e:\n"
        "    print('hint:', e)\n"
        "print('ok', len(dsrs.__all__))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert "pip install 'dsrs-core[redis]'" in out.stdout
    assert out.stdout.strip().endswith(f"ok {len(dsrs.__all__)}")


def _dsrs_imports(path: Path) -> list[tuple[int, str, tuple[str, ...]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str, tuple[str, ...]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "dsrs" or alias.name.startswith("dsrs."):
                    found.append((node.lineno, alias.name, ()))
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and (node.module == "dsrs" or node.module.startswith("dsrs."))
        ):
            found.append((node.lineno, node.module, tuple(a.name for a in node.names)))
    return found


def _violations(path: Path) -> list[str]:
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    bad = []
    for line, module, names in _dsrs_imports(path):
        if module in PUBLIC_SUBMODULES:
            continue
        if module not in PUBLIC:
            bad.append(f"{where}:{line}: imports {module}")
            continue
        for name in names:
            if name.startswith("_"):
                bad.append(f"{where}:{line}: imports private {module}.{name}")
    return bad


PROVIDER_SOURCES = sorted(
    p
    for pkg in (ROOT / "packages").iterdir()
    if pkg.name != "dsrs-core" and (pkg / "src").is_dir()
    for p in (pkg / "src").rglob("*.py")
) + sorted((ROOT / "tests" / "plugin_example").rglob("*.py"))


def test_provider_packages_import_only_the_public_surface() -> None:
    assert PROVIDER_SOURCES, "no provider package sources found"
    bad = [v for p in PROVIDER_SOURCES for v in _violations(p)]
    assert not bad, "provider packages reach into dsrs internals:\n" + "\n".join(bad)


def test_the_contract_check_catches_a_private_import(tmp_path: Path) -> None:
    src = tmp_path / "mod.py"
    src.write_text("from dsrs._lm import LM\nfrom dsrs.wire import _sse, openai_chat\nimport dsrs.errors\n")
    assert _violations(src) == ["mod.py:1: imports dsrs._lm", "mod.py:2: imports private dsrs.wire._sse"]
