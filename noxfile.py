"""The dsrs test matrix: one venv per package x Python version, plus lint, types, plugin, build, docs.

Each ``tests`` venv holds only dsrs-core, the package under test and its declared ``test`` extra,
so an import the package does not declare fails there. Run everything with ``scripts/test`` (which
also makes Python 3.10-3.13 visible and starts the real components), or one session directly:
``nox -s "tests(package='ollama', python='3.12')"``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = ("core", "openai", "anthropic", "google", "gptoss", "pylon", "ollama", "dspy")
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
MAIN_PYTHON = "3.11"
# Sibling packages that a package's end-to-end tests use when present (they skip without them).
INTEGRATION_SIBLINGS: dict[str, tuple[str, ...]] = {"openai": ("gptoss",), "pylon": ("ollama",), "dspy": ("gptoss",)}

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = False
nox.options.sessions = ["lint", "typecheck", "tests", "plugin", "build", "docs"]


def _pkg(name: str) -> str:
    return str(ROOT / "packages" / f"dsrs-{name}")


def _core(extras: str = "test") -> str:
    return f"{_pkg('core')}[{extras}]"


@nox.session(python=PYTHONS)
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """Unit and integration tests of one package, in a venv holding only what it declares."""
    if package == "core":
        session.install(_core("fast,redis,prices,test"))
    else:
        session.install(_core(), f"{_pkg(package)}[test]")
    args = ["-p", "no:cacheprovider", f"tests/{package}"]
    if session.python == MAIN_PYTHON:
        # Cross-package end-to-end tests (e.g. dsrs-openai against dsrs-gptoss's real llama-server)
        # run once, on the main Python, with the sibling installed next to the package under test.
        siblings = INTEGRATION_SIBLINGS.get(package, ())
        if siblings:
            session.install(*(f"{_pkg(s)}[test]" for s in siblings))
    else:
        # The slow, component-heavy tests run once, on the main Python; the rest on every version.
        args[:0] = ["-m", "not slow"]
    session.run("python", "-m", "pytest", *args, *session.posargs)


@nox.session(python=MAIN_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over every package, the tests and the benchmarks."""
    session.install("ruff>=0.6")
    paths = ["packages", "tests", "benchmarks", "scripts", "noxfile.py", "examples"]
    paths = [p for p in paths if (ROOT / p).exists()]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    # Provider packages import only dsrs's public modules (an AST check; imports nothing).
    session.run("python", "scripts/check_public_surface.py")


@nox.session(python=MAIN_PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's source (one root configuration)."""
    session.install(
        "mypy>=1.10",
        _core("fast,redis,prices,otel,progress,test"),
        *(f"{_pkg(p)}[test]" for p in PACKAGES if p != "core"),
    )
    session.run("mypy", *(f"packages/dsrs-{p}/src" for p in PACKAGES))


@nox.session(python=MAIN_PYTHON)
def plugin(session: nox.Session) -> None:
    """A third-party plugin, built separately, is discovered, usable and passes its own tests (the
    conformance kit included) with only dsrs-core (and pytest) installed."""
    example = ROOT / "tests" / "plugin_example"
    session.install(_pkg("core"), f"{example}[test]")
    out = session.run("dsrs", "providers", "--json", "--no-probe", silent=True)
    assert out is not None and '"acme"' in out and '"dsrs-acme-example"' in out, out
    session.run("python", str(example / "smoke.py"))
    # The example's own pytest configuration (its pyproject.toml), as its author would run it.
    session.run(
        "python",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-c",
        str(example / "pyproject.toml"),
        str(example / "tests"),
    )


@nox.session(python=MAIN_PYTHON)
def build(session: nox.Session) -> None:
    """Build every wheel standalone, then smoke-test core + one provider from the wheels in a clean venv."""
    dist = Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    for p in PACKAGES:
        # Each package builds alone, from its own folder, in an isolated build environment.
        session.run("uv", "build", "--wheel", "--quiet", "--out-dir", str(dist), _pkg(p), external=True)
    wheels = sorted(dist.glob("*.whl"))
    assert len(wheels) == len(PACKAGES), wheels
    for w in wheels:
        session.log(f"built {w.name}")
    session.install(*(str(w) for w in wheels if w.name.startswith(("dsrs_core-", "dsrs_ollama-"))))
    session.run("python", "-c", _BUILD_SMOKE)
    session.run("dsrs", "providers", "--no-probe")


_BUILD_SMOKE = """
import dsrs, dsrs_ollama, importlib.resources as r
names = {s.name: s for s in dsrs.providers()}
assert {"fake", "openai-compatible", "ollama"} <= set(names), names
assert names["ollama"].distribution == "dsrs-ollama"
assert r.files("dsrs").joinpath("py.typed").is_file()
assert dsrs.LM("fake:echo").call("built wheels work").text == "built wheels work"
print("wheel smoke test ok:", sorted(names))
"""


@nox.session(python=MAIN_PYTHON)
def docs(session: nox.Session) -> None:
    """Execute every Python code block in README.md and docs/ (with every package installed)."""
    session.install(_core("fast,test"), *(_pkg(p) for p in PACKAGES if p != "core"))
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", "tests/docs", *session.posargs)


if os.environ.get("CI"):
    nox.options.error_on_missing_interpreters = True
