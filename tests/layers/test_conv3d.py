"""keras_video.layers.Conv3D / MaxPooling3D: the Keras layers' outputs and gradients,
computed the CPU-friendly way."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_video.layers import Conv3D, MaxPooling3D
from keras_video.layers import conv3d as conv3d_module


def _outputs_and_gradients(layer, x):
    """(y, dL/dx, [dL/dweight...]) for L = sum(y * r), r a fixed random tensor; and the
    op types of the gradient graph."""
    x = tf.constant(x)

    @tf.function
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            r = tf.random.stateless_normal(tf.shape(y), seed=[1, 2])
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * r)
        return y, tape.gradient(loss, [x] + layer.trainable_weights)

    y, grads = run(x)
    ops = {op.type for op in run.get_concrete_function(x).graph.get_operations()}
    return y.numpy(), [g.numpy() for g in grads], ops


@pytest.mark.parametrize("kernel,strides,channels", [
    (3, (2, 2, 2), 16),        # the ResNet3D stage transitions: the stride-1 detour
    ((1, 3, 3), (1, 2, 2), 8),  # R(2+1)D's spatial conv
    ((3, 1, 1), (2, 1, 1), 8),  # R(2+1)D's temporal conv
    (1, (2, 2, 2), 16),        # the 1x1x1 downsample shortcut: subsampled first
    ((3, 7, 7), (1, 2, 2), 3),  # an RGB stem: TensorFlow's own gradient
    (3, 1, 16),                # stride 1: the Keras layer itself
])
@pytest.mark.parametrize("stride1_gradient", [True, False])  # oneDNN off / on
def test_conv3d_matches_keras_outputs_and_gradients(kernel, strides, channels,
                                                     stride1_gradient, monkeypatch):
    monkeypatch.setattr(conv3d_module, "use_stride1_gradient", lambda: stride1_gradient)
    rng = np.random.default_rng(0)
    # Odd sizes: the strided output does not cover the last input rows.
    x = rng.normal(size=(2, 7, 11, 9, channels)).astype("float32")
    ours = Conv3D(12, kernel, strides=strides, use_bias=True)
    reference = keras.layers.Conv3D(12, kernel, strides=strides, use_bias=True)
    ours.build(x.shape)
    reference.build(x.shape)
    reference.set_weights([w + 0.1 * rng.normal(size=w.shape) for w in ours.get_weights()])
    ours.set_weights(reference.get_weights())

    y, grads, ops = _outputs_and_gradients(ours, x)
    y_ref, grads_ref, _ = _outputs_and_gradients(reference, x)

    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    for g, g_ref in zip(grads, grads_ref):  # input, kernel, bias
        np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-4)
    detour = stride1_gradient and strides != 1 and (
        kernel == 1 or channels >= conv3d_module.MIN_DETOUR_CHANNELS)
    # The stride-1 detour inserts zeros into the output gradient with StridedSliceGrad
    # (a 1x1x1 kernel's subsampling too).
    assert ("StridedSliceGrad" in ops) == detour


@pytest.mark.parametrize("pool,strides,shape", [
    (3, 2, (2, 9, 11, 13, 4)),        # ResNet3D's max-pool (after its zero padding)
    ((1, 2, 2), None, (2, 6, 8, 10, 4)),  # C3D pool1: space only
    (2, None, (2, 7, 9, 8, 4)),        # C3D pool2-5, odd sizes floor as in Keras
    ((2, 1, 1), None, (2, 6, 4, 4, 4)),  # time only
])
@pytest.mark.parametrize("two_d", [True, False])  # oneDNN off / on
def test_max_pooling3d_matches_keras_outputs_and_gradients(pool, strides, shape, two_d,
                                                           monkeypatch):
    monkeypatch.setattr(conv3d_module, "use_2d_max_pools", lambda: two_d)
    # Distinct values: no ties, so the gradient has one answer.
    x = np.random.default_rng(1).permutation(np.prod(shape)).reshape(shape).astype("float32")
    ours = MaxPooling3D(pool, strides=strides)
    reference = keras.layers.MaxPooling3D(pool, strides=strides)
    y, (gx,), ops = _outputs_and_gradients(ours, x)
    y_ref, (gx_ref,), _ = _outputs_and_gradients(reference, x)
    np.testing.assert_array_equal(y, y_ref)
    # An input that is the maximum of several overlapping windows sums their gradients
    # in another order: equal to float rounding.
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-6, atol=0)
    assert ("MaxPool3DGrad" in ops) == (not two_d)


def test_layers_round_trip_through_keras_saving(tmp_path):
    inputs = keras.Input((8, 12, 12, 8))
    x = Conv3D(8, 3, strides=2, name="conv")(inputs)
    x = MaxPooling3D((1, 2, 2), name="pool")(x)
    model = keras.Model(inputs, x)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("conv"), Conv3D)
    assert isinstance(loaded.get_layer("pool"), MaxPooling3D)
    assert loaded.get_layer("pool").get_config()["pool_size"] == (1, 2, 2)
    x = np.random.default_rng(2).normal(size=(1, 8, 12, 12, 8)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("shape,kernel,strides,padding", [
    # C3D's conv5 at the motion benchmark's size: TensorFlow's bfloat16 kernel gradient
    # was wrong here on an AVX512-BF16 CPU (relative error 0.9 to 1e37).
    ((4, 2, 3, 3, 32), 3, 1, "same"),
    ((2, 5, 9, 9, 16), 3, 2, "valid"),   # the strided detour
    ((2, 4, 6, 6, 16), 1, 2, "valid"),   # a 1x1x1 shortcut
])
@pytest.mark.parametrize("stride1_gradient", [True, False])
def test_conv3d_bfloat16_gradients_match_float32(shape, kernel, strides, padding,
                                                  stride1_gradient, monkeypatch):
    """In bfloat16 (mixed precision on a CPU) the layer's gradients are the float32
    layer's to bfloat16 precision, the kernel gradient included."""
    monkeypatch.setattr(conv3d_module, "use_stride1_gradient", lambda: stride1_gradient)
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype("float32")
    ours = Conv3D(shape[-1], kernel, strides=strides, padding=padding,
                  dtype="mixed_bfloat16")
    reference = keras.layers.Conv3D(shape[-1], kernel, strides=strides, padding=padding)
    ours.build(shape)
    reference.build(shape)
    ours.set_weights(reference.get_weights())

    _, grads, _ = _outputs_and_gradients(ours, x)
    _, grads_ref, _ = _outputs_and_gradients(reference, x)
    for name, g, g_ref in zip(("input", "kernel", "bias"), grads, grads_ref):
        g = g.astype("float32")
        assert np.all(np.isfinite(g)), name
        # bfloat16 keeps 8 significant bits (relative rounding 2^-9 = 0.002 a value)
        error = np.linalg.norm(g - g_ref) / np.linalg.norm(g_ref)
        assert error < 0.02, (name, error)
