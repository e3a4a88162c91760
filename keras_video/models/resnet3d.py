"""3D ResNets for clips: R3D (Hara et al. 2018, "Can Spatiotemporal 3D CNNs Retrace
the History of 2D CNNs and ImageNet?") and R(2+1)D (Tran et al. 2018, "A Closer Look
at Spatiotemporal Convolutions for Action Recognition"), laid out exactly like
kenshohara/3D-ResNets-PyTorch (models/resnet.py and models/resnet2p1d.py), so its
weights load.

    clip [T, H, W, 3] -> conv1 (t x 7 x 7, stride (t_stride, 2, 2)) -> BN -> ReLU
        -> max-pool 3, stride 2 -> layer1..layer4 (stride 2 from layer2 on, in time
        too) -> global average pool -> dropout -> fc logits

R3D blocks use 3x3x3 convolutions (BasicBlock for depth 10/18/34, Bottleneck with 4x
expansion for 50..200, the stride on its 3x3x3 conv2 as in the published code).
R(2+1)D replaces every t x k x k conv by a 1 x k x k spatial conv (conv*_s, carrying
the spatial stride), BN, ReLU and a t x 1 x 1 temporal conv (conv*_t, carrying the
temporal stride), with the mid channel count that keeps the parameter count of the
3D conv: (in * out * 27) // (in * 9 + 3 * out); conv1 likewise.

Options, as the published code names them: `conv1_t_size`, `conv1_t_stride`,
`no_max_pool`, `shortcut_type` ("A": every stride-th position, zero-padded in channels;
"B": 1x1x1 conv + BN) and `widen_factor` (int(c * widen_factor) channels). Which
published checkpoint needs which:
  r3d{18,34,50,101,152,200}_{K,KM,KS,KMS}_200ep.pth (2020): shortcut_type "B",
      conv1_t_size 7, conv1_t_stride 1 (the defaults here); likewise r2p1d*_200ep.
  resnet-18/34-kinetics.pth (2017): shortcut_type "A"; resnet-50 and deeper: "B".
Their weights expect normalization "kinetics" (the default). `width` further scales
every channel count (1.0 for pretrained weights) for small networks that train on a CPU.

Layer names are the PyTorch module names with "." -> "_" (conv1, bn1, layer1_0_conv1,
layer2_0_downsample_0, layer1_0_conv1_s, ..., fc), which is all keras_video.models.pretrained
relies on. As in keras_video.models.resnet2d, BatchNorm uses PyTorch's epsilon 1e-5
and momentum, and every strided layer pads explicitly and symmetrically: Keras "same"
pads only the bottom / right for stride 2 on even sizes, shifting the sampling grid.
"""

import keras
from keras import layers, ops

from keras_video.layers import BatchNormalization, Conv3D, ImageNormalization, MaxPooling3D
from keras_video.models.scaling import scaled_channels

_BLOCKS_PER_STAGE = {
    10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3),
    101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3),
}
_BOTTLENECK_FROM = 50
_EXPANSION = 4
_STAGE_FILTERS = (64, 128, 256, 512)
_BN_ARGS = dict(epsilon=1e-5, momentum=0.9)


@keras.saving.register_keras_serializable(package="keras_video")
class ZeroPadShortcut(layers.Layer):
    """Shortcut type A: x[:, ::s, ::s, ::s] zero-padded to `filters` channels.

    The published code's `_downsample_basic_block` (avg_pool3d, kernel 1, stride s, then
    concatenated zeros): a parameter-free shortcut, so it has no state_dict entry.
    """

    def __init__(self, filters, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)

    def call(self, x):
        s = self.strides
        if s > 1:
            x = x[:, ::s, ::s, ::s, :]
        extra = self.filters - x.shape[-1]
        return ops.pad(x, [[0, 0]] * 4 + [[0, extra]]) if extra else x

    def compute_output_shape(self, input_shape):
        s = self.strides
        batch, *sizes, _ = input_shape
        sizes = [None if n is None else -(-n // s) for n in sizes]
        return (batch, *sizes, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


def _conv(x, filters, kernel, strides, padding, name):
    """Conv3d(bias=False) with PyTorch's symmetric zero padding (T, H, W)."""
    if any(padding):
        x = layers.ZeroPadding3D(padding, name=f"{name}_pad")(x)
    return Conv3D(filters, kernel, strides=strides, use_bias=False, name=name)(x)


def _bn_relu(x, name, relu=True):
    x = BatchNormalization(name=name, **_BN_ARGS)(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _mid_channels(in_channels, out_channels, t=3, k=3):
    """R(2+1)D's mid channels: the 3D conv's parameter count spread over the pair."""
    return max(1, (in_channels * out_channels * t * k * k)
               // (in_channels * k * k + t * out_channels))


def _conv_3x3x3(x, filters, stride, name, factorised, bn_name):
    """R3D: one 3x3x3 conv. R(2+1)D: conv `name`_s 1x3x3, BN, ReLU, conv `name`_t 3x1x1.

    Returns the conv output (before the last BN) and the name of that BN.
    """
    if not factorised:
        return _conv(x, filters, 3, stride, (1, 1, 1), name), bn_name
    mid = _mid_channels(x.shape[-1], filters)
    x = _conv(x, mid, (1, 3, 3), (1, stride, stride), (0, 1, 1), f"{name}_s")
    x = _bn_relu(x, f"{bn_name}_s")
    return _conv(x, filters, (3, 1, 1), (stride, 1, 1), (1, 0, 0), f"{name}_t"), f"{bn_name}_t"


def _shortcut(x, filters, stride, shortcut_type, name):
    if stride == 1 and x.shape[-1] == filters:
        return x
    if shortcut_type == "A":
        return ZeroPadShortcut(filters, stride, name=f"{name}_shortcut")(x)
    x = _conv(x, filters, 1, stride, (0, 0, 0), f"{name}_downsample_0")
    return _bn_relu(x, f"{name}_downsample_1", relu=False)


def _basic_block(x, planes, stride, name, shortcut_type, factorised):
    shortcut = _shortcut(x, planes, stride, shortcut_type, name)
    y, bn = _conv_3x3x3(x, planes, stride, f"{name}_conv1", factorised, f"{name}_bn1")
    y = _bn_relu(y, bn)
    y, bn = _conv_3x3x3(y, planes, 1, f"{name}_conv2", factorised, f"{name}_bn2")
    y = _bn_relu(y, bn, relu=False)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def _bottleneck(x, planes, stride, name, shortcut_type, factorised):
    shortcut = _shortcut(x, planes * _EXPANSION, stride, shortcut_type, name)
    y = _conv(x, planes, 1, 1, (0, 0, 0), f"{name}_conv1")
    y = _bn_relu(y, f"{name}_bn1")
    y, bn = _conv_3x3x3(y, planes, stride, f"{name}_conv2", factorised, f"{name}_bn2")
    y = _bn_relu(y, bn)
    y = _conv(y, planes * _EXPANSION, 1, 1, (0, 0, 0), f"{name}_conv3")
    y = _bn_relu(y, f"{name}_bn3", relu=False)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def resnet3d(depth=18, factorised=False, num_classes=400, input_shape=(16, 112, 112, 3),
             dropout=0.0, width=1.0, classifier_activation="softmax",
             normalization="kinetics", name=None, conv1_t_size=7, conv1_t_stride=1,
             no_max_pool=False, shortcut_type="B", widen_factor=1.0):
    """R3D-`depth` (factorised=False) or R(2+1)D-`depth` (factorised=True).

    Logits come from `fc` (float32); `classifier_activation` (None: logits) follows it
    as the float32 layer `predictions`. `dropout` (0: none, as published) sits before fc.
    """
    if depth not in _BLOCKS_PER_STAGE:
        raise ValueError(f"depth must be one of {sorted(_BLOCKS_PER_STAGE)}, not {depth!r}")
    if shortcut_type not in ("A", "B"):
        raise ValueError(f"shortcut_type must be 'A' or 'B', not {shortcut_type!r}")
    block = _bottleneck if depth >= _BOTTLENECK_FROM else _basic_block
    stage_filters = [scaled_channels(int(c * widen_factor), width) for c in _STAGE_FILTERS]

    inputs = keras.Input(input_shape, name="clips")
    x = ImageNormalization(normalization, name="normalize")(inputs)
    t, t_pad = conv1_t_size, conv1_t_size // 2
    if factorised:
        # The published formula counts 3 input channels whatever the input has.
        mid = _mid_channels(3, stage_filters[0], t, 7)
        x = _conv(x, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), "conv1_s")
        x = _bn_relu(x, "bn1_s")
        x = _conv(x, stage_filters[0], (t, 1, 1), (conv1_t_stride, 1, 1), (t_pad, 0, 0),
                  "conv1_t")
        x = _bn_relu(x, "bn1_t")
    else:
        x = _conv(x, stage_filters[0], (t, 7, 7), (conv1_t_stride, 2, 2), (t_pad, 3, 3),
                  "conv1")
        x = _bn_relu(x, "bn1")
    if not no_max_pool:
        # PyTorch pads max-pools with -inf. The input is post-ReLU (>= 0) and every
        # 3x3x3 window keeps a real value, so zero padding gives the same maxima.
        x = layers.ZeroPadding3D(1, name="maxpool_pad")(x)
        x = MaxPooling3D(3, strides=2, name="maxpool")(x)
    for stage, (blocks, filters) in enumerate(
        zip(_BLOCKS_PER_STAGE[depth], stage_filters), start=1
    ):
        for index in range(blocks):
            stride = 2 if stage > 1 and index == 0 else 1
            x = block(x, filters, stride, f"layer{stage}_{index}", shortcut_type, factorised)
    x = layers.GlobalAveragePooling3D(name="avgpool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(num_classes, dtype="float32", name="fc")(x)
    if classifier_activation is not None:
        x = layers.Activation(classifier_activation, dtype="float32", name="predictions")(x)
    default_name = f"r2plus1d{depth}" if factorised else f"r3d{depth}"
    return keras.Model(inputs, x, name=name or default_name)


def _builder(depth, factorised):
    family = "r2plus1d" if factorised else "r3d"

    def build(num_classes=400, input_shape=(16, 112, 112, 3), dropout=0.0, width=1.0,
              classifier_activation="softmax", normalization="kinetics", name=None,
              conv1_t_size=7, conv1_t_stride=1, no_max_pool=False, shortcut_type="B",
              widen_factor=1.0):
        return resnet3d(depth, factorised, num_classes, input_shape, dropout, width,
                        classifier_activation, normalization, name, conv1_t_size,
                        conv1_t_stride, no_max_pool, shortcut_type, widen_factor)

    build.__name__ = build.__qualname__ = f"{family}{depth}"
    build.__doc__ = f"{family.upper()}-{depth}; see resnet3d() and the module docstring."
    return build


r3d10, r3d18, r3d34, r3d50, r3d101, r3d152, r3d200 = (
    _builder(depth, False) for depth in (10, 18, 34, 50, 101, 152, 200))
r2plus1d18, r2plus1d34 = (_builder(depth, True) for depth in (18, 34))
