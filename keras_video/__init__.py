"""keras_video: video recognition in Keras 3 on TensorFlow.

Importing the package imports nothing heavy and changes nothing in the process: the
subpackages load on first use (`keras_video.models`, `keras_video.layers`, ...).
A model this package saved loads with its custom layers, losses and optimizers
registered:

    from keras_video.saving import load_model
    model = load_model("runs/oscillation_cnn_lstm/best.keras")

The commands (`python -m keras_video.train`, ...) choose how TensorFlow runs on the CPU
before they import it (keras_video.runtime), which is why this file imports nothing.
"""

import importlib

__version__ = "0.1.0"


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return module
