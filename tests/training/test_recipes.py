"""The UCF101 recipes run one step on the fake UCF101 tree, so they never rot.

Every setting of each recipe is kept (data layout, split, transforms, optimizer,
schedule, freezing, head learning rate, pretrained loading with another class count)
except the size of the model (width 1/8) and of the run (one step of 2 clips).
"""

import json
import os

import keras
import numpy as np
import pytest

from keras_video.conversion.torch_weights import head_layer
from keras_video.models import build_model
from keras_video.training import configs, trainer


def assert_fraction_of_videos(results):
    """Video top-1 is k of the N held-out videos right: a multiple of 1 / N."""
    n = results["video_num_videos"]
    assert n > 0
    right = results["video_top1"] * n
    assert 0 <= round(right) <= n and abs(right - round(right)) < 1e-9, results


@pytest.mark.parametrize("experiment", ["ucf101_c3d_sports1m", "ucf101_r3d50_km"])
def test_recipe_runs_one_step_from_pretrained_weights(experiment, fake_ucf101, tmp_path):
    recipe = configs.EXPERIMENTS[experiment]
    small = dict(width=0.125, batch_size=2, epochs=1, steps_per_epoch=1, quiet=True)
    # Pretrained weights of the same architecture with another class count (the
    # published files have 487 / 1039 classes), so the head must be re-initialised.
    source_config = configs.make_config(experiment, dict(small, data=f"ucf101:{fake_ucf101}"))
    source = build_model(recipe["model"],
                         **dict(source_config.model_config(num_classes=7)))
    pretrained = str(tmp_path / "pretrained.weights.h5")
    source.save_weights(pretrained)

    config = configs.make_config(experiment, dict(
        small, data=f"ucf101:{fake_ucf101}", pretrained=pretrained,
        model_dir=str(tmp_path / "run")))
    results = trainer.train(config)
    assert_fraction_of_videos(results)

    with open(tmp_path / "run" / "config.json") as f:
        run = json.load(f)
    assert run["train"]["optimizer"] == "sgd" and run["clip"]["flip"] is True
    assert run["eval_data"].endswith(":test")
    model = keras.saving.load_model(str(tmp_path / "run" / "best.keras"), compile=False)
    head = head_layer(model).name
    for layer in source.layers:  # frozen layers keep the pretrained values exactly
        if layer.weights and layer.name != head and not model.get_layer(layer.name).trainable:
            for a, b in zip(layer.weights, model.get_layer(layer.name).weights):
                np.testing.assert_array_equal(a.numpy(), b.numpy())
    if recipe.get("freeze_until"):
        assert not model.get_layer("conv1").trainable and model.get_layer(head).trainable
    assert os.path.isdir(tmp_path / "run" / "export")


def test_motion_c3d_recipe_trains_a_step_and_restores_the_dtype_policy(tmp_path):
    """The motion benchmark's C3D (BatchNorm, bfloat16 compute) on a few generated
    videos; train() leaves the caller's dtype policy as it found it."""
    config = configs.make_config("motion_c3d", dict(
        width=0.125, num_train=16, num_val=8, num_eval=8, batch_size=4, epochs=1,
        steps_per_epoch=1, quiet=True, model_dir=str(tmp_path / "run"),
        data_dir=str(tmp_path / "data")))
    assert config.model.batch_norm and config.runtime.mixed_precision
    results = trainer.train(config)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert_fraction_of_videos(results)
    model = keras.saving.load_model(str(tmp_path / "run" / "best.keras"), compile=False)
    assert model.get_layer("bn3a").dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("fc8").dtype_policy.name == "float32"  # float32 logits
