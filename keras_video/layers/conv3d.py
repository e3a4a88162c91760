"""Drop-in `Conv3D` and `MaxPooling3D` whose training step is fast on a CPU.

Same weights, same configuration, same outputs as the Keras layers they subclass (a
model converted from PyTorch or saved with the Keras layers loads unchanged); only how
the work is done differs, where TensorFlow's CPU kernels are slow or wrong. Which route
a layer takes on this machine, and why, is decided in keras_video.hardware.

- `Conv3D` with strides > 1, on a CPU whose TensorFlow runs without oneDNN (its Eigen
  kernels). There TensorFlow's gradient kernels of a strided 3D convolution
  (Conv3DBackpropInputV2 / Conv3DBackpropFilterV2) were 2-10x slower than those of the
  stride-1 convolution they subsample. The gradient of a strided conv is the stride-1
  conv's gradient for the output gradient with zeros inserted between its samples, so
  there this layer computes it that way (the forward pass stays the strided conv), and
  a 1x1x1 kernel subsamples its input first. With oneDNN (and on a GPU) TensorFlow's
  own kernels are faster than the detour, which is then not taken; nor for an input of
  fewer than `MIN_DETOUR_CHANNELS` channels: for the RGB stems (3 channels, 7x7
  kernels, stride (1, 2, 2)) the detour was 2-3x slower than TensorFlow's kernels.
- `Conv3D` in bfloat16 on a CPU, on small inputs. TensorFlow's (oneDNN's) bfloat16
  Conv3DBackpropFilterV2 returned a wrong kernel gradient (relative error 0.9 to
  1e37 against float32, every time) for C3D's conv5 at the motion benchmark's size
  (input 16 x 2 x 3 x 3 x 128; inputs of 4 x 6 x 6 positions and more were right), on
  an AMD EPYC with AVX512-BF16. A bfloat16 conv on a CPU with fewer than
  `MIN_BFLOAT16_POSITIONS` input positions (frames x height x width) per clip
  therefore computes in float32 (its output cast back to bfloat16); such layers are a
  negligible part of the work. Inside a training step the wrong gradient overflowed
  Adam's moments and the weights to NaN within a few steps, and the model then output
  its class prior for good.
- `MaxPooling3D`, where oneDNN is off: TensorFlow's Eigen MaxPool3D and its gradient
  take 4-7x the time of two 2D max-pools, and a max over a t x h x w window is the max
  over t of the max over h x w, so this layer pools every frame in 2D, then over time.
  The outputs are equal; where several inputs tie for a window's maximum, the gradient
  may go to a different one of them (any tied input is a valid subgradient).

Every figure here: `python experiments/bench_cpu_3d_ops.py` (experiments/RESULTS.md).
"""

import keras
import tensorflow as tf
from keras import ops

from keras_video import hardware

MIN_DETOUR_CHANNELS = 8
MIN_BFLOAT16_POSITIONS = hardware.MIN_BFLOAT16_POSITIONS


def use_stride1_gradient():
    """Whether a strided conv's gradient takes the stride-1 route on this machine."""
    return hardware.conv3d_stride1_gradient()[0]


def use_2d_max_pools():
    """Whether MaxPooling3D is computed as 2D max-pools on this machine."""
    return hardware.max_pool3d_as_2d()[0]


def _strided_conv3d(x, kernel, strides):
    """VALID tf.nn.conv3d with `strides` whose gradients are the stride-1 conv's, fed the
    output gradient with zeros inserted between its samples (StridedSliceGrad)."""
    strides = [1, *strides, 1]

    @tf.custom_gradient
    def conv(x, kernel):
        def grad(dy):
            x_shape, k_shape = tf.shape(x), tf.shape(kernel)
            full = tf.concat([x_shape[:1], x_shape[1:4] - k_shape[:3] + 1, k_shape[4:]], 0)
            dy_full = tf.raw_ops.StridedSliceGrad(
                shape=full, begin=tf.zeros([5], tf.int32), end=full,
                strides=tf.constant(strides, tf.int32), dy=dy)
            dx = tf.raw_ops.Conv3DBackpropInputV2(
                input_sizes=x_shape, filter=kernel, out_backprop=dy_full,
                strides=[1] * 5, padding="VALID")
            dk = tf.raw_ops.Conv3DBackpropFilterV2(
                input=x, filter_sizes=k_shape, out_backprop=dy_full,
                strides=[1] * 5, padding="VALID")
            return dx, dk

        return tf.nn.conv3d(x, kernel, strides, "VALID"), grad

    return conv(x, kernel)


def _small_bfloat16_on_cpu(inputs):
    frames, height, width = inputs.shape[1:4]
    return (inputs.dtype == "bfloat16" and None not in (frames, height, width)
            and frames * height * width < MIN_BFLOAT16_POSITIONS
            and hardware.bfloat16_small_conv3d_in_float32()[0])


@keras.saving.register_keras_serializable(package="keras_video")
class Conv3D(keras.layers.Conv3D):
    """keras.layers.Conv3D; strided, 'valid', channels-last convolutions train faster
    on a CPU (see the module docstring). Outputs and weights are the Keras layer's."""

    def convolution_op(self, inputs, kernel):
        if _small_bfloat16_on_cpu(inputs):
            outputs = self.convolution_op(ops.cast(inputs, "float32"),
                                          ops.cast(kernel, "float32"))
            return ops.cast(outputs, inputs.dtype)
        strides = tuple(self.strides)
        plain = (self.padding != "valid" or self.data_format != "channels_last"
                 or tuple(self.dilation_rate) != (1, 1, 1) or self.groups != 1)
        if plain or strides == (1, 1, 1) or not use_stride1_gradient():
            return super().convolution_op(inputs, kernel)
        if tuple(self.kernel_size) == (1, 1, 1):
            t, h, w = strides
            return ops.conv(inputs[:, ::t, ::h, ::w, :], kernel, strides=1, padding="valid")
        if inputs.shape[-1] < MIN_DETOUR_CHANNELS:
            return super().convolution_op(inputs, kernel)
        # tf.identity reads the variable: the custom gradient then sees a plain tensor.
        return _strided_conv3d(tf.identity(inputs), tf.identity(kernel), strides)


@keras.saving.register_keras_serializable(package="keras_video")
class MaxPooling3D(keras.layers.MaxPooling3D):
    """keras.layers.MaxPooling3D; where TensorFlow runs without oneDNN on a CPU, computed
    as a 2D max-pool of every frame, then a max-pool over time (see the module
    docstring), for 'valid' padding, channels-last and known frame, height, width and
    channel counts; otherwise the Keras layer's own op."""

    def call(self, inputs):
        _, frames, height, width, channels = inputs.shape
        if (self.padding != "valid" or self.data_format != "channels_last"
                or None in (frames, height, width, channels) or not use_2d_max_pools()):
            return super().call(inputs)
        (pool_t, pool_h, pool_w), (stride_t, stride_h, stride_w) = self.pool_size, self.strides
        x = inputs
        if (pool_h, pool_w, stride_h, stride_w) != (1, 1, 1, 1):
            x = ops.reshape(x, (-1, height, width, channels))
            x = ops.max_pool(x, (pool_h, pool_w), (stride_h, stride_w), padding="valid")
            _, height, width, _ = x.shape
        if (pool_t, stride_t) != (1, 1):
            # A 2D pool of [batch, frames, height * width, channels], window (pool_t, 1).
            x = ops.reshape(x, (-1, frames, height * width, channels))
            x = ops.max_pool(x, (pool_t, 1), (stride_t, 1), padding="valid")
            frames = x.shape[1]
        return ops.reshape(x, (-1, frames, height, width, channels))
