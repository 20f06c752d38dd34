# Shared by the project's scripts: where caches live and how the tools are found.
# Everything heavy (tools venv, nox venvs, llama-server, models, uv cache) lives outside the repo.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DSRS_CACHE_HOME="${DSRS_CACHE_HOME:-$HOME/.cache/dsrs}"
TOOLS="$DSRS_CACHE_HOME/tools"
export UV_PYTHON_DOWNLOADS=never
mkdir -p "$DSRS_CACHE_HOME"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Python 3.10-3.13 for nox: pyenv installs them but puts only one on PATH. Prepend each
# version's bin dir (newest patch release of each minor) so uv/nox can find python3.X.
add_pythons() {
  local minor dir found=()
  for minor in 3.10 3.11 3.12 3.13; do
    dir=""
    if command -v "python$minor" >/dev/null 2>&1 && "python$minor" -c 'import sys' >/dev/null 2>&1; then
      found+=("$minor"); continue
    fi
    for d in "${PYENV_ROOT:-$HOME/.pyenv}/versions/$minor".*; do
      [ -x "$d/bin/python$minor" ] && dir="$d/bin"
    done
    if [ -n "$dir" ]; then
      export PATH="$dir:$PATH"; found+=("$minor")
    fi
  done
  log "Python versions for nox: ${found[*]}"
}

# A private venv with uv and nox (created once, reused).
ensure_tools() {
  if [ ! -x "$TOOLS/bin/nox" ] || [ ! -x "$TOOLS/bin/uv" ]; then
    log "creating tools venv in $TOOLS (uv, nox)"
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install -qq --disable-pip-version-check "uv>=0.4" "nox>=2024.4"
  fi
  export PATH="$TOOLS/bin:$PATH"
}
