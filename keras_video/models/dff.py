"""Deep Feature Flow (Zhu, Xiong, Dai, Yuan, Wei; CVPR 2017) for video segmentation.

A deep per-frame network splits into N_feat (image -> feature map, expensive) and N_task
(feature map -> segmentation, cheap). DFF runs N_feat only on sparse key frames; for
every other frame a small flow network estimates the motion from that frame to the
key frame, the key frame's features are bilinearly warped along it (`FlowWarp`) and
multiplied by a per-channel "scale field" predicted with the flow, and N_task runs on
the result. The three parts are trained jointly end to end on (current, key) pairs.

    N_feat     ResNet (torchvision layout, ImageNet .pth files load) with the last stage
               dilated (output stride 16), then a 3x3 conv with dilation 6 to
               `feature_width` channels (1024 in the paper) and ReLU. Sub-model
               "feature_net".
    flow net   FlowNetS as in the reference implementation (below), predicting the
               flow on N_feat's grid in feature-map pixels, and the scale field.
               Sub-model "flow_net": [current, key] -> [flow, scale].
    N_task     1x1 conv to class logits, bilinear upsampling x16, softmax (float32).
               Sub-model "task_net".

`dff(...)` (registry name "dff") is the training model: inputs "current" and "key"
frames, [B, H, W, 3] float RGB in [0, 255] (normalised inside), output the current
frame's class probabilities [B, H, W, K]. Where an example's key frame *is* its current
frame (every pixel equal) it uses N_feat(key) directly, unwarped, as the reference
training does (its eq_flag), so training on a mix of pairs and single frames works.
`frame_seg(...)` (registry name "frame_seg") is the per-frame baseline
N_task(N_feat(frame)) with the same sub-model names, trained by the same command on
single frames; `per_frame_model(dff_model)` builds it on a DFF model's own weights.
Inference over a video (key frames, caching) is keras_video.serving.streaming.

The flow net follows the reference symbol (msracver/Deep-Feature-Flow,
resnet_v1_101_flownet_rfcn.py, `get_flownet`): both frames minus the config's
PIXEL_MEANS (its data layer subtracts them), divided by 255 and concatenated,
average-pooled by 2, a FlowNetS encoder (conv1 7x7/2 ... conv6_1, 1024 channels at
1/128 of the frame) and decoder (4x4 stride-2 deconvolutions, each
concatenated with the encoder features and the upsampled coarser flow), LeakyReLU 0.1
throughout; the finest decoder features (1/8 of the frame) are average-pooled once more
to the 1/16 grid of N_feat, where a 3x3 conv predicts the flow and a 1x1 conv the scale.

Why the flow is multiplied by 2.5. FlowNet is trained on targets divided by 20 and
expressed in pixels of *its input* (the "/20" keeps targets near unit scale). Here its
input is the frame halved, so its raw output r means a displacement of 20 r half-frame
pixels = 40 r frame pixels = 40 r / 16 = 2.5 r feature-map pixels. The reference
multiplies by 2.5 so that a pretrained FlowNet works unchanged; we keep that factor so
the layer's raw output keeps FlowNet's scale (a pretrained FlowNet could be loaded).

Initialisation. The scale field's 1x1 conv starts at weight 0 and a fixed bias of 1
(the reference sets lr_mult=0 on that bias; here a constant +1 after a bias-free
conv), so the scale is exactly 1 at the start. The reference starts from a pretrained
FlowNet; we train from scratch and initialise the final flow conv to zero, so at
initialisation the flow is exactly 0, warping is the identity and DFF's output equals
N_task(N_feat(key)). The flow still receives gradient at zero (see FlowWarp). The
feature conv starts from N(0, 0.01), as in the reference.

Cost (keras_video.models.flops, 512 x 1024 frames, feature_width 1024): N_feat 285 GFLOPs
with ResNet-101, 207 with ResNet-50, 83 with ResNet-18; the flow net 21.8; N_task and
the warp under 0.1. On a CPU the flow net costs more than its FLOPs say: its coarse
levels hold most of its 39M weights and do little arithmetic with them (memory-bound;
TF's CPU transposed convolution is slow too). `flow_width=0.5` (every flow layer at
half the channels, like the paper's "FlowNet Half") cuts its weights 4x: measured on 2
CPU cores at 256 x 512 with ResNet-18, a propagated frame took 70 ms at flow_width 1
(a key frame 76 ms) and 16 ms at 0.5.

The sizes must be known when the model is built (the decoder crops each deconvolution
to its encoder level, as the reference's Crop layers do); frames of another size go
through keras_video.serving.streaming's resize, or a model built for that size.
"""

import keras
from keras import layers, ops

from keras_video.conversion import torch_weights
from keras_video.layers import BilinearUpsample, FlowWarp, ImageNormalization
from keras_video.models import resnet2d
from keras_video.models.scaling import scaled_channels

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")
FEATURE_STRIDE = 16  # the paper's output stride; 8 is the other choice
FEATURE_STRIDES = (8, 16)
FLOWNET_PIXELS = 40.0  # frame pixels per unit of raw FlowNet output, see the module docstring
# The reference config's PIXEL_MEANS (R, G, B), which its data layer subtracts from
# every frame (lib/utils/image.py `transform`) before the flow net divides by 255.
FLOW_PIXEL_MEANS = (123.15, 115.90, 103.06)


def flow_scale(output_stride=FEATURE_STRIDE):
    """Raw FlowNet output -> feature-map pixels: 2.5 at stride 16 (the reference), 5 at 8."""
    return FLOWNET_PIXELS / output_stride


def feature_net(input_shape, backbone="resnet18", feature_width=1024, width=1.0,
                backbone_weights=None, freeze_batchnorm=False, output_stride=FEATURE_STRIDE):
    """N_feat: frame [H, W, 3] in [0, 255] -> features [ceil(H/s), ceil(W/s), feature_width]
    for s = output_stride (16: the last stage dilated; 8: the last two)."""
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, not {backbone!r}")
    if output_stride not in FEATURE_STRIDES:
        raise ValueError(f"output_stride must be one of {FEATURE_STRIDES}, not {output_stride!r}")
    frame = keras.Input(input_shape, name="frame")
    x = ImageNormalization("imagenet", name="normalize")(frame)
    trunk = resnet2d.resnet_backbone(int(backbone[6:]), input_shape, name=backbone,
                                     output_stride=output_stride, width=width)
    if backbone_weights == "imagenet":
        raise ValueError(f"{backbone}: ImageNet weights come from torchvision's .pth file; "
                         "pass its path as backbone_weights")
    if backbone_weights not in (None, "none"):
        torch_weights.load_torch_file(trunk, backbone_weights, skip_head=True)
    if freeze_batchnorm:
        # The reference keeps BN statistics fixed (use_global_stats): with pretrained
        # weights and a few frames per batch, batch statistics are too noisy to use.
        for layer in trunk.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = False
    x = trunk(x)
    x = layers.Conv2D(feature_width, 3, padding="same", dilation_rate=6,
                      kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                      name="feat_conv_3x3")(x)
    x = layers.ReLU(name="feat_relu")(x)
    return keras.Model(frame, x, name="feature_net")


def _crop_to(x, reference, name):
    """Keeps the window of a 4x4 stride-2 deconvolution's output (2n + 2 wide) that starts
    one pixel in and matches `reference`'s size, like the reference's Crop(offset=1)."""
    (h, w), (rh, rw) = x.shape[1:3], reference.shape[1:3]
    return layers.Cropping2D(((1, h - 1 - rh), (1, w - 1 - rw)), name=name)(x)


def flow_net(input_shape, feature_width=1024, width=1.0, output_stride=FEATURE_STRIDE):
    """[current, key] frames -> [flow [h, w, 2] in feature pixels, scale [h, w, feature_width]]
    on the grid of N_feat at `output_stride`."""
    if None in input_shape[:2]:
        raise ValueError(f"flow_net needs a fixed frame size, got input_shape={input_shape}")
    def act(x, name):
        return layers.LeakyReLU(0.1, name=f"{name}_relu")(x)

    def conv(x, filters, kernel_size, stride, name):
        # Caffe-style symmetric padding, as in resnet2d (Keras "same" is asymmetric at
        # stride 2 and would move the grid by a pixel).
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        x = layers.Conv2D(scaled_channels(filters, width, resnet2d.MIN_CHANNELS), kernel_size,
                          strides=stride, name=name)(x)
        return act(x, name)

    def predict_flow(x, name, **kwargs):
        return layers.Conv2D(2, 3, padding="same", name=name, **kwargs)(x)

    def up(x, filters, reference, name):
        x = layers.Conv2DTranspose(filters, 4, strides=2, name=name)(x)
        return _crop_to(x, reference, f"{name}_crop")

    current = keras.Input(input_shape, name="current")
    key = keras.Input(input_shape, name="key")
    x = layers.Concatenate(name="pair")([current, key])
    # The reference's frames reach its flow net minus the pixel means, then / 255:
    # about zero-centred, which a FlowNet trained from scratch needs in order to learn.
    x = layers.Rescaling(1.0 / 255.0, offset=[-m / 255.0 for m in FLOW_PIXEL_MEANS] * 2,
                         name="unit")(x)
    # "same" average pooling rounds odd sizes up (excluding the padding from the
    # average), like MXNet's pooling_convention="full".
    x = layers.AveragePooling2D(2, padding="same", name="half")(x)

    conv1 = conv(x, 64, 7, 2, "conv1")  # 1/4 of the frame
    conv2 = conv(conv1, 128, 5, 2, "conv2")  # 1/8
    conv3 = conv(conv2, 256, 5, 2, "conv3")  # 1/16
    conv3_1 = conv(conv3, 256, 3, 1, "conv3_1")
    conv4 = conv(conv3_1, 512, 3, 2, "conv4")  # 1/32
    conv4_1 = conv(conv4, 512, 3, 1, "conv4_1")
    conv5 = conv(conv4_1, 512, 3, 2, "conv5")  # 1/64
    conv5_1 = conv(conv5, 512, 3, 1, "conv5_1")
    conv6 = conv(conv5_1, 1024, 3, 2, "conv6")  # 1/128
    x = conv(conv6, 1024, 3, 1, "conv6_1")

    # Decoder: at each level, the coarser level's features (deconvolved), the encoder
    # features of this level, and the coarser flow (upsampled) are concatenated.
    flow = predict_flow(x, "predict_flow6")
    for level, skip, filters in ((5, conv5_1, 512), (4, conv4_1, 256), (3, conv3_1, 128),
                                 (2, conv2, 64)):
        channels = scaled_channels(filters, width, resnet2d.MIN_CHANNELS)
        deconv = act(up(x, channels, skip, f"deconv{level}"), f"deconv{level}")
        upsampled_flow = up(flow, 2, skip, f"upsample_flow{level + 1}_to_{level}")
        x = layers.Concatenate(name=f"concat{level}")([skip, deconv, upsampled_flow])
        if level > 2:
            flow = predict_flow(x, f"predict_flow{level}")

    if output_stride == 16:  # the decoder ends at 1/8 of the frame
        x = layers.AveragePooling2D(2, padding="same", name="to_feature_grid")(x)
    flow = predict_flow(x, "predict_flow", kernel_initializer="zeros")
    flow = layers.Rescaling(flow_scale(output_stride), name="flow")(flow)
    scale = layers.Conv2D(feature_width, 1, use_bias=False, kernel_initializer="zeros",
                          name="scale_conv")(x)
    scale = layers.Rescaling(1.0, offset=1.0, name="scale")(scale)  # the fixed bias of 1
    return keras.Model([current, key], [flow, scale], name="flow_net")


def task_net(feature_shape, num_classes, output_size, output_stride=FEATURE_STRIDE):
    """N_task: features [h, w, F] -> class probabilities [H, W, num_classes] (float32)."""
    features = keras.Input(feature_shape, name="features")
    x = layers.Conv2D(num_classes, 1, name="classifier")(features)
    # Feature pixel i is centred on frame pixel s i + (s - 1) / 2 (stride s from the
    # top-left corner), which is where half-pixel bilinear upsampling by s puts it; crop
    # the rounding-up remainder at the bottom/right rather than stretch the map.
    # (BilinearUpsample is UpSampling2D's bilinear mode with the crop built in, as two
    # matrix products: several times faster under XLA on a CPU.)
    x = BilinearUpsample(output_stride, output_size, name="upsample")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(features, outputs, name="task_net")


@keras.saving.register_keras_serializable(package="keras_video")
class SameFrameSelect(keras.layers.Layer):
    """Call on [current, key, unwarped, propagated]: per example, `unwarped` where the key
    frame equals the current frame exactly, `propagated` otherwise.

    Inputs are compared before any casting (autocast off), so under mixed precision
    two different frames cannot become equal by rounding to float16.
    """

    def __init__(self, **kwargs):
        super().__init__(autocast=False, **kwargs)

    def call(self, inputs):
        current, key, unwarped, propagated = inputs
        same = ops.all(ops.equal(current, key), axis=(1, 2, 3))
        same = ops.reshape(same, (-1, 1, 1, 1))
        return ops.where(same, ops.cast(unwarped, self.compute_dtype),
                         ops.cast(propagated, self.compute_dtype))

    def compute_output_shape(self, input_shape):
        return input_shape[2]

    def get_config(self):
        # No settings of its own: name, dtype policy and trainable come from the base.
        return super().get_config()


def _check(num_classes, input_shape):
    if num_classes is None or num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes!r}")
    if len(input_shape) != 3 or input_shape[-1] != 3 or None in input_shape[:2]:
        raise ValueError(f"input_shape must be (H, W, 3) with H, W known, got {input_shape}")


def dff(num_classes=None, input_shape=(256, 512, 3), backbone="resnet18", feature_width=1024,
        width=1.0, flow_width=None, backbone_weights=None, freeze_batchnorm=False,
        output_stride=FEATURE_STRIDE):
    """The DFF training model: {"current", "key"} frames -> current-frame probabilities.

    `width` scales the ResNet's channels, `flow_width` (default: `width`) the flow net's;
    `feature_width` is N_feat's output channels, absolute. `backbone_weights`: a
    torchvision ImageNet .pth file for the ResNet (needs width=1). `output_stride` (16 as
    in the paper, or 8) is the feature grid's, where the flow and the warp live too.
    """
    _check(num_classes, input_shape)
    n_feat = feature_net(tuple(input_shape), backbone, feature_width, width, backbone_weights,
                         freeze_batchnorm, output_stride)
    n_task = task_net(n_feat.output.shape[1:], num_classes, tuple(input_shape[:2]),
                      output_stride)
    return dff_model(n_feat, n_task, flow_width=width if flow_width is None else flow_width,
                     name="dff")


def dff_model(n_feat, n_task, flow_width=1.0, name="dff"):
    """{"current", "key"} -> n_task(features of the current frame): N_feat on the key
    frame, warped by a new flow net (at `flow_width`) and scaled, or unwarped where the
    key frame is the current frame. Any N_task: segmentation (`task_net`) or
    detection (keras_video.models.rfcn)."""
    input_shape = tuple(n_feat.input.shape[1:])
    feature_shape = n_feat.output.shape[1:]
    stride = _stride_of(input_shape, feature_shape)
    n_flow = flow_net(input_shape, feature_shape[-1], flow_width, stride)
    current = keras.Input(input_shape, name="current")
    key = keras.Input(input_shape, name="key")
    key_features = n_feat(key)
    propagated = _propagate(n_flow, current, key, key_features)
    features = SameFrameSelect(name="select")([current, key, key_features, propagated])
    return keras.Model([current, key], n_task(features), name=name)


def per_frame(n_feat, n_task, name):
    """{"current"} -> n_task(n_feat(current)): the per-frame model of N_feat and N_task."""
    current = keras.Input(n_feat.input.shape[1:], name="current")
    return keras.Model([current], n_task(n_feat(current)), name=name)


def _stride_of(input_shape, feature_shape):
    """The output stride s with ceil(H / s), ceil(W / s) = the feature grid."""
    (height, width), (h, w) = input_shape[:2], feature_shape[:2]
    for stride in FEATURE_STRIDES:
        if -(-height // stride) == h and -(-width // stride) == w:
            return stride
    raise ValueError(f"a {h} x {w} feature grid on {height} x {width} frames is at none of "
                     f"the output strides {FEATURE_STRIDES}")


def _propagate(n_flow, current, key, key_features):
    """warp(key features, flow) * scale, with flow and scale from the frame pair."""
    flow, scale = n_flow([current, key])
    warped = FlowWarp(name="warp")([key_features, flow])
    return layers.Multiply(name="scale_features")([warped, scale])


def frame_seg(num_classes=None, input_shape=(256, 512, 3), backbone="resnet18",
              feature_width=1024, width=1.0, backbone_weights=None, freeze_batchnorm=False,
              output_stride=FEATURE_STRIDE):
    """The per-frame baseline N_task(N_feat(frame)), same sub-model names as `dff`.

    Its one input is named "current", so the {"current", "key"} examples of a DFF data
    pipeline feed it as they are (Keras picks inputs by name; the key is unused).
    """
    _check(num_classes, input_shape)
    n_feat = feature_net(tuple(input_shape), backbone, feature_width, width, backbone_weights,
                         freeze_batchnorm, output_stride)
    n_task = task_net(n_feat.output.shape[1:], num_classes, tuple(input_shape[:2]),
                      output_stride)
    return per_frame(n_feat, n_task, "frame_seg")


def dff_parts(model):
    """(feature_net, flow_net, task_net) of a `dff` or `frame_seg` model (flow_net None
    for frame_seg), or of `dff_rfcn` / `rfcn`; they share the model's weights."""
    names = [layer.name for layer in model.layers]
    flow = model.get_layer("flow_net") if "flow_net" in names else None
    return model.get_layer("feature_net"), flow, model.get_layer("task_net")


def feature_stride(model):
    """The output stride of a model made of N_feat (and N_flow) and N_task: frame size
    over feature grid, rounded up (dff, frame_seg, rfcn, dff_rfcn)."""
    n_feat, _, _ = dff_parts(model)
    return _stride_of(n_feat.input.shape[1:], n_feat.output.shape[1:])


def propagation_model(model):
    """[current, key, key_features] -> current-frame probabilities: a `dff` model's
    propagated path (flow, warp, scale, N_task) on given key-frame features, on the
    model's own weights. Trains the flow net with N_feat fixed and its features computed
    once (keras_video.tasks.dff_training)."""
    n_feat, n_flow, n_task = dff_parts(model)
    current = keras.Input(n_feat.input.shape[1:], name="current")
    key = keras.Input(n_feat.input.shape[1:], name="key")
    key_features = keras.Input(n_feat.output.shape[1:], name="key_features")
    features = _propagate(n_flow, current, key, key_features)
    return keras.Model([current, key, key_features], n_task(features), name="dff_propagate")


def per_frame_model(model):
    """N_task(N_feat(frame)) on the weights of a `dff` model (not a copy: training one
    trains the other)."""
    n_feat, _, n_task = dff_parts(model)
    frame = keras.Input(n_feat.input.shape[1:], name="frame")
    return keras.Model(frame, n_task(n_feat(frame)), name="per_frame")
