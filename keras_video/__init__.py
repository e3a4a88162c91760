"""keras_video: video recognition in Keras 3 on TensorFlow.

Importing the package registers its custom layers and losses, so
`keras.saving.load_model` reads any model it saved.
"""

from keras_video import layers, losses  # noqa: F401  (registration side effect)

__version__ = "0.1.0"
