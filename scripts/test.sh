#!/usr/bin/env bash
# Set up glassnet with its test tools and run every check: the dependency
# contracts, lint, format, types, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh test

echo "== import contracts (lint-imports)"
.venv/bin/lint-imports
echo "== lint (ruff check)"
.venv/bin/ruff check .
echo "== format (ruff format --check)"
.venv/bin/ruff format --check .
echo "== types (mypy)"
.venv/bin/mypy
echo "== tests (pytest)"
exec .venv/bin/python -m pytest "$@"
