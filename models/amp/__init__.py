"""AMP: DeepFaceLab's morphable model for DeepFaceLive (one shared decoder, morph factor)."""
