"""Drop-in `Conv3D` and `MaxPooling3D` whose training step is fast on a CPU.

Same weights, same configuration, same outputs as the Keras layers they subclass (a
model converted from PyTorch or saved with the Keras layers loads unchanged); only how
the work is done differs, where TensorFlow's CPU kernels are slow:

- `Conv3D` with strides > 1. On an AVX2 CPU (AMD EPYC, no AVX-512), TensorFlow's CPU
  gradient kernels of a strided 3D convolution (Conv3DBackpropInputV2 /
  Conv3DBackpropFilterV2, with or without oneDNN) were 2-10x slower than those of the
  stride-1 convolution they subsample for the inner layers of a 3D ResNet: 405 ms
  against 39 ms for a 3x3x3, 16 -> 32 channel, stride 2 conv on a batch of
  16 x 10 x 14 x 14 x 16; they were 2/3 of an r3d18 training step at 48 x 48. The
  gradient of a strided conv is the stride-1 conv's gradient for the output gradient
  with zeros inserted between its samples, so there this layer computes it that way
  (the forward pass stays the strided conv), and a 1x1x1 kernel subsamples its input
  first. Not on a GPU (cuDNN's strided gradients are fast, and the detour cost up to
  8x), nor on a CPU with AVX-512, where oneDNN's own kernels were 2x faster than the
  detour (5.5 against 12.8 ms for the layer above, a Xeon with AVX-512 and AMX), nor
  for an input of fewer than `MIN_DETOUR_CHANNELS` channels: for the RGB stems (3
  channels, 7x7 kernels, stride (1, 2, 2)) the detour was 2-3x slower than TensorFlow's
  own kernels.
- `Conv3D` in bfloat16 on a CPU. TensorFlow's (oneDNN's) bfloat16
  Conv3DBackpropFilterV2 returned garbage (relative error 1e33-1e37 against float32,
  every time) for the small inputs of C3D's conv5 at the motion benchmark's size
  (16 x 2 x 3 x 3 x 128 -> 128, and 32 channels, and batch 4; not at 4 x 6 x 6 or
  larger), on an AMD EPYC with AVX512-BF16 and no AMX; the huge kernel gradients
  overflowed Adam's moments to inf and NaN, the NaN weights fed ReLUs that pass 0 for
  NaN, and the model output its class prior for good (experiments/RESULTS.md, session
  18). On a CPU the bfloat16 layer computes its kernel gradient in float32 (inputs and
  output gradient cast up, the result cast back); the forward pass and the input
  gradient stay bfloat16.
- `MaxPooling3D`. TensorFlow's MaxPool3D and its gradient on a CPU take 4-7x the time
  of two 2D max-pools, and a max over a t x h x w window is the max over t of the max over
  h x w: this layer pools every frame in 2D, then over time. The outputs are equal;
  where several inputs tie for a window's maximum, the gradient may go to a different
  one of them (any tied input is a valid subgradient).

Every figure here: `python experiments/bench_cpu_3d_ops.py` (experiments/RESULTS.md).
"""

import keras
import tensorflow as tf
from keras import ops

from keras_video import hardware

MIN_DETOUR_CHANNELS = 8


def use_stride1_gradient():
    """True where a strided conv's gradient should take the stride-1 route (see the
    module docstring): no GPU, and a CPU without AVX-512."""
    return (not tf.config.list_logical_devices("GPU")
            and hardware.cpu_has_any("avx512f") is not True)


def _kernel_gradient(x, kernel_shape, dy, strides, padding):
    """Conv3DBackpropFilterV2, in float32 for bfloat16 operands (see the module
    docstring), cast back to the operands' type."""
    if x.dtype == tf.bfloat16:
        return tf.cast(_kernel_gradient(tf.cast(x, tf.float32), kernel_shape,
                                        tf.cast(dy, tf.float32), strides, padding),
                       tf.bfloat16)
    return tf.raw_ops.Conv3DBackpropFilterV2(input=x, filter_sizes=kernel_shape,
                                             out_backprop=dy, strides=strides,
                                             padding=padding)


def _conv3d_float32_kernel_gradient(x, kernel, strides, padding):
    """tf.nn.conv3d whose kernel gradient is computed in float32."""
    strides, padding = [1, *strides, 1], padding.upper()

    @tf.custom_gradient
    def conv(x, kernel):
        def grad(dy):
            dx = tf.raw_ops.Conv3DBackpropInputV2(
                input_sizes=tf.shape(x), filter=kernel, out_backprop=dy, strides=strides,
                padding=padding)
            return dx, _kernel_gradient(x, tf.shape(kernel), dy, strides, padding)

        return tf.nn.conv3d(x, kernel, strides, padding), grad

    return conv(x, kernel)


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
            return dx, _kernel_gradient(x, k_shape, dy_full, [1] * 5, "VALID")

        return tf.nn.conv3d(x, kernel, strides, "VALID"), grad

    return conv(x, kernel)


@keras.saving.register_keras_serializable(package="keras_video")
class Conv3D(keras.layers.Conv3D):
    """keras.layers.Conv3D; strided, 'valid', channels-last convolutions train faster
    on a CPU (see the module docstring). Outputs and weights are the Keras layer's."""

    def convolution_op(self, inputs, kernel):
        strides = tuple(self.strides)
        if (self.data_format != "channels_last" or tuple(self.dilation_rate) != (1, 1, 1)
                or self.groups != 1):
            return super().convolution_op(inputs, kernel)
        # tf.identity reads the variable: a custom gradient then sees a plain tensor.
        x, kernel = tf.identity(inputs), tf.identity(kernel)
        if self.padding == "valid" and strides != (1, 1, 1) and use_stride1_gradient():
            if tuple(self.kernel_size) == (1, 1, 1):
                t, h, w = strides
                return _conv(x[:, ::t, ::h, ::w, :], kernel, (1, 1, 1), "valid")
            if x.shape[-1] >= MIN_DETOUR_CHANNELS:
                return _strided_conv3d(x, kernel, strides)
        return _conv(x, kernel, strides, self.padding)


def _conv(x, kernel, strides, padding):
    """A channels-last conv; in bfloat16 on a CPU, its kernel gradient in float32."""
    if x.dtype == tf.bfloat16 and not tf.config.list_logical_devices("GPU"):
        return _conv3d_float32_kernel_gradient(x, kernel, strides, padding)
    return ops.conv(x, kernel, strides=strides, padding=padding)


@keras.saving.register_keras_serializable(package="keras_video")
class MaxPooling3D(keras.layers.MaxPooling3D):
    """keras.layers.MaxPooling3D computed as a 2D max-pool of every frame, then a max-pool
    over time (see the module docstring). 'valid' padding, channels-last and known
    frame, height, width and channel counts; otherwise the Keras layer's own op."""

    def call(self, inputs):
        _, frames, height, width, channels = inputs.shape
        if (self.padding != "valid" or self.data_format != "channels_last"
                or None in (frames, height, width, channels)):
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
