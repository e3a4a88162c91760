"""SpatialSoftArgmax: coordinates of a peak, the soft mean of a flat map, config, saving."""

import keras
import numpy as np

from keras_video.layers import SpatialSoftArgmax


def test_a_sharp_peak_gives_its_pixel_in_minus_one_to_one():
    heat = np.zeros((2, 5, 9, 3), "float32")
    heat[0, 0, 0, 0] = 100.0  # top-left pixel centre: (-1, -1)
    heat[0, 4, 8, 1] = 100.0  # bottom-right: (1, 1)
    heat[0, 2, 6, 2] = 100.0  # row 2 of 0..4 -> y 0; column 6 of 0..8 -> x 0.5
    heat[1, 1, 2, 0] = 100.0  # y -0.5, x -0.5
    out = np.asarray(SpatialSoftArgmax()(heat))
    assert out.shape == (2, 6)
    np.testing.assert_allclose(out[0], [-1, -1, 1, 1, 0.5, 0.0], atol=1e-5)
    np.testing.assert_allclose(out[1, :2], [-0.5, -0.5], atol=1e-5)
    # A flat channel: every pixel weighs the same, the mean position is the centre.
    np.testing.assert_allclose(out[1, 2:], 0.0, atol=1e-6)


def test_soft_weights_average_two_peaks():
    heat = np.full((1, 3, 3, 1), -100.0, "float32")
    heat[0, 0, 0, 0] = np.log(3.0)  # weights 3 : 1 after the softmax
    heat[0, 2, 2, 0] = 0.0
    out = np.asarray(SpatialSoftArgmax()(heat))[0]
    np.testing.assert_allclose(out, [0.75 * -1 + 0.25 * 1] * 2, atol=1e-5)


def test_config_and_keras_file_round_trip(tmp_path):
    layer = SpatialSoftArgmax(name="points")
    assert SpatialSoftArgmax.from_config(layer.get_config()).name == "points"
    inputs = keras.Input((6, 7, 4))
    x = keras.layers.Conv2D(4, 1)(inputs)
    model = keras.Model(inputs, SpatialSoftArgmax()(x))
    assert tuple(model.output.shape) == (None, 8)
    path = str(tmp_path / "points.keras")
    model.save(path)
    heat = np.random.default_rng(0).normal(size=(2, 6, 7, 4)).astype("float32")
    np.testing.assert_allclose(keras.saving.load_model(path)(heat), model(heat), atol=1e-6)
