"""keras_video.layers.BatchNormalization: the fused kernel gives the Keras layer's
outputs, gradients and moving statistics, and saves like any layer."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_video.layers import BatchNormalization


def _pair(shape, **kwargs):
    """The Keras layer and ours, built alike with non-trivial gamma, beta and moving
    statistics."""
    layers = keras.layers.BatchNormalization(**kwargs), BatchNormalization(**kwargs)
    channels = shape[-1]
    for layer in layers:
        layer.build(shape)
        layer.gamma.assign(np.linspace(0.5, 2.0, channels))
        layer.beta.assign(np.linspace(-1.0, 1.0, channels))
        layer.moving_mean.assign(np.linspace(-0.3, 0.3, channels))
        layer.moving_variance.assign(np.linspace(0.5, 1.5, channels))
    return layers


def _run(layer, x, training):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.sin(x))
    grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
    return [np.asarray(v, np.float32) for v in (y, *grads, layer.moving_mean,
                                                 layer.moving_variance)]


@pytest.mark.parametrize("shape", [(3, 4, 5, 6, 7), (4, 5, 6, 7)])
@pytest.mark.parametrize("training", [True, False])
def test_matches_the_keras_layer(shape, training):
    x = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, shape), tf.float32)
    keras_bn, ours = _pair(shape, epsilon=1e-5, momentum=0.9)
    names = ("output", "d input", "d gamma", "d beta", "moving mean", "moving variance")
    for name, expected, actual in zip(names, _run(keras_bn, x, training),
                                      _run(ours, x, training)):
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(actual, expected, rtol=0, atol=2e-6 * scale,
                                   err_msg=name)
    if training:  # the statistics moved, as Keras moves them (biased batch variance)
        batch_mean = x.numpy().reshape(-1, shape[-1]).mean(0)
        np.testing.assert_allclose(ours.moving_mean.numpy(),
                                   0.9 * np.linspace(-0.3, 0.3, shape[-1]) + 0.1 * batch_mean,
                                   atol=1e-5)


def test_other_axes_and_centre_or_scale_off_take_the_keras_path():
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 3, 4, 5)), tf.float32)
    for kwargs in (dict(axis=1), dict(center=False), dict(scale=False)):
        keras_bn, ours = keras.layers.BatchNormalization(**kwargs), BatchNormalization(**kwargs)
        np.testing.assert_allclose(ours(x, training=True), keras_bn(x, training=True),
                                   atol=2e-6, err_msg=str(kwargs))


def test_bfloat16_policy_normalises_in_float32_statistics():
    shape = (2, 4, 6, 6, 8)
    x = tf.constant(np.random.default_rng(2).normal(5.0, 2.0, shape), tf.float32)
    keras_bn, ours = _pair(shape)
    ours_mixed = BatchNormalization(dtype="mixed_bfloat16")
    ours_mixed.build(shape)
    ours_mixed.set_weights(ours.get_weights())
    y = ours_mixed(tf.cast(x, tf.bfloat16), training=True)
    assert y.dtype == tf.bfloat16 and ours_mixed.moving_mean.dtype == "float32"
    expected = keras_bn(x, training=True)
    # bfloat16 keeps 8 bits of mantissa: outputs of a few units agree to ~1e-2.
    np.testing.assert_allclose(tf.cast(y, tf.float32), expected, atol=5e-2)
    np.testing.assert_allclose(ours_mixed.moving_mean, keras_bn.moving_mean, atol=2e-2)


def test_config_and_keras_file_round_trip(tmp_path):
    inputs = keras.Input((4, 6, 6, 3))
    model = keras.Model(inputs, BatchNormalization(epsilon=1e-5, momentum=0.8,
                                                   name="bn")(inputs))
    model.layers[-1].moving_mean.assign([0.1, 0.2, 0.3])
    path = str(tmp_path / "bn.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    layer = loaded.get_layer("bn")
    assert type(layer) is BatchNormalization
    assert (layer.epsilon, layer.momentum) == (1e-5, 0.8)
    x = np.random.default_rng(3).normal(size=(2, 4, 6, 6, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
