#!/bin/sh
# The one check script, the same locally and in CI: format, lint, types, import contracts, tests.
# Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"

step() { echo; echo "== $*"; }

step "format (ruff format --check)"
"$BIN/ruff" format --check station cloud hardware tools tests
step "lint (ruff check)"
"$BIN/ruff" check station cloud hardware tools tests
step "types (mypy --strict)"
"$BIN/mypy"
step "import contracts (import-linter)"
"$BIN/lint-imports"
step "tests (pytest)"
# pytest exits 5 when it collected nothing: that must fail the check, and it does (non-zero).
"$BIN/python" -m pytest "$@"
