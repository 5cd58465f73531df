"""Faces in: aligned facesets, their DFL metadata, augmentation and the batcher."""
