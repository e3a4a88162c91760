"""Each frame of a clip with its difference from the previous frame (TSN's "RGB
difference"), so that a 2D CNN reading one frame at a time sees motion.

    clips [B, T, H, W, C] -> [B, T, H, W, 2C]: (x_t, x_t - x_{t-1}), x_{-1} = x_0

A per-frame CNN pooled into an LSTM cannot tell "moved left" from "moved right" unless
its features keep where things are, and max-pooled features keep little of that: on
the motion benchmark the CNN-LSTM sat at chance for 1600 steps, also with a finer
feature grid. In a difference image the leading edge of a moving shape has the sign
of (shape - background) and the trailing edge the opposite, so the direction of a
translation is there in one frame for the CNN to find (experiments/RESULTS.md, motion
benchmark: from 0.12 to 0.80 video top-1; the sense of a rotation is still not learnt).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_video")
class FrameDifference(keras.layers.Layer):
    """Concatenates every frame with its difference from the frame before (zero for the
    first frame), on the channel axis; pixel values stay in their own units."""

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], None if input_shape[-1] is None else 2 * input_shape[-1])

    def call(self, clips):
        clips = ops.cast(clips, self.compute_dtype)
        previous = ops.concatenate([clips[:, :1], clips[:, :-1]], axis=1)
        return ops.concatenate([clips, clips - previous], axis=-1)

    def get_config(self):
        return super().get_config()
