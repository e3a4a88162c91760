"""The 3D CNNs (c3d, r3d*, r2plus1d*) and frame_cnn: PyTorch parity through the real
converter, shapes of every registry model, naming, saving."""

import keras
import numpy as np
import pytest

from keras_video.models import pretrained
from keras_video.layers import Conv3D, ImageNormalization
from keras_video.models import build_model, resnet3d

torch = pytest.importorskip("torch")

from keras_video.models.pretrained import from_torch  # noqa: E402
import torch_reference  # noqa: E402
import torch_reference_3d as ref  # noqa: E402

TOLERANCE = 1e-4
KINETICS_MEAN = np.array([0.4345, 0.4051, 0.3775])
KINETICS_STD = np.array([0.2768, 0.2713, 0.2737])
C3D_MEAN_BGR = np.array([90.0, 98.0, 102.0])
MODELS_3D = ("c3d", "r3d10", "r3d18", "r3d34", "r3d50", "r3d101", "r3d152", "r3d200",
             "r2plus1d18", "r2plus1d34")


def _randomize(net, seed):
    """Eval-mode network with random weights, BN statistics and BN affine parameters.

    Random BN statistics and gamma/beta (instead of 0/1) make a wrong epsilon or a
    swapped mean/variance show in the logits. The last BN of a residual branch gets a
    smaller scale so activations do not grow block after block, and the head a larger
    one, so the logits are a few units: there an absolute 1e-4 bound is a tight one.
    """
    torch.manual_seed(seed)
    for name, module in net.named_modules():
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            torch.nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                torch.nn.init.normal_(module.bias, 0.0, 0.1)
        elif isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            last = name.endswith(("bn2", "bn3", "bn2_t", "downsample.1"))
            with torch.no_grad():
                module.weight.uniform_(*((0.3, 0.9) if last else (0.5, 1.5)))
                module.bias.normal_(0.0, 0.2)
                module.running_mean.normal_(0.0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
        elif isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, 0.0, 3.0 / module.in_features ** 0.5)
            torch.nn.init.normal_(module.bias, 0.0, 0.1)
    return net.eval()


def _clips(shape, batch=2, seed=1):
    return np.random.default_rng(seed).uniform(0, 255, (batch, *shape, 3)).astype("float32")


def _max_abs_diff(net, model, pixels, torch_input):
    """Keras on pixels (its own normalisation) vs PyTorch on `torch_input` (NTHWC)."""
    with torch.no_grad():
        expected = net(torch.from_numpy(np.ascontiguousarray(
            np.moveaxis(torch_input.astype("float32"), -1, 1)))).numpy()
    actual = np.asarray(model(pixels, training=False))
    assert actual.shape == expected.shape
    assert 0.5 < np.abs(expected).max() < 50  # see _randomize
    return float(np.abs(actual - expected).max())


RESNET_CASES = {
    # id: (arch, depth, factorised, options, Keras scaling, input T x H x W)
    "r3d10": ("r3d10", 10, False, {}, "width", (8, 32, 32)),
    "r3d10-t3s2": ("r3d10", 10, False, dict(conv1_t_size=3, conv1_t_stride=2), "width",
                   (8, 32, 32)),
    # odd sizes: ceil in every stride-2 layer
    "r3d18-A-odd": ("r3d18", 18, False, dict(shortcut_type="A"), "widen_factor", (9, 35, 45)),
    "r3d50-A": ("r3d50", 50, False, dict(shortcut_type="A"), "width", (8, 32, 32)),
    "r3d50-A-nopool": ("r3d50", 50, False, dict(shortcut_type="A", no_max_pool=True),
                       "width", (8, 32, 32)),
    "r3d50-B": ("r3d50", 50, False, dict(shortcut_type="B"), "width", (8, 32, 32)),
    "r3d50-B-nopool": ("r3d50", 50, False, dict(shortcut_type="B", no_max_pool=True),
                       "width", (8, 32, 32)),
    "r2plus1d18": ("r2plus1d18", 18, True, {}, "width", (8, 32, 32)),
    "r2plus1d18-A-nopool": ("r2plus1d18", 18, True, dict(shortcut_type="A", no_max_pool=True),
                            "widen_factor", (8, 32, 32)),
}


@pytest.mark.parametrize("case", list(RESNET_CASES))
def test_resnet3d_matches_pytorch(case):
    arch, depth, factorised, options, scaling, shape = RESNET_CASES[case]
    net = _randomize(ref.ResNet(depth, factorised, widen_factor=0.25, n_classes=7, **options),
                     seed=len(case))
    # The converter takes the published state_dict; the Keras model is 1/4 wide either
    # through our `width` or through the published `widen_factor`.
    model = from_torch(arch, net.state_dict(), input_shape=(*shape, 3),
                       classifier_activation=None, **{scaling: 0.25}, **options)
    pixels = _clips(shape)
    diff = _max_abs_diff(net, model, pixels, (pixels / 255 - KINETICS_MEAN) / KINETICS_STD)
    print(f"{case} {shape}: max |keras - torch| = {diff:.2e}")
    assert diff <= TOLERANCE


@pytest.mark.parametrize("shape,seed_file_keys,batch_norm", [((16, 112, 112), True, False),
                                                             ((16, 36, 44), False, False),
                                                             ((16, 36, 44), False, True)])
def test_c3d_matches_pytorch(shape, seed_file_keys, batch_norm):
    # 16x112x112 is the published input: the flatten sees C x 1 x 4 x 4, so a
    # channels-last flatten would feed fc6 permuted features. 36x44: odd pool5 inputs.
    # batch_norm: mmaction2's C3D variant (BatchNorm3d between each conv and its ReLU).
    width = 0.125
    keras_model = build_model("c3d", input_shape=(*shape, 3), width=width,
                              batch_norm=batch_norm)
    flat = keras_model.get_layer("flatten").output.shape[-1]
    net = ref.C3D(9, width=width, flat_features=flat, batch_norm=batch_norm)
    net = _randomize(net, seed=3)
    with torch.no_grad():
        net.conv1.weight /= 64  # pixels minus the mean are tens, not units
    state_dict = net.state_dict()
    if seed_file_keys:  # as c3d-pretrained.pth names them
        to_file = {module: key for key, module in ref.SEED_FILE_KEYS.items()}
        state_dict = {f"{to_file[k.rpartition('.')[0]]}.{k.rpartition('.')[2]}": v
                      for k, v in state_dict.items()}
        assert "features.18.weight" in state_dict and "classifier.6.bias" in state_dict
    model = from_torch("c3d", state_dict, input_shape=(*shape, 3), width=width,
                       batch_norm=batch_norm, classifier_activation=None)
    pixels = _clips(shape, batch=1)
    # The seed's preprocessing: cv2 BGR frames minus [90, 98, 102].
    diff = _max_abs_diff(net, model, pixels, pixels[..., ::-1] - C3D_MEAN_BGR)
    print(f"c3d {shape} batch_norm={batch_norm} (flatten {flat}): "
          f"max |keras - torch| = {diff:.2e}")
    assert diff <= TOLERANCE


def test_resnet18_2d_from_torch_matches_pytorch():
    net = _randomize(torch_reference.resnet(18, num_classes=10), seed=4)
    model = from_torch("resnet18", net.state_dict(), input_shape=(64, 80, 3))
    images = np.random.default_rng(2).normal(size=(2, 64, 80, 3)).astype("float32")
    with torch.no_grad():
        expected = net(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
    actual = np.asarray(model(images, training=False))
    assert 0.5 < np.abs(expected).max() < 50
    diff = float(np.abs(actual - expected).max())
    print(f"resnet18 2D 64x80: max |keras - torch| = {diff:.2e}")
    assert diff <= TOLERANCE


def test_c3d_full_size_is_the_published_network():
    model = build_model("c3d", num_classes=487)
    assert model.get_layer("flatten").output.shape == (None, 8192)
    assert model.get_layer("fc6").kernel.shape == (8192, 4096)
    published = sum(p.numel() for p in ref.C3D(487).parameters())
    assert model.count_params() == published == 79_991_015
    with pytest.raises(ValueError, match="at least 16 frames"):
        build_model("c3d", input_shape=(8, 112, 112, 3))


@pytest.mark.parametrize("depth,factorised", [(18, False), (50, False), (18, True), (34, True)])
def test_resnet3d_full_size_parameter_count(depth, factorised):
    keras_model = resnet3d.resnet3d(depth, factorised, num_classes=700, input_shape=(16, 112, 112, 3))
    published = sum(p.numel() for p in ref.ResNet(depth, factorised, n_classes=700).parameters())
    # non-trainable: BN moving statistics, which torch keeps as buffers
    trainable = sum(int(np.prod(v.shape)) for v in keras_model.trainable_weights)
    assert trainable == published


@pytest.mark.parametrize("name", MODELS_3D + ("frame_cnn",))
def test_registry_models_build_small(name):
    shape = (16, 32, 32, 3) if name == "c3d" else (8, 32, 32, 3)
    model = build_model(name, num_classes=5, input_shape=shape, width=0.125)
    assert model.output.shape == (None, 5)
    assert isinstance(model.layers[1], ImageNormalization)
    head = pretrained.head_layer(model)
    assert head.name == ("fc8" if name == "c3d" else "fc")
    assert head.dtype_policy.compute_dtype == "float32"
    assert model.layers[-1].dtype_policy.compute_dtype == "float32"
    probabilities = np.asarray(model(_clips(shape[:-1], batch=1)))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    # Every 3D conv is keras_video's, which works round TensorFlow's wrong bfloat16
    # gradients on a CPU (tests/test_conv3d.py); C3D once built keras.layers.Conv3D.
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv3D)]
    assert all(isinstance(layer, Conv3D) for layer in convs)
    assert convs or name == "frame_cnn"


def test_c3d_with_batch_norm_builds_keras_video_convs():
    model = build_model("c3d", num_classes=5, input_shape=(16, 32, 32, 3), width=0.125,
                        batch_norm=True)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv3D)]
    assert len(convs) == 8 and all(isinstance(layer, Conv3D) for layer in convs)


def test_layer_names_follow_pytorch_and_freeze_until_layer4():
    model = build_model("r3d18", num_classes=5, input_shape=(8, 32, 32, 3), width=0.125)
    names = [layer.name for layer in model.layers]
    for expected in ("conv1", "bn1", "layer1_0_conv1", "layer2_0_downsample_0",
                     "layer2_0_downsample_1", "layer4_1_bn2", "fc"):
        assert expected in names
    frozen = pretrained.freeze_until(model, "layer4")
    frozen_names = {layer.name for layer in frozen}
    assert {"conv1", "layer3_1_conv2", "layer3_0_downsample_0"} <= frozen_names
    assert not any(n.startswith(("layer4", "fc")) for n in frozen_names)
    assert model.get_layer("layer4_0_conv1").trainable and model.get_layer("fc").trainable


@pytest.mark.parametrize("name", ["c3d", "r3d18", "r2plus1d18"])
def test_zero_padding_before_max_pool_follows_a_relu(name):
    # PyTorch pads max-pools with -inf; zeros are the same only on values >= 0.
    shape = (16, 32, 32, 3) if name == "c3d" else (8, 32, 32, 3)
    model = build_model(name, input_shape=shape, width=0.125)
    checked = 0
    for layer in model.layers:
        if layer.name in ("maxpool", "pool5"):  # the padded pools (r3d / c3d)
            pad = layer.input._keras_history.operation
            assert isinstance(pad, keras.layers.ZeroPadding3D)
            source = pad.input._keras_history.operation
            assert isinstance(source, keras.layers.ReLU) or (
                isinstance(source, keras.layers.Conv3D)
                and source.activation is keras.activations.relu)
            checked += 1
    assert checked == 1


def test_zero_pad_shortcut_shape_and_config():
    layer = resnet3d.ZeroPadShortcut(12, strides=2, name="shortcut")
    x = np.arange(2 * 5 * 6 * 7 * 4, dtype="float32").reshape(2, 5, 6, 7, 4)
    y = np.asarray(layer(x))
    assert y.shape == layer.compute_output_shape(x.shape) == (2, 3, 3, 4, 12)
    np.testing.assert_array_equal(y[..., :4], x[:, ::2, ::2, ::2])
    assert not y[..., 4:].any()
    clone = resnet3d.ZeroPadShortcut.from_config(layer.get_config())
    assert (clone.filters, clone.strides, clone.name) == (12, 2, "shortcut")
    assert layer.compute_output_shape((None, None, 7, 8, 4)) == (None, None, 4, 4, 12)


@pytest.mark.parametrize("mode", ["kinetics", "c3d"])
def test_new_normalization_modes(mode):
    pixels = np.array([[[[10.0, 120.0, 250.0]]]], "float32")
    layer = ImageNormalization(mode)
    out = np.asarray(layer(pixels))[0, 0, 0]
    if mode == "kinetics":
        expected = (pixels[0, 0, 0] / 255 - KINETICS_MEAN) / KINETICS_STD
    else:
        expected = pixels[0, 0, 0, ::-1] - C3D_MEAN_BGR  # B, G, R minus the seed's mean
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)
    clone = ImageNormalization.from_config(layer.get_config())
    np.testing.assert_allclose(clone(pixels), layer(pixels))


def test_keras_save_and_load_round_trip(tmp_path):
    model = build_model("r3d10", num_classes=4, input_shape=(8, 32, 32, 3), width=0.125,
                        shortcut_type="A", dropout=0.2)
    path = str(tmp_path / "r3d10.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    clips = _clips((8, 32, 32))
    np.testing.assert_allclose(loaded(clips), model(clips), atol=1e-6)
    assert any(isinstance(layer, resnet3d.ZeroPadShortcut) for layer in loaded.layers)


def test_frame_cnn_cannot_see_frame_order():
    keras.utils.set_random_seed(0)
    model = build_model("frame_cnn", num_classes=3, input_shape=(6, 32, 32, 3), width=0.5)
    logits_model = build_model("frame_cnn", num_classes=3, input_shape=(6, 32, 32, 3),
                               width=0.5, classifier_activation=None)
    logits_model.set_weights(model.get_weights())
    clips = _clips((6, 32, 32))
    shuffled = clips[:, ::-1]
    np.testing.assert_allclose(model(shuffled), model(clips), atol=1e-6)
    # softmax mode: the mean of per-frame probabilities, not softmax of the mean logit
    per_frame = keras.Model(model.input, model.get_layer("predictions").output)(clips)
    np.testing.assert_allclose(model(clips), np.mean(per_frame, axis=1), atol=1e-6)
    per_frame_logits = keras.Model(logits_model.input, logits_model.get_layer("fc").output)(clips)
    np.testing.assert_allclose(logits_model(clips), np.mean(per_frame_logits, axis=1),
                               atol=1e-5)


def test_frame_cnn_resnet18_backbone_width():
    model = build_model("frame_cnn", num_classes=3, input_shape=(2, 32, 32, 3), width=0.25,
                        backbone="resnet18")
    assert model.get_layer("normalize").mode == "imagenet"
    assert model.output.shape == (None, 3)
    with pytest.raises(ValueError, match="width"):
        build_model("frame_cnn", input_shape=(2, 32, 32, 3), width=0.5, backbone="mobilenet_v2")
