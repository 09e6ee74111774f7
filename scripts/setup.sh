#!/usr/bin/env bash
# Create .venv (if needed) and install glassnet into it, with the extras named
# in $1 (for example "test"). Safe to run again: it only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
target="."
[ -n "$extras" ] && target=".[$extras]"
.venv/bin/python -m pip install --quiet --editable "$target"
