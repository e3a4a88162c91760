"""Deep Feature Flow networks: ResNet-50 / dilated ResNets against PyTorch, DFF shapes,
the key == current rule, initialisation, saving, gradients, the per-frame baseline."""

import json
import os

import keras
import numpy as np
import pytest

from conftest import TESTS, perturbed_dff
from keras_video.conversion import torch_weights
from keras_video.layers import FlowWarp
from keras_video.models import build_model, dff, model_names, resnet2d

torch = pytest.importorskip("torch")
nn = torch.nn

SIZE = (72, 100, 3)  # not multiples of 16: grids round up (5 x 7 features)
SMALL = dict(num_classes=4, input_shape=SIZE, width=0.125, feature_width=32)


# --- A PyTorch ResNet with torchvision's module names, Bottleneck and dilation --------

class TorchBlock(nn.Module):
    """BasicBlock (expansion 1) or Bottleneck (expansion 4), torchvision names."""

    def __init__(self, inplanes, planes, stride, dilation, bottleneck):
        super().__init__()
        out = planes * (4 if bottleneck else 1)
        if bottleneck:
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation,
                                   dilation=dilation, bias=False)
            self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out)
        else:
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=dilation,
                                   dilation=dilation, bias=False)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=dilation, dilation=dilation,
                                   bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(planes), nn.BatchNorm2d(planes)
        self.bottleneck = bottleneck
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False),
                                            nn.BatchNorm2d(out))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.bottleneck:
            y = self.bn3(self.conv3(torch.relu(y)))
        return torch.relu(y + identity)


class TorchResNet(nn.Module):
    BLOCKS = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3)}

    def __init__(self, depth, dilate_last=False):
        super().__init__()
        bottleneck = depth >= 50
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for stage, (blocks, planes) in enumerate(zip(self.BLOCKS[depth], (64, 128, 256, 512)), 1):
            dilation = 2 if dilate_last and stage == 4 else 1
            stride = 1 if stage == 1 or dilation > 1 else 2
            modules = []
            for index in range(blocks):
                modules.append(TorchBlock(inplanes, planes, stride if index == 0 else 1,
                                          dilation, bottleneck))
                inplanes = planes * (4 if bottleneck else 1)
            setattr(self, f"layer{stage}", nn.Sequential(*modules))
        self.fc = nn.Linear(inplanes, 1000)

    def features(self, x):
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


def _random_torch_resnet(depth, dilate_last=False, seed=0):
    """Eval mode, random BN statistics (see tests/test_resnet2d.py); the last BN of each
    residual branch scaled down so activations stay at a few units through 16 blocks."""
    torch.manual_seed(seed)
    net = TorchResNet(depth, dilate_last)
    last_bn = "bn3" if depth >= 50 else "bn2"
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            with torch.no_grad():
                module.weight.uniform_(*((0.2, 0.6) if name.endswith(last_bn) else (0.5, 1.5)))
                module.bias.normal_(0.0, 0.2)
                module.running_mean.normal_(0.0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _images(height, width, seed=1):
    return np.random.default_rng(seed).normal(size=(2, height, width, 3)).astype("float32")


def test_resnet50_has_torchvision_layout_and_matches_pytorch():
    net = _random_torch_resnet(50)
    # torchvision's resnet50: 320 state-dict entries, 25,557,032 parameters.
    assert len(net.state_dict()) == 320
    assert sum(p.numel() for p in net.parameters()) == 25_557_032
    model = resnet2d.resnet_classifier(50, input_shape=(64, 80, 3))
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 25_557_032
    torch_weights.load_state_dict(model, net.state_dict())
    images = _images(64, 80)
    with torch.no_grad():
        expected = net(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
    assert 0.5 < np.abs(expected).max() < 20
    np.testing.assert_allclose(model(images, training=False), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("depth", [18, 50])
def test_dilated_backbone_matches_pytorch_at_output_stride_16(depth):
    net = _random_torch_resnet(depth, dilate_last=True, seed=depth)
    model = resnet2d.resnet_backbone(depth, SIZE, output_stride=16)
    torch_weights.load_state_dict(model, net.state_dict(), skip_head=True)
    images = _images(*SIZE[:2])
    with torch.no_grad():
        expected = net.features(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
    expected = expected.transpose(0, 2, 3, 1)
    assert expected.shape == (2, 5, 7, 512 if depth == 18 else 2048)  # ceil(72/16), ceil(100/16)
    actual = model(images, training=False).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-4 * np.abs(expected).max(), rtol=0)


def test_real_torchvision_state_dicts_load():
    # Key names and shapes of torchvision 0.26's resnet18/34/50/101 state_dicts (read
    # there from `torchvision.models.resnetN(weights=None)`): every key must find its
    # layer in our dilated backbones and the classifier, and every layer its key.
    with open(os.path.join(TESTS, "fixtures",
                           "torchvision_resnet_shapes.json")) as f:
        manifest = json.load(f)
    rng = np.random.default_rng(0)
    for name, shapes in manifest.items():
        state_dict = {key: rng.normal(size=shape).astype("float32") for key, shape in
                      shapes.items()}
        depth = int(name[6:])
        backbone = resnet2d.resnet_backbone(depth, (32, 32, 3), output_stride=16)
        torch_weights.load_state_dict(backbone, state_dict, skip_head=True)
        np.testing.assert_array_equal(backbone.get_layer("layer4_1_conv2").kernel.numpy(),
                                      state_dict["layer4.1.conv2.weight"].transpose(2, 3, 1, 0))
        if depth == 50:  # the fc too
            classifier = resnet2d.resnet_classifier(depth, (32, 32, 3))
            torch_weights.load_state_dict(classifier, state_dict)


def test_width_multiplier_and_output_strides():
    assert resnet2d.resnet_backbone(50, (64, 64, 3), width=0.25).output.shape[1:] == (2, 2, 512)
    stride8 = resnet2d.resnet_backbone(18, (64, 64, 3), output_stride=8)
    assert stride8.output.shape[1:] == (8, 8, 512)
    with pytest.raises(ValueError, match="output_stride"):
        resnet2d.resnet_backbone(18, output_stride=4)


# --- DFF ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_model("dff", **SMALL)


def _frames(seed, batch=2):
    return np.random.default_rng(seed).uniform(0, 255, (batch, *SIZE)).astype("float32")


def test_registry_and_shapes(model):
    assert {"dff", "frame_seg"} <= set(model_names())
    n_feat, n_flow, n_task = dff.dff_parts(model)
    assert n_feat.output.shape[1:] == (5, 7, 32)
    assert [tuple(o.shape[1:]) for o in n_flow.outputs] == [(5, 7, 2), (5, 7, 32)]
    assert n_task.output.shape[1:] == (72, 100, 4)
    out = model({"current": _frames(0), "key": _frames(1)})
    assert out.shape == (2, 72, 100, 4) and out.dtype == "float32"
    np.testing.assert_allclose(np.sum(out, axis=-1), 1.0, rtol=1e-5)
    # ResNet-50 trunk, small: 4 x 512 x 0.125 channels before the feature conv.
    big = build_model("dff", **{**SMALL, "backbone": "resnet50"})
    assert big.get_layer("feature_net").get_layer("resnet50").output.shape[1:] == (5, 7, 256)


def test_initial_flow_is_zero_and_scale_is_one(model):
    current, key = _frames(2), _frames(3)
    flow, scale = model.get_layer("flow_net")([current, key])
    np.testing.assert_array_equal(flow, 0.0)
    np.testing.assert_array_equal(scale, 1.0)
    # so at initialisation DFF is exactly the per-frame network on the key frame
    np.testing.assert_array_equal(model({"current": current, "key": key}),
                                  dff.per_frame_model(model)(key))


def test_flow_net_input_is_the_references(model):
    """get_flownet's input: both frames minus the config's PIXEL_MEANS (RGB), / 255,
    concatenated (current first), average-pooled by 2."""
    current, key = _frames(2), _frames(3)
    net = model.get_layer("flow_net")
    half = keras.Model(net.inputs, net.get_layer("half").output)([current, key])
    means = np.array([123.15, 115.90, 103.06], np.float32)
    pair = np.concatenate([(current - means) / 255.0, (key - means) / 255.0], axis=-1)
    b, h, w, c = pair.shape
    pooled = pair.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    np.testing.assert_allclose(half, pooled, atol=1e-6)

def test_key_equal_to_current_uses_unwarped_features_per_example(model):
    trained = perturbed_dff(model)
    n_feat, n_flow, n_task = dff.dff_parts(trained)
    current = _frames(4)
    key = current.copy()
    key[1] = _frames(5, batch=1)[0]  # example 0: key == current; example 1: a pair
    out = trained({"current": current, "key": key}).numpy()
    per_frame = dff.per_frame_model(trained)(current).numpy()
    np.testing.assert_array_equal(out[0], per_frame[0])

    flow, scale = n_flow([current, key])
    assert np.abs(flow[1]).max() > 0.1 and np.abs(np.asarray(scale[1]) - 1).max() > 0.01
    propagated = n_task(FlowWarp()([n_feat(key), flow]) * scale).numpy()
    np.testing.assert_allclose(out[1], propagated[1], atol=1e-6)
    assert np.abs(out[1] - per_frame[1]).max() > 0.05  # the pair really went through the warp
    assert out.max() > 0.9 and out.min() < 0.02  # confident outputs: the equalities mean something


def test_keras_round_trip(model, tmp_path):
    trained = perturbed_dff(model)
    inputs = {"current": _frames(6), "key": _frames(7)}
    trained.save(tmp_path / "dff.keras")
    loaded = keras.saving.load_model(tmp_path / "dff.keras")
    np.testing.assert_array_equal(loaded(inputs), trained(inputs))
    assert all(part is not None for part in dff.dff_parts(loaded))
    np.testing.assert_array_equal(dff.per_frame_model(loaded)(inputs["key"]),
                                  dff.per_frame_model(trained)(inputs["key"]))


def _gradients(model, current, key):
    """Largest |gradient| of a cross-entropy loss, per sub-model and layer name."""
    import tensorflow as tf

    labels = np.random.default_rng(8).integers(0, 4, current.shape[:3])
    with tf.GradientTape() as tape:
        probs = model({"current": current, "key": key}, training=True)
        loss = keras.losses.sparse_categorical_crossentropy(labels, probs)
    grads = dict(zip((id(w) for w in model.trainable_weights),
                     tape.gradient(loss, model.trainable_weights)))
    n_feat, n_flow, n_task = dff.dff_parts(model)
    parts = {"trunk": n_feat.get_layer("resnet18"), "feature_net": n_feat, "flow_net": n_flow,
             "task_net": n_task}

    def largest(part, layer=None):
        owner = parts[part] if layer is None else parts[part].get_layer(layer)
        values = [grads[id(w)] for w in owner.trainable_weights]
        return max(0.0 if g is None else float(np.abs(g).max()) for g in values)

    return largest


def test_gradients_reach_feature_and_flow_nets(model):
    current, key = _frames(9), _frames(10)
    # At initialisation the zero-initialised heads themselves learn first (their inputs
    # are not zero): the flow through FlowWarp's one-sided derivative, the scale
    # through the warped features. Layers before them get nothing yet (zero weights).
    fresh = _gradients(model, current, key)
    for part, layer in (("flow_net", "predict_flow"), ("flow_net", "scale_conv"),
                        ("feature_net", "feat_conv_3x3"), ("trunk", "conv1"),
                        ("task_net", "classifier")):
        assert fresh(part, layer) > 0, (part, layer)
    assert fresh("flow_net", "conv1") == 0
    # Once the heads are non-zero (as after a step), gradient reaches the flow net's first
    # layer too.
    trained = _gradients(perturbed_dff(model), current, key)
    assert trained("flow_net", "conv1") > 0 and trained("trunk", "conv1") > 0
    # With key == current the flow net is not used, so it gets no gradient at all.
    same = _gradients(perturbed_dff(model), current, current)
    assert same("flow_net") == 0
    assert same("trunk", "conv1") > 0 and same("feature_net", "feat_conv_3x3") > 0


def test_frame_seg_shares_names_and_weights_with_dff(model):
    baseline = build_model("frame_seg", **{k: v for k, v in SMALL.items()})
    assert [p is None for p in dff.dff_parts(baseline)] == [False, True, False]
    # A DFF data pipeline's {"current", "key"} examples feed it unchanged.
    current = _frames(11)
    out = baseline({"current": current, "key": _frames(12)})
    assert out.shape == (2, 72, 100, 4)
    # Same sub-model names: trained per-frame weights move into DFF part by part.
    target = keras.models.clone_model(model)
    for part in ("feature_net", "task_net"):
        target.get_layer(part).set_weights(baseline.get_layer(part).get_weights())
    np.testing.assert_array_equal(target({"current": current, "key": current}), out)


def test_mixed_precision_builds_and_keeps_float32_output():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        mixed = build_model("dff", **SMALL)
        assert mixed.get_layer("flow_net").get_layer("conv1").compute_dtype == "float16"
        out = mixed({"current": _frames(13), "key": _frames(14)})
    finally:
        keras.config.set_dtype_policy("float32")
    assert out.dtype == "float32" and np.all(np.isfinite(out))
    np.testing.assert_allclose(np.sum(out, axis=-1), 1.0, atol=1e-3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="backbone"):
        build_model("dff", **{**SMALL, "backbone": "vgg16"})
    with pytest.raises(ValueError, match="fixed frame size|H, W known"):
        build_model("dff", **{**SMALL, "input_shape": (None, None, 3)})
    with pytest.raises(ValueError, match="torchvision"):
        build_model("dff", **{**SMALL, "backbone_weights": "imagenet"})
