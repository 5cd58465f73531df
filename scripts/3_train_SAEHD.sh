#!/usr/bin/env bash
# Train SAEHD on workspace/data_src and workspace/data_dst.
. "$(dirname "$0")/_dfl.sh" && exec "$DFL" train --model SAEHD --workspace "$WORKSPACE" "$@"
