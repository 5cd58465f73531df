"""The synthetic demo people and their facesets."""
