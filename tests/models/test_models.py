"""build_model, every backbone's output shape, the custom layer, and the feature cache."""

import keras
import numpy as np
import pytest

from keras_video.tasks import feature_cache
from keras_video.layers import ImageNormalization
from keras_video.models import build_model, model_names
from keras_video.models.backbones import frame_backbone


def test_registry():
    assert "cnn_lstm" in model_names()
    with pytest.raises(ValueError, match="unknown model 'c4d'"):
        build_model("c4d")


@pytest.mark.parametrize("name, input_shape, feature_shape", [
    ("small", (64, 64, 1), (4, 4, 32)),
    ("small_hires", (48, 48, 6), (24, 24, 32)),
    ("resnet18", (224, 224, 3), (7, 7, 512)),
    ("resnet34", (112, 112, 3), (4, 4, 512)),
    ("mobilenet_v2", (96, 96, 3), (3, 3, 1280)),
    ("efficientnet_b0", (64, 64, 3), (2, 2, 1280)),
])
def test_backbone_output_shapes(name, input_shape, feature_shape):
    net, norm = frame_backbone(name, input_shape, weights=None)
    assert tuple(net.output.shape[1:]) == feature_shape
    assert norm in ImageNormalization.MODES


def test_unknown_backbone_and_weights():
    with pytest.raises(ValueError, match="unknown backbone"):
        frame_backbone("alexnet", (64, 64, 3))
    with pytest.raises(ValueError, match="torchvision's .pth"):
        frame_backbone("resnet18", (64, 64, 3), weights="imagenet")


@pytest.mark.parametrize("task, out", [("regression", 1), ("classification", 7)])
def test_cnn_lstm_shapes(task, out):
    model = build_model("cnn_lstm", input_shape=(6, 32, 32, 3), task=task,
                        num_classes=7 if task == "classification" else None,
                        lstm_units=(16, 8))
    y = model(np.random.uniform(0, 255, (2, 6, 32, 32, 3)).astype("float32"))
    assert y.shape == (2, out)
    if task == "classification":
        np.testing.assert_allclose(np.sum(y, axis=-1), 1.0, rtol=1e-5)


def test_seed000_features_are_4608_per_frame():
    model = build_model("cnn_lstm", input_shape=(4, 224, 224, 3), backbone="resnet18",
                        freeze_backbone=True, pool=(3, 2), label_scale=15.0)
    assert tuple(model.get_layer("frame_features").output.shape) == (None, 4, 4608)
    encoder = model.get_layer("frame_features").layer
    assert not encoder.get_layer("resnet18").trainable
    assert model.get_layer("temporal_head").trainable


def test_feature_cache_equals_the_uncached_model(tmp_path):
    keras.utils.set_random_seed(1)
    model = build_model("cnn_lstm", input_shape=(5, 96, 96, 3), backbone="resnet18",
                        freeze_backbone=True, pool=(3, 2), lstm_units=(8,))
    clips = np.random.default_rng(0).uniform(0, 255, (6, 5, 96, 96, 3)).astype("float32")
    labels = np.arange(6, dtype="float32")
    dataset = [(clips[:4], labels[:4]), (clips[4:], labels[4:])]
    feature_model, head = feature_cache.split_model(model)
    path = str(tmp_path / "cache" / "train.npz")
    cached, cached_labels = feature_cache.cached_features(feature_model, dataset, path, 6)
    again, _ = feature_cache.cached_features(feature_model, [], path, 6)  # read back, no compute
    np.testing.assert_array_equal(cached, again)
    np.testing.assert_array_equal(cached_labels, labels)
    np.testing.assert_allclose(head(cached), model(clips), atol=1e-5)


def test_layer_config_round_trip():
    layer = ImageNormalization("imagenet", name="norm")
    clone = ImageNormalization.from_config(layer.get_config())
    x = np.full((1, 4, 4, 3), 255.0, "float32")
    np.testing.assert_allclose(layer(x), clone(x))
    np.testing.assert_allclose(layer(x)[0, 0, 0], (1 - np.array([0.485, 0.456, 0.406]))
                               / np.array([0.229, 0.224, 0.225]), rtol=1e-5)
    gray = ImageNormalization("unit")(np.full((1, 2, 2, 1), 51.0, "float32"))
    np.testing.assert_allclose(gray, 0.2)
    flow = np.random.default_rng(0).normal(size=(1, 2, 2, 2)).astype("float32")
    np.testing.assert_array_equal(ImageNormalization("none")(flow), flow)
    # "unit" / "tf" have no per-channel statistics and take any channel count;
    # modes with RGB statistics refuse 2 channels.
    np.testing.assert_allclose(ImageNormalization("unit")(flow), flow / 255, rtol=1e-6)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        ImageNormalization("imagenet")(flow)


def test_model_saves_and_loads(tmp_path):
    model = build_model("cnn_lstm", input_shape=(4, 32, 32, 1), lstm_units=(8,),
                        label_scale=15.0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(0).uniform(0, 255, (2, 4, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def test_cnn_lstm_width_scales_the_small_backbone():
    model = build_model("cnn_lstm", input_shape=(3, 48, 48, 3), lstm_units=(8,), width=2.0)
    assert tuple(model.get_layer("frame_features").output.shape) == (None, 3, 3 * 3 * 64)
    with pytest.raises(ValueError, match="width"):
        build_model("cnn_lstm", input_shape=(3, 48, 48, 3), width=2.0,
                    backbone="mobilenet_v2")


def test_cnn_lstm_keypoint_readout(tmp_path):
    model = build_model("cnn_lstm", input_shape=(3, 48, 48, 3), lstm_units=(8,),
                        backbone="small_hires", readout="keypoints", keypoints=5,
                        frame_difference=True, task="classification", num_classes=4)
    # 5 keypoints (x, y) next to the 32 channels of the max-pooled 24 x 24 map.
    assert tuple(model.get_layer("frame_features").output.shape) == (None, 3, 2 * 5 + 32)
    encoder = model.get_layer("frame_features").layer
    assert tuple(encoder.get_layer("keypoint_heat").output.shape) == (None, 24, 24, 5)
    clips = np.random.default_rng(0).integers(0, 256, (2, 3, 48, 48, 3)).astype("uint8")
    path = str(tmp_path / "keypoints.keras")
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(clips), model(clips),
                               atol=1e-6)
    with pytest.raises(ValueError, match="readout must be one of flatten, keypoints"):
        build_model("cnn_lstm", input_shape=(3, 48, 48, 3), readout="argmax")
