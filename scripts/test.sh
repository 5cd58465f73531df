#!/usr/bin/env bash
# Install the project with its test extras and run the default test suite (all three backends).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[test]"
python3 -m ruff check dfl models tests
python3 -m pytest -q "$@"
