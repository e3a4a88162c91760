"""Loading what keras_video saved: `.keras` files hold its custom layers, losses and
optimizers by registered name, which Keras finds once their modules are imported."""

import keras

from keras_video import layers, losses, optimizers  # noqa: F401  (registration)
from keras_video.models import rfcn  # noqa: F401  (its layers' registration)


def load_model(path, compile=True):
    """keras.saving.load_model with keras_video's custom objects registered."""
    return keras.saving.load_model(path, compile=compile)
