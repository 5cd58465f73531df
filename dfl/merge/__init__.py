"""Merging: put a trained model's face onto the dst frames (DFL's masked merger, docs/merge.md)."""
