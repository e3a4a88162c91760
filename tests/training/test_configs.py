"""keras_video.training.configs: every setting has a line of help and a group, a setting that
does nothing for the chosen model is refused, and every named experiment is valid."""

import dataclasses
import subprocess
import sys

import pytest

from conftest import ROOT
from keras_video.training import configs


def test_every_setting_has_help_and_a_group():
    for name, field in configs.setting_fields().items():
        assert field.metadata["help"], name
        assert field.metadata["group"] in configs.GROUPS, name


def test_settings_are_nested_by_group_and_flat_names_round_trip():
    config = configs.make_config("motion_c3d", dict(lr=0.5, model_dir="somewhere"))
    assert config.model.name == "c3d" and config.model.batch_norm is True
    assert config.data.source == "synthetic:motion" and config.data.frames == 16
    assert config.optimization.lr == 0.5 and config.runtime.model_dir == "somewhere"
    assert config.dff.key_range == configs.DFFConfig().key_range
    settings = config.settings()
    assert settings["model"] == "c3d" and settings["data"] == "synthetic:motion"
    assert configs.TrainConfig.from_settings(settings) == config
    changed = config.replace(seed=7)
    assert changed.runtime.seed == 7 and config.runtime.seed == 0
    # Each group's settings live in its section (the dataclass of that group).
    for section, cls in configs.SECTIONS.items():
        groups = {f.metadata["group"] for f in dataclasses.fields(cls)}
        assert len(groups) == 1, (section, groups)
    with pytest.raises(ValueError, match="unknown settings: nonsense"):
        configs.TrainConfig.from_settings({"nonsense": 1})


@pytest.mark.parametrize("name", sorted(configs.EXPERIMENTS))
def test_every_experiment_applies_to_its_model(name):
    config = configs.make_config(name)
    assert config.experiment == name


@pytest.mark.parametrize("overrides,message", [
    (dict(model="r3d18", batch_norm=True),
     "--batch_norm does not apply to --model=r3d18; it applies to c3d"),
    (dict(model="frame_cnn", readout="keypoints"),
     "--readout does not apply to --model=frame_cnn; it applies to cnn_lstm"),
    (dict(model="c3d", conv1_t_size=3), "--conv1_t_size does not apply to --model=c3d; "
                                        "it applies to r2plus1d*, r3d*"),
    (dict(model="frame_seg", flow_pretrain_steps=10),
     "--flow_pretrain_steps does not apply to --model=frame_seg; it applies to dff, "
     "dff_rfcn"),
    (dict(model="r3d50", key_range=3),
     "--key_range does not apply to --model=r3d50; it applies to dff, dff_rfcn, frame_seg, "
     "rfcn"),
    (dict(model="rfcn", flow_pretrain_steps=10),
     "--flow_pretrain_steps does not apply to --model=rfcn; it applies to dff, dff_rfcn"),
    (dict(model="dff", train_task=True),
     "--train_task does not apply to --model=dff; it applies to dff_rfcn"),
    (dict(model="rfcn", flow_width=0.5),
     "--flow_width does not apply to --model=rfcn; it applies to dff, dff_rfcn"),
    (dict(model="dff", pretrained="x.pth"), "--pretrained does not apply to --model=dff"),
])
def test_a_setting_that_does_not_apply_is_refused(overrides, message):
    with pytest.raises(ValueError, match="^" + message.replace("*", r"\*")):
        configs.make_config("", overrides)


def test_a_setting_from_the_experiment_is_named_as_such():
    with pytest.raises(ValueError, match=r"--batch_norm \(from --experiment=motion_c3d\) "
                                         "does not apply to --model=r3d18"):
        configs.make_config("motion_c3d", dict(model="r3d18"))


def test_settings_at_their_default_pass_for_any_model():
    for model in ("c3d", "r3d18", "frame_cnn", "dff", "frame_seg", "cnn_lstm"):
        assert configs.make_config("", dict(model=model, batch_size=4)).model.name == model


@pytest.mark.slow
def test_train_help_lists_the_settings_by_group_with_their_models():
    result = subprocess.run([sys.executable, "-m", "keras_video.train", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    for group in configs.GROUPS:
        assert f"\n{group} settings:\n" in out
    for name in configs.setting_fields():
        assert f"  --{name}  (default: " in out, name
    assert "applies to: c3d\n" in out  # --batch_norm
    assert out.index("model settings:") < out.index("--batch_norm") < out.index(
        "optimisation settings:")


def test_parse_setting_gives_the_settings_type():
    assert configs.parse_setting("epochs=3") == ("epochs", 3)
    assert configs.parse_setting("lr=0.5") == ("lr", 0.5)
    assert configs.parse_setting("anchor_scales=2,4,8") == ("anchor_scales", (2, 4, 8))
    assert configs.parse_setting("ohem=false") == ("ohem", False)
    assert configs.parse_setting("backbone=resnet50") == ("backbone", "resnet50")
    with pytest.raises(ValueError, match="^nope=1: no setting 'nope'"):
        configs.parse_setting("nope=1")
