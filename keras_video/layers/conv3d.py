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
- `Conv3D` in bfloat16 on a CPU, on small inputs. TensorFlow's (oneDNN's) bfloat16
  Conv3DBackpropFilterV2 returned a wrong kernel gradient (relative error 0.9 to
  1e37 against float32, every time) for C3D's conv5 at the motion benchmark's size
  (input 16 x 2 x 3 x 3 x 128, also 32 channels and batch 4; inputs of 4 x 6 x 6
  positions and more were right), on an AMD EPYC with AVX512-BF16 and no AMX. A
  bfloat16 conv on a CPU with fewer than `MIN_BFLOAT16_POSITIONS` input positions
  (frames x height x width) per clip therefore computes in float32 (its output cast
  back to bfloat16); such layers are a negligible part of the work. Inside a training
  step the wrong gradient (up to 1e36) overflowed Adam's moments to inf and the
  weights to NaN within a few steps; ReLUs pass 0 for NaN, so the model then output
  its class prior for good: 2 of 2 bfloat16 motion C3D runs and 1 of 4 short probes
  collapsed so (experiments/RESULTS.md, session 18).
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
MIN_BFLOAT16_POSITIONS = 144  # 4 x 6 x 6


def _on_cpu():
    return not tf.config.list_logical_devices("GPU")


def use_stride1_gradient():
    """True where a strided conv's gradient should take the stride-1 route (see the
    module docstring): no GPU, and a CPU without AVX-512."""
    return _on_cpu() and hardware.cpu_has_any("avx512f") is not True


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
            and frames * height * width < MIN_BFLOAT16_POSITIONS and _on_cpu())


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
