#!/usr/bin/env bash
# The frames of workspace/data_dst.* (any video named data_dst) as images in workspace/data_dst.
. "$(dirname "$0")/_dfl.sh" && exec "$DFL" extract-video --input-file "$WORKSPACE/data_dst.*" --output-dir "$WORKSPACE/data_dst" "$@"
