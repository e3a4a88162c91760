"""FrameDifference: values, config, saving; and the CNN-LSTM that reads it."""

import keras
import numpy as np
import pytest

from keras_video.layers import FrameDifference, ImageNormalization
from keras_video.models import build_model


def _clips(shape=(2, 5, 6, 7, 3), seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape).astype("uint8")


def test_each_frame_with_its_difference_from_the_last():
    clips = _clips()
    out = np.asarray(FrameDifference()(clips))
    x = clips.astype("float32")
    assert out.shape == (2, 5, 6, 7, 6) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., :3], x)
    np.testing.assert_array_equal(out[:, 0, ..., 3:], 0.0)
    np.testing.assert_array_equal(out[:, 1:, ..., 3:], x[:, 1:] - x[:, :-1])


def test_config_and_keras_file_round_trip(tmp_path):
    layer = FrameDifference(name="diff")
    clone = FrameDifference.from_config(layer.get_config())
    assert clone.name == "diff"
    inputs = keras.Input((4, 6, 7, 1))
    model = keras.Model(inputs, FrameDifference()(inputs))
    path = str(tmp_path / "diff.keras")
    model.save(path)
    clips = _clips((3, 4, 6, 7, 1), seed=1)
    np.testing.assert_array_equal(keras.saving.load_model(path)(clips), model(clips))


def test_cnn_lstm_reads_normalised_frames_and_their_differences(tmp_path):
    model = build_model("cnn_lstm", input_shape=(4, 32, 32, 3), lstm_units=(8,),
                        task="classification", num_classes=5, frame_difference=True)
    encoder = model.get_layer("frame_features").layer
    assert encoder.input.shape[-1] == 6
    clips = _clips((2, 4, 32, 32, 3), seed=2)
    # The encoder sees the clip normalised once, then differenced.
    seen = keras.Model(model.input, model.get_layer("frame_difference").output)(clips)
    unit = np.asarray(ImageNormalization("unit")(clips))
    np.testing.assert_allclose(seen[..., :3], unit, rtol=1e-6)
    np.testing.assert_allclose(seen[:, 1:, ..., 3:], unit[:, 1:] - unit[:, :-1], atol=1e-6)
    path = str(tmp_path / "m.keras")
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(clips), model(clips), atol=1e-6)


def test_cnn_lstm_frame_difference_needs_a_backbone_from_scratch():
    with pytest.raises(ValueError, match="from scratch"):
        build_model("cnn_lstm", input_shape=(4, 32, 32, 3), backbone="resnet18",
                    backbone_weights="resnet18.pth", frame_difference=True)
    with pytest.raises(ValueError, match="normalises its own"):
        build_model("cnn_lstm", input_shape=(4, 32, 32, 3), backbone="efficientnet_b0",
                    frame_difference=True)
