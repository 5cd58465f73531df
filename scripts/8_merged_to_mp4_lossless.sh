#!/usr/bin/env bash
# As 8_merged_to_mp4, bit-exact: H.264 RGB at qp 0 (libx264rgb); plays in VLC, mpv and editors.
. "$(dirname "$0")/_dfl.sh" && exec "$DFL" video-from-sequence --lossless --workspace "$WORKSPACE" "$@"
