#!/usr/bin/env bash
# Export a saved model of workspace/model to DeepFaceLive's .dfm (asks which one).
. "$(dirname "$0")/_dfl.sh" && exec "$DFL" export --workspace "$WORKSPACE" "$@"
