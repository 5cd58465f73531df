#!/usr/bin/env bash
# workspace/data_dst/merged as workspace/result.mp4 (and merged_mask as result_mask.mp4), with the frame rate and sound of workspace/data_dst.*.
. "$(dirname "$0")/_dfl.sh" && exec "$DFL" video-from-sequence --workspace "$WORKSPACE" "$@"
