"""dfl: a face-swap model trainer in the DeepFaceLab tradition, on Keras 3."""

import time

__version__ = "0.1.0"
LAUNCHED_AT = time.monotonic()  # when the process first imported dfl: start-up is timed from here
