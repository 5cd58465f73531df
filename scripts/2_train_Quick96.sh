#!/usr/bin/env bash
# Train Quick96 on workspace/data_src and workspace/data_dst.
. "$(dirname "$0")/_dfl.sh" && exec "$DFL" train --model Quick96 --workspace "$WORKSPACE" "$@"
