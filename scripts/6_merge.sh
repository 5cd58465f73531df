#!/usr/bin/env bash
# Merge: put the trained model's face onto the frames of workspace/data_dst (asks which model).
. "$(dirname "$0")/_dfl.sh" && exec "$DFL" merge --workspace "$WORKSPACE" "$@"
