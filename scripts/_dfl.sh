# Sourced by the launchers: finds the dfl command (the repository's .venv first) and the workspace.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKSPACE="$ROOT/workspace"
if [ -x "$ROOT/.venv/bin/dfl" ]; then DFL="$ROOT/.venv/bin/dfl"; else DFL="dfl"; fi
