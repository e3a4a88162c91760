"""ResNet-18/34/50/101 for single images, laid out exactly like torchvision's, so its
weights load.

Input is channels-last (H, W, 3), already normalised (see `ImageNormalization`,
mode "imagenet", for torchvision weights). Each Keras layer is named after its
torchvision state-dict key with "." replaced by "_" (`layer2.0.downsample.0` ->
`layer2_0_downsample_0`), which is all the weight loader relies on
(keras_video.conversion.torch_weights.load_state_dict; `.pth` files:
load_torch_file, no PyTorch needed).

Two details make the outputs match PyTorch to float32 precision:
- PyTorch BatchNorm2d uses epsilon 1e-5 (Keras default 1e-3) and momentum 0.1 for the
  *new* batch statistic, which is Keras momentum 0.9 for the running one.
- PyTorch pads symmetrically (`padding=p` on every side). Keras "same" puts the extra
  pixel on the bottom/right for stride-2 layers, shifting the sampling grid by one,
  so every padded layer here is an explicit ZeroPadding2D followed by "valid".

ResNet-50/101 use torchvision's Bottleneck (ResNet v1.5: the stride sits on the 3x3
conv2, not on conv1 as in the original Caffe ResNet). `output_stride=16` (or 8) turns
the last stage (the last two) into dilated convolutions with stride 1, as DeepLab and
Deep Feature Flow do; the weights do not change shape, so ImageNet .pth files load
into the dilated network as well. Unlike torchvision's `replace_stride_with_dilation`,
which keeps dilation 1 in the first block of a dilated stage, every block of the
stage is dilated here, as in the Deep Feature Flow / DeepLab reference networks
(res5a_branch2b has dilate=2 there). `width` scales every layer's channel count, for
small CPU-sized networks (pretrained weights need width=1).
"""

import keras
from keras import layers

from keras_video.layers import BatchNormalization
from keras_video.models.scaling import scaled_channels

MIN_CHANNELS = 4  # the fewest channels `width` leaves a layer

_BLOCKS_PER_STAGE = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
_BOTTLENECK_DEPTHS = (50, 101)
_EXPANSION = 4  # a Bottleneck's output has 4x the channels of its 3x3 conv
_STAGE_FILTERS = (64, 128, 256, 512)
_BN_ARGS = dict(epsilon=1e-5, momentum=0.9)


def _conv(x, filters, kernel_size, stride, padding, name, dilation=1):
    """Conv2d(bias=False) with PyTorch's symmetric zero padding.

    A strided 1x1 conv (the downsample shortcut) reads every stride-th pixel first and
    is then a stride-1 conv: the same function, and TensorFlow 2.21's oneDNN
    Conv2DBackpropFilter of a stride-2 1x1 conv with fewer than 16 input channels
    corrupts memory (double free, segfault) on an AVX512-BF16 EPYC (reproduced with a
    bare tf.nn.conv2d; widths <= 0.125 give such layers)."""
    if kernel_size == 1 and stride > 1:
        x = layers.MaxPooling2D(1, strides=stride, name=f"{name}_subsample")(x)
        stride = 1
    if padding:
        x = layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
    return layers.Conv2D(
        filters, kernel_size, strides=stride, padding="valid", dilation_rate=dilation,
        use_bias=False, name=name
    )(x)


def _basic_block(x, filters, stride, name, dilation=1):
    """torchvision BasicBlock: conv3x3-bn-relu-conv3x3-bn, plus the shortcut, then relu."""
    shortcut = x
    y = _conv(x, filters, 3, stride, dilation, f"{name}_conv1", dilation)
    y = BatchNormalization(name=f"{name}_bn1", **_BN_ARGS)(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(y, filters, 3, 1, dilation, f"{name}_conv2", dilation)
    y = BatchNormalization(name=f"{name}_bn2", **_BN_ARGS)(y)
    # Same rule as torchvision: project the shortcut whenever the shape changes.
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv(x, filters, 1, stride, 0, f"{name}_downsample_0")
        shortcut = BatchNormalization(name=f"{name}_downsample_1", **_BN_ARGS)(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_relu2")(y)


def _bottleneck_block(x, filters, stride, name, dilation=1):
    """torchvision Bottleneck: conv1x1-bn-relu-conv3x3(stride)-bn-relu-conv1x1-bn,
    plus the shortcut, then relu; 4 x `filters` channels out."""
    shortcut = x
    y = _conv(x, filters, 1, 1, 0, f"{name}_conv1")
    y = BatchNormalization(name=f"{name}_bn1", **_BN_ARGS)(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(y, filters, 3, stride, dilation, f"{name}_conv2", dilation)
    y = BatchNormalization(name=f"{name}_bn2", **_BN_ARGS)(y)
    y = layers.ReLU(name=f"{name}_relu2")(y)
    y = _conv(y, filters * _EXPANSION, 1, 1, 0, f"{name}_conv3")
    y = BatchNormalization(name=f"{name}_bn3", **_BN_ARGS)(y)
    if stride != 1 or x.shape[-1] != filters * _EXPANSION:
        shortcut = _conv(x, filters * _EXPANSION, 1, stride, 0, f"{name}_downsample_0")
        shortcut = BatchNormalization(name=f"{name}_downsample_1", **_BN_ARGS)(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_relu3")(y)


def resnet_backbone(depth=18, input_shape=(None, None, 3), name=None, output_stride=32,
                    width=1.0):
    """ResNet-`depth` up to layer4, no pooling, no head.

    The feature map is (ceil(H / s), ceil(W / s), C) for s = `output_stride` (32, or 16 /
    8 with the last stage / two stages dilated), C = 512 x `width` for ResNet-18/34 and
    2048 x `width` for ResNet-50/101.
    """
    if depth not in _BLOCKS_PER_STAGE:
        raise ValueError(f"depth must be one of {sorted(_BLOCKS_PER_STAGE)}, not {depth!r}")
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16 or 32, not {output_stride!r}")
    block = _bottleneck_block if depth in _BOTTLENECK_DEPTHS else _basic_block
    # stages 3 and 4 keep stride 1 and dilate instead, as far as output_stride asks
    dilations = {32: (1, 1, 1, 1), 16: (1, 1, 1, 2), 8: (1, 1, 2, 4)}[output_stride]
    inputs = keras.Input(shape=input_shape)
    x = _conv(inputs, scaled_channels(64, width, MIN_CHANNELS), 7, 2, 3, "conv1")
    x = BatchNormalization(name="bn1", **_BN_ARGS)(x)
    x = layers.ReLU(name="relu")(x)
    # PyTorch's MaxPool2d pads with -inf. Its input is post-ReLU (>= 0) and every 3x3
    # window holds at least one real pixel, so padding with zeros gives the same maxima.
    x = layers.ZeroPadding2D(1, name="maxpool_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="maxpool")(x)
    for stage, (blocks, filters, dilation) in enumerate(
        zip(_BLOCKS_PER_STAGE[depth], _STAGE_FILTERS, dilations), start=1
    ):
        for index in range(blocks):
            stride = 2 if stage > 1 and index == 0 and dilation == 1 else 1
            x = block(x, scaled_channels(filters, width, MIN_CHANNELS), stride,
                      f"layer{stage}_{index}", dilation)
    return keras.Model(inputs, x, name=name or f"resnet{depth}_backbone")


def resnet_classifier(depth=18, input_shape=(224, 224, 3), num_classes=1000):
    """The whole torchvision network: backbone, global average pool and the `fc` logits."""
    backbone = resnet_backbone(depth, input_shape)
    x = layers.GlobalAveragePooling2D(name="avgpool")(backbone.output)
    outputs = layers.Dense(num_classes, name="fc")(x)
    # Built on the backbone's graph, so all layers sit flat in this model (and the loader
    # finds them by name).
    return keras.Model(backbone.input, outputs, name=f"resnet{depth}")
