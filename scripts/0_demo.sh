#!/usr/bin/env bash
# The demo: make the synthetic facesets if the workspace has none, then train Quick96 on them.
. "$(dirname "$0")/_dfl.sh"
if [ -z "$(ls -A "$WORKSPACE/data_src/aligned" 2>/dev/null | grep -v .gitkeep)" ]; then
  "$DFL" demo --workspace "$WORKSPACE" || exit $?
fi
exec "$DFL" train --model Quick96 --workspace "$WORKSPACE" "$@"
