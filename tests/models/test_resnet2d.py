"""keras_video.models.resnet2d against a plain PyTorch ResNet with torchvision's layout."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from keras_video.conversion import torch_weights  # noqa: E402
from keras_video.models import resnet2d  # noqa: E402
import torch_reference  # noqa: E402

TOLERANCE = 1e-4


def _random_torch_resnet(depth, seed=0):
    """Eval-mode reference with torchvision's conv init and randomised BatchNorm.

    Random BN statistics and affine parameters (instead of 0/1) make a wrong epsilon,
    a swapped mean/variance or gamma/beta show up in the logits. The last BN of each
    residual branch gets a smaller scale so activations do not grow block after block
    (logits stay at a few units, where an absolute 1e-4 bound is a tight one).
    """
    torch.manual_seed(seed)
    net = torch_reference.resnet(depth)
    for name, module in net.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, torch.nn.BatchNorm2d):
            with torch.no_grad():
                module.weight.uniform_(*((0.3, 0.9) if name.endswith("bn2") else (0.5, 1.5)))
                module.bias.normal_(0.0, 0.2)
                module.running_mean.normal_(0.0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _max_abs_diff(torch_net, keras_model, height, width, seed=1):
    images = np.random.default_rng(seed).normal(size=(2, height, width, 3)).astype("float32")
    with torch.no_grad():
        expected = torch_net(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
    actual = np.asarray(keras_model(images, training=False))
    assert actual.shape == expected.shape
    assert 0.5 < np.abs(expected).max() < 20  # see _random_torch_resnet
    return float(np.abs(actual - expected).max())


@pytest.fixture(scope="module")
def resnet18_pair():
    torch_net = _random_torch_resnet(18)
    keras_model = resnet2d.resnet_classifier(18, input_shape=(None, None, 3))
    torch_weights.load_state_dict(keras_model, torch_net.state_dict())
    return torch_net, keras_model


@pytest.fixture(scope="module")
def backbone18():
    return resnet2d.resnet_backbone(18)


@pytest.mark.parametrize("height,width", [(224, 224), (100, 130)])
def test_resnet18_matches_pytorch(resnet18_pair, height, width):
    # 100x130 gives odd sizes after several stride-2 layers: the Keras "same" padding trap.
    diff = _max_abs_diff(*resnet18_pair, height, width)
    print(f"resnet18 {height}x{width}: max |keras - torch| = {diff:.2e}")
    assert diff <= TOLERANCE


def test_resnet34_matches_pytorch():
    torch_net = _random_torch_resnet(34, seed=2)
    keras_model = resnet2d.resnet_classifier(34, input_shape=(64, 80, 3))
    torch_weights.load_state_dict(keras_model, torch_net.state_dict())
    diff = _max_abs_diff(torch_net, keras_model, 64, 80)
    print(f"resnet34 64x80: max |keras - torch| = {diff:.2e}")
    assert diff <= TOLERANCE


@pytest.mark.parametrize("depth,num_keys,num_params", [(18, 122, 11_689_512), (34, 218, 21_797_672)])
def test_reference_has_torchvision_layout(depth, num_keys, num_params):
    # torchvision's resnet18/34: 122/218 state-dict entries, 11.69M/21.80M parameters.
    net = torch_reference.resnet(depth)
    assert len(net.state_dict()) == num_keys
    assert sum(p.numel() for p in net.parameters()) == num_params
    assert "layer2.0.downsample.0.weight" in net.state_dict()
    assert "layer1.0.downsample.0.weight" not in net.state_dict()


def test_backbone_feature_map(backbone18):
    assert backbone18.output.shape[1:] == (None, None, 512)
    features = backbone18(np.zeros((1, 224, 224, 3), "float32"))
    assert features.shape == (1, 7, 7, 512)


def test_backbone_loads_without_head(backbone18, tmp_path):
    torch_net = _random_torch_resnet(18)
    state_dict = torch_net.state_dict()
    with pytest.raises(ValueError, match=r"unused key 'fc\.weight'"):
        torch_weights.load_state_dict(backbone18, state_dict)
    torch_weights.load_state_dict(backbone18, state_dict, skip_head=True)
    np.testing.assert_array_equal(
        backbone18.get_layer("layer3_1_bn2").moving_variance.numpy(),
        state_dict["layer3.1.bn2.running_var"].numpy(),
    )
    # The same through a .pth file, as torchvision ships them.
    path = tmp_path / "resnet18.pth"
    torch.save(state_dict, path)
    torch_weights.load_torch_file(backbone18, path, skip_head=True)


def test_module_prefix_accepted(backbone18):
    state_dict = _random_torch_resnet(18, seed=3).state_dict()
    prefixed = {f"module.{key}": value.numpy() for key, value in state_dict.items()}
    torch_weights.load_state_dict(backbone18, prefixed, skip_head=True)
    np.testing.assert_allclose(
        backbone18.get_layer("layer2_0_downsample_0").kernel.numpy(),
        state_dict["layer2.0.downsample.0.weight"].numpy().transpose(2, 3, 1, 0),
    )


def test_classifier_with_new_head_skips_fc():
    keras_model = resnet2d.resnet_classifier(18, input_shape=(64, 64, 3), num_classes=10)
    state_dict = torch_reference.resnet(18).state_dict()
    with pytest.raises(ValueError, match="shape mismatch for 'fc.weight'"):
        torch_weights.load_state_dict(keras_model, state_dict)
    torch_weights.load_state_dict(keras_model, state_dict, skip_head=True)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda sd: sd.update({"layer5.0.conv1.weight": sd["conv1.weight"]}), "layer5.0.conv1.weight"),
        (lambda sd: sd.pop("layer4.1.bn2.running_mean"), "layer4.1.bn2.running_mean"),
        (lambda sd: sd.update({"layer1.0.conv2.weight": np.zeros((64, 64, 1, 1), "float32")}),
         "layer1.0.conv2.weight"),
    ],
    ids=["extra", "missing", "wrong_shape"],
)
def test_bad_state_dict_raises_naming_the_key(backbone18, change, message):
    state_dict = {key: value.numpy() for key, value in torch_reference.resnet(18).state_dict().items()}
    change(state_dict)
    before = backbone18.get_layer("conv1").kernel.numpy()
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        torch_weights.load_state_dict(backbone18, state_dict, skip_head=True)
    # Validation happens before any assignment: a failed load changes nothing.
    np.testing.assert_array_equal(backbone18.get_layer("conv1").kernel.numpy(), before)


NO_TORCH = r"""
import sys
import numpy as np
sys.modules["torch"] = None  # importing torch now fails: the reader must not need it
from keras_video.models.backbones import frame_backbone
model, _ = frame_backbone("resnet18", (64, 64, 3), weights=sys.argv[1])
np.save(sys.argv[2], model.get_layer("layer3_1_bn2").moving_variance.numpy())
"""


@pytest.mark.slow
def test_backbone_weights_pth_needs_no_pytorch(tmp_path):
    """--backbone_weights=x.pth reads the file with keras_video's own reader, as
    --pretrained does (keras_video.conversion.torch_file)."""
    import subprocess
    import sys

    from conftest import ROOT

    state_dict = _random_torch_resnet(18, seed=5).state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(state_dict, path)
    out = tmp_path / "var.npy"
    result = subprocess.run([sys.executable, "-c", NO_TORCH, str(path), str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={"PYTHONPATH": ROOT, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_array_equal(np.load(out),
                                  state_dict["layer3.1.bn2.running_var"].numpy())
