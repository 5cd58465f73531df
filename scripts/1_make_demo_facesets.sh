#!/usr/bin/env bash
# Draw two synthetic people into workspace/data_src and workspace/data_dst.
. "$(dirname "$0")/_dfl.sh" && exec "$DFL" demo --workspace "$WORKSPACE" "$@"
