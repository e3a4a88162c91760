"""Spatial soft-argmax: where each channel of a feature map peaks, as (x, y) numbers
(the "keypoints" of Levine et al., "End-to-End Training of Deep Visuomotor Policies",
JMLR 2016, and Finn et al.'s deep spatial autoencoders).

    heat [B, H, W, K] -> [B, 2K]: (x_1, y_1, ..., x_K, y_K), each in [-1, 1]
    (x_k, y_k) = sum over pixels p of softmax_p(heat[..., k]) * coords(p)

A CNN-LSTM reads a clip as one feature vector per frame. Flattened max-pooled features
say what is in a frame but keep little of where, so the LSTM cannot follow a point
around a centre: on the motion benchmark, with frame differences, the CNN-LSTM tells
translations apart but stays at chance on the sense of a rotation. Keypoint
coordinates hand it positions to compare from frame to frame (with them it learns the
sense of a rotation: experiments/RESULTS.md, motion benchmark).
"""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_video")
class SpatialSoftArgmax(keras.layers.Layer):
    """Per channel of [B, H, W, K], the softmax-weighted mean pixel position; x runs
    left to right and y top to bottom, from -1 (first pixel centre) to 1 (last)."""

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return (input_shape[0], None if channels is None else 2 * channels)

    def call(self, heat):
        height, width, channels = heat.shape[1:]
        if None in (height, width, channels):
            raise ValueError(f"SpatialSoftArgmax needs a static [H, W, K] map, got "
                             f"{tuple(heat.shape)}")
        weights = ops.softmax(ops.reshape(ops.cast(heat, "float32"),
                                          (-1, height * width, channels)), axis=1)
        ys, xs = np.meshgrid(np.linspace(-1.0, 1.0, height), np.linspace(-1.0, 1.0, width),
                             indexing="ij")
        coords = np.stack([xs.ravel(), ys.ravel()], axis=1).astype("float32")  # [HW, 2]
        points = ops.einsum("bpk,pc->bkc", weights, ops.convert_to_tensor(coords))
        return ops.cast(ops.reshape(points, (-1, 2 * channels)), self.compute_dtype)

    def get_config(self):
        return super().get_config()
