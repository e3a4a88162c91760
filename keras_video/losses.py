"""Losses that Keras does not ship."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_video")
class RootMeanSquaredError(keras.losses.Loss):
    """sqrt(mean squared error over the batch): the ResNet+LSTM seed's loss.

    Keras averages per-sample losses, so the square root is taken after that mean.
    """

    def __init__(self, name="rmse", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)), y_pred.dtype)
        return ops.mean(ops.square(y_pred - y_true), axis=-1)

    def __call__(self, y_true, y_pred, sample_weight=None):
        return ops.sqrt(super().__call__(y_true, y_pred, sample_weight) + 1e-12)
