#!/usr/bin/env bash
# The frames of workspace/data_src.* (any video named data_src) as images in workspace/data_src.
. "$(dirname "$0")/_dfl.sh" && exec "$DFL" extract-video --input-file "$WORKSPACE/data_src.*" --output-dir "$WORKSPACE/data_src" "$@"
