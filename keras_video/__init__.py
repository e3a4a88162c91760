"""keras_video: video recognition in Keras 3 on TensorFlow.

Importing the package registers its custom layers, losses and optimizers, so
`keras.saving.load_model` reads any model it saved.
"""

from keras_video import startup

startup.import_tensorflow_quietly()

from keras_video import layers, losses, optimizers  # noqa: E402, F401  (registration side effect)

__version__ = "0.1.0"
