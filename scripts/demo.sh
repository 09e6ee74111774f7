#!/usr/bin/env bash
# Set up glassnet, record the built-in demo session (Iris, 4-16-3, Adam) if it
# is missing, and open the app on it. Extra arguments go to `glassnet serve`,
# e.g. ./scripts/demo.sh --port 5007 --no-show
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if [ ! -f runs/demo.session ]; then
    .venv/bin/glassnet demo --out runs/demo.session
fi
exec .venv/bin/glassnet serve --sessions runs "$@"
