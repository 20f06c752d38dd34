"""The public surface: what provider authors may import, and that every exported name is real.

Like httpx's ``test_exported_members``: each public module's ``__all__`` resolves and lists each name
once. And the contract the plugin guide states: provider packages import dsrs only from its public
modules (``dsrs``, ``dsrs.plugins``, ``dsrs.wire``, ``dsrs.errors``, ``dsrs.types``,
``dsrs.transport``, ``dsrs.testing``) — checked by reading every provider package's source.
"""

from __future__ import annotations

import importlib
import runpy
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import dsrs

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = ("dsrs", "dsrs.plugins", "dsrs.wire", "dsrs.errors", "dsrs.types", "dsrs.transport", "dsrs.testing")


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


# The import rule's one implementation is the lint script (it imports nothing, so nox's lint venv
# runs it as it is); the tests load it from there.
_check = runpy.run_path(str(ROOT / "scripts" / "check_public_surface.py"))
_violations = _check["violations"]
PROVIDER_SOURCES = _check["provider_sources"]()


def test_provider_packages_import_only_the_public_surface() -> None:
    assert PROVIDER_SOURCES, "no provider package sources found"
    bad = [v for p in PROVIDER_SOURCES for v in _violations(p)]
    assert not bad, "provider packages reach into dsrs internals:\n" + "\n".join(bad)


def test_the_contract_check_catches_a_private_import(tmp_path: Path) -> None:
    src = tmp_path / "mod.py"
    src.write_text("from dsrs._lm import LM\nfrom dsrs.wire import _sse, openai_chat\nimport dsrs.errors\n")
    assert _violations(src) == ["mod.py:1: imports dsrs._lm", "mod.py:2: imports private dsrs.wire._sse"]
