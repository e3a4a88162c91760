"""Fine-tuning pieces: the head, freezing, pretrained loading, per-layer learning rates."""

import os

import keras
import numpy as np
import pytest

from keras_video import optimizers
from keras_video.models import pretrained
from keras_video.training.configs import TrainConfig


def _classifier(num_classes, hidden=4, name="toy"):
    inputs = keras.Input((6,))
    x = keras.layers.Dense(hidden, name="layer1_fc")(inputs)
    x = keras.layers.BatchNormalization(name="layer1_bn")(x)
    x = keras.layers.Dense(hidden, activation="relu", name="layer2_fc")(x)
    x = keras.layers.Dense(num_classes, name="fc")(x)
    outputs = keras.layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def test_head_is_last_layer_with_weights_also_inside_nested_models():
    assert pretrained.head_layer(_classifier(3)).name == "fc"
    from keras_video.models import build_model

    nested = build_model("cnn_lstm", input_shape=(4, 16, 16, 1), task="classification",
                         num_classes=3, lstm_units=(8,))
    assert pretrained.head_layer(nested).name == "predictions"


def test_freeze_until_freezes_the_layers_before_the_stage():
    model = _classifier(3)
    frozen = pretrained.freeze_until(model, "layer2")
    assert [layer.name for layer in frozen if layer.weights] == ["layer1_fc", "layer1_bn"]
    assert not model.get_layer("layer1_fc").trainable
    assert model.get_layer("layer2_fc").trainable and model.get_layer("fc").trainable
    with pytest.raises(ValueError, match="no layer .* starts with"):
        pretrained.freeze_until(_classifier(3), "layer9")


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(size=v.shape).astype("float32"))


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_pretrained_with_another_class_count_loads_all_but_the_head(tmp_path, suffix):
    source = _classifier(7)
    _randomize(source, 0)
    path = str(tmp_path / f"pretrained{suffix}")
    source.save(path) if suffix == ".keras" else source.save_weights(path)

    target = _classifier(3)
    head_before = target.get_layer("fc").kernel.numpy()
    report = pretrained.load_pretrained(target, path, "toy")
    assert "every layer but the head 'fc'" in report
    for name in ("layer1_fc", "layer1_bn", "layer2_fc"):
        for a, b in zip(source.get_layer(name).weights, target.get_layer(name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(target.get_layer("fc").kernel.numpy(), head_before)

    same = _classifier(7)
    assert "the head 'fc' included" in pretrained.load_pretrained(same, path, "toy")
    np.testing.assert_array_equal(same.get_layer("fc").kernel.numpy(),
                                  source.get_layer("fc").kernel.numpy())


def test_pretrained_of_another_architecture_is_an_error_naming_the_layers(tmp_path):
    path = str(tmp_path / "other.weights.h5")
    _classifier(3, hidden=5).save_weights(path)
    with pytest.raises(ValueError, match="layer1_fc/kernel.*layer2_fc"):
        pretrained.load_pretrained(_classifier(3, hidden=4), path, "toy")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        pretrained.load_pretrained(_classifier(3), str(tmp_path / "missing.pth"), "toy")


def test_head_learning_rate_multiplier_scales_only_the_head_update():
    config = TrainConfig.from_settings(dict(optimizer="sgd", lr=0.01, momentum=0.0,
                                                lr_schedule="constant"))
    x = np.random.default_rng(1).normal(size=(8, 6)).astype("float32")
    y = np.arange(8) % 3
    updates = {}
    for multiplier in (1.0, 10.0):
        keras.utils.set_random_seed(0)
        model = _classifier(3)
        start = {v.path: v.numpy() for v in model.trainable_weights}
        head = {v.path: multiplier for v in pretrained.head_layer(model).trainable_weights}
        model.compile(optimizers.make_optimizer(config.optimization, 1, head),
                      keras.losses.SparseCategoricalCrossentropy())
        model.train_on_batch(x, y)
        updates[multiplier] = {v.path: v.numpy() - start[v.path]
                               for v in model.trainable_weights}
    for path, delta in updates[1.0].items():
        factor = 10.0 if path.startswith("fc/") else 1.0
        np.testing.assert_allclose(updates[10.0][path], factor * delta, rtol=1e-4,
                                   atol=1e-7, err_msg=path)
    assert np.abs(updates[1.0]["fc/kernel"]).max() > 0


def test_optimizer_with_multipliers_round_trips_through_saving(tmp_path):
    model = _classifier(3)
    config = TrainConfig.from_settings(dict(optimizer="sgd", lr=0.01, lr_schedule="step",
                                                lr_step_epochs=2))
    model.compile(optimizers.make_optimizer(config.optimization, 5, {"fc/kernel": 10.0}),
                  keras.losses.SparseCategoricalCrossentropy())
    model.train_on_batch(np.zeros((2, 6), "float32"), np.array([0, 1]))
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer).__name__ == "SGDWithLrMultipliers"
    assert loaded.optimizer.lr_multipliers == {"fc/kernel": 10.0}
