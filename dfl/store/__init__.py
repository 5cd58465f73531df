"""The saved-model format: model folder, checkpoints, manifest, lock, backups, loss history,
workspace."""
