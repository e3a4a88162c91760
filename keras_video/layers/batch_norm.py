"""Drop-in `BatchNormalization` computed by TensorFlow's fused kernel.

Keras 3's BatchNormalization (TensorFlow backend) normalises with separate element-wise
ops: the moments, then `tf.nn.batch_normalization`, each a pass over the activations,
forward and backward, in float32 even under a bfloat16 policy. TensorFlow's
FusedBatchNormV3 does the same arithmetic in one kernel each way (oneDNN on a CPU,
cuDNN on a GPU) and reads bfloat16 / float16 directly. On the 2-core CPU the fused
kernel's forward + backward took a quarter of the Keras layer's time on the activation
of a 3D ResNet's stem (16 x 16 x 48 x 48 x 16: 21.7 ms against 85.0 ms; bfloat16 22.7
against 103.2), which was a large share of a 3D CNN's training step
(experiments/bench_cpu_3d_ops.py, experiments/RESULTS.md).

Same weights, configuration, moving-statistics update (Keras's: biased batch variance,
`moving = moving * momentum + batch * (1 - momentum)`) and outputs as the Keras layer;
a 5D [batch, frames, height, width, channels] input is normalised as the 4D
[batch * frames, height, width, channels] it reshapes to, which has the same
per-channel statistics. Anything the fused kernel does not cover (another axis, a mask,
renorm, synchronized statistics, unknown channel count) takes the Keras layer's path.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_video")
class BatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization through TensorFlow's FusedBatchNormV3 (see the
    module docstring); its weights, configuration and outputs are the Keras layer's."""

    def _fused(self, inputs, mask):
        rank = len(inputs.shape)
        return (mask is None and not self.renorm and not self.synchronized
                and rank in (4, 5) and self.axis in (-1, rank - 1)
                and inputs.shape[-1] is not None
                and keras.backend.backend() == "tensorflow")

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        shape = tf.shape(inputs)
        x = tf.reshape(inputs, tf.concat([[-1], shape[-3:]], 0))  # [N(*T), H, W, C]
        x = tf.cast(x, self.compute_dtype)
        ones, zeros = tf.ones([channels]), tf.zeros([channels])
        scale = tf.cast(self.gamma, tf.float32) if self.scale else ones
        offset = tf.cast(self.beta, tf.float32) if self.center else zeros
        if training and self.trainable:
            y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=scale, offset=offset, mean=tf.zeros([0]), variance=tf.zeros([0]),
                epsilon=self.epsilon, is_training=True)
            # The kernel returns the unbiased (Bessel-corrected) variance; the Keras layer
            # keeps the biased one, which is also what the batch was normalised with.
            count = tf.cast(tf.size(x) // channels, tf.float32)
            variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
            self.moving_mean.assign(self.moving_mean * self.momentum
                                    + tf.cast(mean, self.moving_mean.dtype)
                                    * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum
                                        + tf.cast(variance, self.moving_variance.dtype)
                                        * (1.0 - self.momentum))
        else:
            y, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=scale, offset=offset,
                mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32),
                epsilon=self.epsilon, is_training=False)
        return tf.reshape(y, shape)
