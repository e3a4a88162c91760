"""keras_video.convert: the torch-free .pth reader, key checking, the head, the CLI.

Every checkpoint is written here by torch.save into tmp_path; nothing is downloaded.
"""

import collections
import os

import numpy as np
import pytest

from conftest import ROOT, run_module
from keras_video.conversion import torch_file, torch_weights
from keras_video.models import pretrained

torch = pytest.importorskip("torch")

import torch_reference_3d as ref  # noqa: E402


def _tricky_state_dict():
    big = torch.arange(60, dtype=torch.float32).reshape(3, 4, 5)
    return collections.OrderedDict([
        ("conv.weight", torch.randn(4, 3, 3, 3)),
        ("transposed", big.transpose(0, 2)),  # non-contiguous: strides (1, 5, 20)
        ("offset_view", big[1, 1:3, ::2]),  # storage offset 25, stride (5, 2)
        ("bn.num_batches_tracked", torch.tensor(7, dtype=torch.int64)),
        ("double", torch.randn(3, dtype=torch.float64)),
        ("half", torch.randn(5).half()),
        ("bfloat16", torch.randn(5).bfloat16()),
        ("mask", torch.tensor([True, False])),
        ("empty", torch.zeros(0, 3)),
        ("parameter", torch.nn.Parameter(torch.randn(2))),
    ])


def _numpy(tensor):
    tensor = tensor.detach()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_reader_equals_torch_save(tmp_path, zip_format):
    state_dict = _tricky_state_dict()
    checkpoint = {"state_dict": state_dict, "arch": "resnet", "epoch": 200,
                  "optimizer": {"state": {0: {"momentum_buffer": torch.ones(3)}},
                                "param_groups": [{"lr": 0.1, "params": [0]}]}}
    path = tmp_path / "checkpoint.pth"
    # legacy: the format of PyTorch < 1.6, the age of the published 3D-ResNets files
    torch.save(checkpoint, path, _use_new_zipfile_serialization=zip_format)
    loaded = torch_file.read_torch_file(path)
    assert (loaded["arch"], loaded["epoch"]) == ("resnet", 200)
    assert list(loaded["state_dict"]) == list(state_dict)
    for key, tensor in state_dict.items():
        expected, actual = _numpy(tensor), loaded["state_dict"][key]
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, key
        np.testing.assert_array_equal(actual, expected, err_msg=key)
    assert loaded["state_dict"]["bn.num_batches_tracked"].dtype == np.int64
    np.testing.assert_array_equal(loaded["optimizer"]["state"][0]["momentum_buffer"], 1.0)

    state, info = torch_file.torch_state_dict(path)
    assert info == {"source": str(path), "arch": "resnet", "epoch": 200}
    assert set(state) == set(state_dict)


class _Trap:
    """Unpickling this with pickle.load would delete `path`."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.remove, (self.path,)


def test_reader_runs_no_code_from_the_file(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("still here")
    path = tmp_path / "trap.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}, "trap": _Trap(str(victim))}, path)
    loaded = torch_file.read_torch_file(path)
    assert victim.exists()
    assert type(loaded["trap"]).__name__.endswith("remove")  # an inert placeholder
    np.testing.assert_array_equal(loaded["state_dict"]["w"], [1.0, 1.0])


def test_reader_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        torch_file.read_torch_file(tmp_path / "nowhere.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="junk.pth"):
        torch_file.read_torch_file(junk)


def _small_r3d(n_classes=7, seed=0, **options):
    torch.manual_seed(seed)
    net = ref.ResNet(10, widen_factor=0.125, n_classes=n_classes, **options)
    with torch.no_grad():  # BN statistics differ from the Keras initial 0 / 1
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
    return net.eval()


def test_bad_keys_are_named_in_one_error_and_nothing_is_assigned():
    state_dict = {k: v.numpy() for k, v in _small_r3d().state_dict().items()}
    state_dict["layer5.0.conv1.weight"] = state_dict["conv1.weight"]
    del state_dict["layer3.0.bn2.running_var"]
    state_dict["layer2.0.conv2.weight"] = np.zeros((16, 16, 1, 3, 3), "float32")
    from keras_video.models import build_model

    model = build_model("r3d10", num_classes=7, widen_factor=0.125)
    before = model.get_layer("conv1").kernel.numpy()
    with pytest.raises(ValueError) as error:
        torch_weights.load_state_dict(model, state_dict)
    message = str(error.value)
    assert "unused key 'layer5.0.conv1.weight'" in message
    assert "missing key 'layer3.0.bn2.running_var'" in message
    assert "shape mismatch for 'layer2.0.conv2.weight'" in message
    np.testing.assert_array_equal(model.get_layer("conv1").kernel.numpy(), before)
    # and through from_torch, with the checkpoint's own arch named
    with pytest.raises(ValueError, match="saved as arch 'resnet2p1d-18'"):
        pretrained.from_torch("r3d10", {"state_dict": state_dict, "arch": "resnet2p1d-18"},
                           widen_factor=0.125)


def test_num_classes_from_the_checkpoint_and_the_head_skip():
    net = _small_r3d(n_classes=7, seed=1)
    checkpoint = {"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()},
                  "arch": "resnet-10", "epoch": 200}
    model = pretrained.from_torch("r3d10", checkpoint, widen_factor=0.125)
    assert model.output.shape == (None, 7)
    np.testing.assert_array_equal(model.get_layer("fc").kernel.numpy(),
                                  net.fc.weight.detach().numpy().T)

    with pytest.raises(ValueError, match=r"shape mismatch for 'fc\.weight'(.|\n)*skip_head"):
        pretrained.from_torch("r3d10", checkpoint, widen_factor=0.125, num_classes=3)
    model = pretrained.from_torch("r3d10", checkpoint, widen_factor=0.125, num_classes=3,
                               skip_head=True)
    assert model.get_layer("fc").kernel.shape == (64, 3)  # fresh, not the file's 7
    np.testing.assert_array_equal(
        model.get_layer("layer4_0_downsample_1").moving_variance.numpy(),
        net.layer4[0].downsample[1].running_var.numpy())


def test_c3d_file_without_head_needs_num_classes():
    net = ref.C3D(5, width=0.0625, flat_features=32)  # 32 channels x 1 x 1 x 1
    to_file = {module: key for key, module in ref.SEED_FILE_KEYS.items()}
    headless = {f"{to_file[k.rpartition('.')[0]]}.{k.rpartition('.')[2]}": v
                for k, v in net.state_dict().items() if not k.startswith("fc8")}
    config = dict(width=0.0625, input_shape=(16, 16, 16, 3))
    with pytest.raises(ValueError, match="no 'fc8.weight'"):
        pretrained.from_torch("c3d", headless, **config)
    with pytest.raises(ValueError, match="missing key 'fc8.weight'"):
        pretrained.from_torch("c3d", headless, num_classes=5, **config)
    model = pretrained.from_torch("c3d", headless, num_classes=5, skip_head=True, **config)
    np.testing.assert_array_equal(model.get_layer("conv5b").bias.numpy(),
                                  net.conv5b.bias.detach().numpy())


@pytest.mark.slow
def test_cli_converts_without_torch_and_reports_the_head(tmp_path):
    net = _small_r3d(n_classes=7, seed=2, shortcut_type="A")
    checkpoint = tmp_path / "r3d10_K_200ep.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()},
                "arch": "resnet-10", "epoch": 200}, checkpoint)
    # A `torch` package that fails to import: the converter must not need PyTorch.
    blocker = tmp_path / "no_torch" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch is blocked here')\n")
    env = {"PYTHONPATH": f"{blocker.parent}{os.pathsep}{ROOT}"}
    output = tmp_path / "r3d10.weights.h5"
    result = run_module("keras_video.convert", "--arch=r3d10", f"--checkpoint={checkpoint}",
                        f"--output={output}", "--num_classes=3", "--shortcut_type=A",
                        "--widen_factor=0.125", env=env)
    assert result.returncode == 0, result.stderr
    assert "every layer but the head 'fc'" in result.stdout
    assert "7 classes, the model 3" in result.stdout

    from keras_video.models import build_model

    model = build_model("r3d10", num_classes=3, widen_factor=0.125, shortcut_type="A")
    model.load_weights(str(output))
    np.testing.assert_array_equal(model.get_layer("conv1").kernel.numpy(),
                                  net.conv1.weight.detach().numpy().transpose(2, 3, 4, 1, 0))
    np.testing.assert_array_equal(model.get_layer("layer3_0_bn1").moving_mean.numpy(),
                                  net.layer3[0].bn1.running_mean.numpy())

    # The wrong architecture: one clean error naming keys, exit status 2, no traceback.
    result = run_module("keras_video.convert", "--arch=r2plus1d18", f"--checkpoint={checkpoint}",
                        f"--output={output}", env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "unused key 'conv1.weight'" in result.stderr
    assert "missing key 'conv1_s.weight'" in result.stderr


def test_finetune_loads_a_published_style_pth_into_a_new_class_count(tmp_path):
    # keras_video.models.pretrained converts .pth files through from_torch with the trainer's
    # model_config (no num_classes: the source model keeps the file's head).
    from keras_video.models import pretrained
    from keras_video.models import build_model

    net = _small_r3d(n_classes=7, seed=3)
    path = str(tmp_path / "r3d10_K_200ep.pth")
    torch.save({"state_dict": net.state_dict(), "arch": "resnet-10", "epoch": 200}, path)
    config = dict(input_shape=(8, 32, 32, 3), widen_factor=0.125, dropout=0.0,
                  conv1_t_size=7, conv1_t_stride=1, no_max_pool=False, shortcut_type="B")
    model = build_model("r3d10", num_classes=4, **config)
    report = pretrained.load_pretrained(model, path, "r3d10", dict(num_classes=4, **config))
    assert "every layer but the head 'fc'" in report
    np.testing.assert_array_equal(model.get_layer("layer2_0_downsample_0").kernel.numpy(),
                                  net.layer2[0].downsample[0].weight.detach().numpy().transpose(2, 3, 4, 1, 0))
