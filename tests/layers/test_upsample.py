"""BilinearUpsample equals UpSampling2D's bilinear mode (+ crop), saves, and compiles."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_video.layers import BilinearUpsample


@pytest.mark.parametrize("shape, factor, output_size", [
    ((2, 5, 7, 3), 16, None), ((1, 16, 16, 4), 8, None), ((2, 5, 7, 3), 16, (72, 100)),
    ((1, 3, 4, 2), 3, (8, 12))])
def test_matches_keras_bilinear_upsampling_and_crop(shape, factor, output_size):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    expected = keras.layers.UpSampling2D(factor, interpolation="bilinear")(x).numpy()
    if output_size is not None:
        expected = expected[:, :output_size[0], :output_size[1]]
    layer = BilinearUpsample(factor, output_size)
    np.testing.assert_allclose(layer(x).numpy(), expected, atol=1e-5)
    assert layer.compute_output_shape(shape) == expected.shape


def test_round_trip_xla_and_bad_sizes(tmp_path):
    inputs = keras.Input((5, 7, 3))
    model = keras.Model(inputs, BilinearUpsample(16, (72, 100), name="up")(inputs))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_layer("up").get_config()["output_size"] == [72, 100]
    x = np.random.default_rng(1).normal(size=(2, 5, 7, 3)).astype(np.float32)
    compiled = tf.function(lambda v: loaded(v), jit_compile=True)
    np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="within"):
        BilinearUpsample(2, (20, 4))(np.zeros((1, 5, 5, 1), np.float32))
    with pytest.raises(ValueError, match="positive"):
        BilinearUpsample(0)
