"""Per-frame 2D backbones: image [H, W, C] -> feature map [h, w, channels].

  small                   a Conv2D/MaxPool stack as in the Keras TimeDistributed seed
  small_hires             2 convs per stage, one pool: a map at half the frame's
                          resolution, for a keypoint readout that keeps where things are
  resnet18, resnet34      our Keras ResNet laid out like torchvision's (keras_video.models.
                          resnet2d), so converted ImageNet .pth weights load into it
  <keras.applications>    any of APPLICATIONS by name, e.g. mobilenet_v2, resnet50,
                          efficientnet_b0, with weights "imagenet" (downloaded by Keras),
                          a .weights.h5 path, or None
Each comes with the input normalisation its weights expect (`ImageNormalization` mode).
"""

import keras

from keras_video.conversion import torch_weights
from keras_video.layers import BatchNormalization
from keras_video.models.scaling import scaled_channels

# name -> (keras.applications constructor, normalisation its ImageNet weights expect)
APPLICATIONS = {
    "mobilenet": ("MobileNet", "tf"),
    "mobilenet_v2": ("MobileNetV2", "tf"),
    "mobilenet_v3_small": ("MobileNetV3Small", "none"),
    "mobilenet_v3_large": ("MobileNetV3Large", "none"),
    "resnet50": ("ResNet50", "caffe"),
    "resnet101": ("ResNet101", "caffe"),
    "resnet50_v2": ("ResNet50V2", "tf"),
    "vgg16": ("VGG16", "caffe"),
    "inception_v3": ("InceptionV3", "tf"),
    "xception": ("Xception", "tf"),
    "densenet121": ("DenseNet121", "imagenet"),
    "efficientnet_b0": ("EfficientNetB0", "none"),
    "efficientnet_v2_b0": ("EfficientNetV2B0", "none"),
    "convnext_tiny": ("ConvNeXtTiny", "none"),
}

BACKBONES = ("small", "small_hires", "resnet18", "resnet34", *APPLICATIONS)


SMALL_FILTERS = (8, 16, 32, 32)
# The small_cnn settings of each small backbone (filters at width 1).
SMALL_BACKBONES = {
    "small": dict(filters=SMALL_FILTERS),
    "small_hires": dict(filters=(16, 32), convs_per_stage=2, pool_last=False),
}


def small_cnn(input_shape, filters=SMALL_FILTERS, convs_per_stage=1, pool_last=True,
              name="small_cnn"):
    """Stages of Conv3x3-BN-ReLU (convs_per_stage of them), each but maybe the last
    followed by a 2x2 max-pool; trains in minutes on a CPU.

    BatchNorm matters here: line drawings are almost all background, and without it
    the LSTM sat on the mean label for many epochs in our runs.
    """
    inputs = keras.Input(input_shape)
    x = inputs
    for i, f in enumerate(filters):
        for j in range(convs_per_stage):
            suffix = f"{i + 1}" if convs_per_stage == 1 else f"{i + 1}{chr(ord('a') + j)}"
            x = keras.layers.Conv2D(f, 3, padding="same", use_bias=False,
                                    name=f"conv{suffix}")(x)
            x = BatchNormalization(name=f"bn{suffix}")(x)
            x = keras.layers.ReLU(name=f"relu{suffix}")(x)
        if pool_last or i < len(filters) - 1:
            x = keras.layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    return keras.Model(inputs, x, name=name)


def normalization(name):
    """The `ImageNormalization` mode backbone `name` expects."""
    if name in SMALL_BACKBONES:
        return "unit"
    if name in ("resnet18", "resnet34"):
        return "imagenet"
    if name in APPLICATIONS:
        return APPLICATIONS[name][1]
    raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")


def frame_backbone(name, input_shape, weights=None, width=1.0):
    """(backbone model, normalisation mode) for one frame of `input_shape`.

    `width` scales the channels of the small and resnet18/34 backbones trained from
    scratch; pretrained weights and the keras.applications backbones take 1.0 only.
    """
    if width != 1.0 and (weights not in (None, "none")
                         or name not in (*SMALL_BACKBONES, "resnet18", "resnet34")):
        raise ValueError(f"width={width} needs backbone small, small_hires, resnet18 or "
                         f"resnet34 without pretrained weights (got {name!r}, weights "
                         f"{weights!r})")
    if name in SMALL_BACKBONES:
        if weights not in (None, "none"):
            raise ValueError(f"the {name} backbone has no pretrained weights; "
                             "use --backbone_weights=none")
        settings = dict(SMALL_BACKBONES[name])
        filters = [scaled_channels(f, width) for f in settings.pop("filters")]
        return (small_cnn(input_shape, filters, name=f"{name}_cnn", **settings),
                normalization(name))
    if name in ("resnet18", "resnet34"):
        from keras_video.models import resnet2d

        model = resnet2d.resnet_backbone(int(name[6:]), input_shape, name=name, width=width)
        if weights == "imagenet":
            raise ValueError(
                f"{name}: ImageNet weights come from torchvision's .pth file; download "
                "it (see BUILD.md) and pass its path as --backbone_weights=PATH.pth")
        if weights not in (None, "none"):
            if str(weights).endswith(".pth"):
                torch_weights.load_torch_file(model, weights, skip_head=True)
            else:
                model.load_weights(weights)
        return model, normalization(name)
    if name in APPLICATIONS:
        constructor, mode = APPLICATIONS[name]
        builder = getattr(keras.applications, constructor)
        kwargs = {}
        if constructor.startswith("MobileNetV3") or constructor.startswith("EfficientNetV2"):
            kwargs["include_preprocessing"] = True
        use_file = weights not in (None, "none", "imagenet")
        model = builder(include_top=False, input_shape=input_shape,
                        weights=None if use_file or weights in (None, "none") else weights,
                        **kwargs)
        if use_file:
            model.load_weights(weights)
        return model, mode
    raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
