#!/usr/bin/env bash
# Set up glassnet and record the built-in demo session (Iris, 4-16-3, Adam).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/glassnet demo "$@"
