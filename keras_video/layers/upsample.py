"""Bilinear upsampling by an integer factor as two small matrix products.

    output[b, Y, X, c] = sum_y sum_x R_h[Y, y] R_w[X, x] input[b, y, x, c]

R is the 1-D interpolation matrix of half-pixel bilinear resizing by `factor` with the
edge row / column repeated, i.e. exactly `keras.layers.UpSampling2D(factor,
interpolation="bilinear")` (tf.image.resize): output pixel Y samples the input at
(Y + 0.5) / factor - 0.5, clamped to [0, size - 1]. `output_size` keeps only the first
rows / columns of the result, so a crop of the rounded-up remainder costs nothing.

Why. Deep Feature Flow's N_task upsamples a small logit map (16 x 16 at stride 8) to
the frame on every frame. On a CPU, XLA lowers tf.image.resize to a slow generic
kernel (measured 1.1 ms for 16 x 16 x 4 -> 128 x 128 at batch 1) while the two matrix
products take about 0.1 ms; the propagated DFF frame costs only a few milliseconds, so
this is a large part of it.
"""

import keras
import numpy as np
from keras import ops


def interpolation_matrix(size, factor, output_size=None):
    """[output_size, size] float32 weights of half-pixel bilinear upsampling by `factor`."""
    output_size = size * factor if output_size is None else output_size
    position = np.clip((np.arange(output_size) + 0.5) / factor - 0.5, 0.0, size - 1.0)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, size - 1)
    fraction = position - low
    matrix = np.zeros((output_size, size), np.float64)
    np.add.at(matrix, (np.arange(output_size), low), 1.0 - fraction)
    np.add.at(matrix, (np.arange(output_size), high), fraction)
    return matrix.astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_video")
class BilinearUpsample(keras.layers.Layer):
    """[B, h, w, C] -> [B, H, W, C]: bilinear upsampling by `factor`, cropped to
    `output_size` (H, W) (default: h x factor, w x factor). Needs h and w known."""

    def __init__(self, factor, output_size=None, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)
        if self.factor < 1:
            raise ValueError(f"factor must be a positive integer, got {factor!r}")
        self.output_size = None if output_size is None else tuple(int(s) for s in output_size)

    def build(self, input_shape):
        height, width = input_shape[1:3]
        if height is None or width is None:
            raise ValueError(f"BilinearUpsample needs a known height and width, got {input_shape}")
        out_h, out_w = self.output_size or (height * self.factor, width * self.factor)
        if not (0 < out_h <= height * self.factor and 0 < out_w <= width * self.factor):
            raise ValueError(f"output_size {self.output_size} must lie within the upsampled "
                             f"{height * self.factor} x {width * self.factor}")
        # Constants, not weights: nothing to save or train.
        self._rows = interpolation_matrix(height, self.factor, out_h)
        self._cols = interpolation_matrix(width, self.factor, out_w)

    def call(self, inputs):
        rows = ops.cast(self._rows, self.compute_dtype)
        cols = ops.cast(self._cols, self.compute_dtype)
        return ops.einsum("Yy,byxc,Xx->bYXc", rows, inputs, cols)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        out_h, out_w = self.output_size or (height * self.factor, width * self.factor)
        return (batch, out_h, out_w, channels)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor,
                "output_size": None if self.output_size is None else list(self.output_size)}
