"""dfl: a face-swap model trainer in the DeepFaceLab tradition, on Keras 3."""

__version__ = "0.1.0"
