#!/usr/bin/env bash
# Train AMP on workspace/data_src and workspace/data_dst.
. "$(dirname "$0")/_dfl.sh" && exec "$DFL" train --model AMP --workspace "$WORKSPACE" "$@"
