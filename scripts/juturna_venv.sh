#!/usr/bin/env bash
# Create .venv-juturna: Python 3.12 with juturna[warp]==2.1.1 and Fontus's runtime dependencies.
#
#     scripts/juturna_venv.sh            # create (or reuse) it; prints the interpreter path
#     scripts/juturna_venv.sh --find     # print the Python 3.12 it would use, create nothing
#
# The interop tests (tests/interop/) run Juturna's own code in this venv and
# import Fontus there from the repo's src/ (PYTHONPATH), so Fontus itself is not
# installed into it: only its dependencies are, resolved together with Juturna's
# pins in one pip call, which also checks that both packages fit one environment.
#
# Idempotent: a stamp file records what was installed; it is redone only when
# the stamp is missing or pyproject.toml's dependencies changed.
#
# Python 3.12 is looked up, in order: $FONTUS_PYTHON312, python3.12 on PATH (a
# pyenv shim counts only if it actually runs), then $(pyenv root)/versions/3.12*.
# Exit status 3 means no Python 3.12 was found; anything else non-zero is a
# failed install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FONTUS_JUTURNA_VENV:-$ROOT/.venv-juturna}"
JUTURNA_SPEC='juturna[warp]==2.1.1'
STAMP="$VENV/.fontus-installed"

is_py312() {
    [ -n "$1" ] && [ -x "$1" ] &&
        "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else 1)' 2>/dev/null
}

find_python312() {
    local candidate root
    for candidate in "${FONTUS_PYTHON312:-}" "$(command -v python3.12 2>/dev/null || true)"; do
        if is_py312 "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
    # Newest 3.12 patch release first.
    for candidate in $(ls -d "$root"/versions/3.12*/bin/python3.12 2>/dev/null | sort -rV); do
        if is_py312 "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if ! PY312="$(find_python312)"; then
    echo "juturna_venv: Python 3.12 not found (juturna 2.1.1 needs Python >= 3.12)." >&2
    echo "  Install it (e.g. 'pyenv install 3.12') or set FONTUS_PYTHON312=/path/to/python3.12." >&2
    exit 3
fi

if [ "${1:-}" = "--find" ]; then
    echo "$PY312"
    exit 0
fi

# Fontus's runtime and remote dependencies, read from pyproject.toml by the 3.12 interpreter.
FONTUS_DEPS="$("$PY312" - "$ROOT/pyproject.toml" <<'EOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["remote"]))
EOF
)"
WANT="$(printf '%s\n%s\n%s\n' "$PY312" "$JUTURNA_SPEC" "$FONTUS_DEPS")"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
    echo "$VENV/bin/python"
    exit 0
fi

echo "juturna_venv: creating $VENV with $PY312" >&2
rm -f "$STAMP"
[ -x "$VENV/bin/python" ] || "$PY312" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --quiet --disable-pip-version-check)
# One resolve for both, so pip refuses if Fontus's ranges and Juturna's pins do not meet.
mapfile -t DEPS <<<"$FONTUS_DEPS"
"${PIP[@]}" install "$JUTURNA_SPEC" "${DEPS[@]}" >&2
printf '%s' "$WANT" >"$STAMP"
echo "$VENV/bin/python"
