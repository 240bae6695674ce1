#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite, one worker a core (pytest-xdist; the
# slow tests are spread by work stealing). Extra arguments go to pytest: `-n 0` runs in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -n auto --dist worksteal "$@"
