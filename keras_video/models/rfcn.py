"""R-FCN (Dai, Li, He, Sun; NIPS 2016) as Deep Feature Flow's detector, and DFF on it.

The reference is msracver/Deep-Feature-Flow, `dff_rfcn/symbols/
resnet_v1_101_flownet_rfcn.py` with `experiments/dff_rfcn/cfgs/
resnet_v1_101_flownet_imagenet_vid_rfcn_end2end_ohem.yaml`:

    N_feat     the ResNet with its last stage dilated (stride 16) and the 3x3 feature
               conv to `feature_width` channels (1024), as for segmentation
               (keras_video.models.dff.feature_net; torchvision's ImageNet .pth loads).
    N_task     "task_net": the feature channels split in two halves (SliceChannel):
               the first feeds the RPN, 1x1 convs to 2 A objectness scores and 4 A box
               deltas for A = 9 anchors (scales 8, 16, 32 x ratios 0.5, 1, 2 at stride
               16); the second feeds R-FCN, 1x1 convs to 7 x 7 x (C + 1)
               position-sensitive class score maps and 7 x 7 x 8 class-agnostic box maps
               (CLASS_AGNOSTIC: background and foreground deltas). The anchor scales and
               the output stride (16; 8 for small frames) are settings. Its outputs are the
               dense maps; training (keras_video.tasks.detection) and inference read
               them.
    detect     "detect_net" (`detect_net`), inference only: RPNProposals (6000 best
               anchors, NMS 0.7, 300 RoIs), PSRoIPooling of both map sets over the RoIs
               (of the box maps, the foreground slot: the only one read),
               voting by averaging the 7 x 7 bins, softmax over C + 1 classes, the
               foreground deltas de-normalised by BBOX_STDS (0.1, 0.1, 0.2, 0.2) and
               decoded on the RoIs, clipped; per class, scores above 1e-4 and NMS 0.3;
               the best 300 over all classes (dff_rfcn/core/tester.py, pred_eval).

`rfcn` (registry name) is the per-frame detector {"current"} -> maps; `dff_rfcn` the
DFF one {"current", "key"} -> maps: N_feat on the key frame, warped by the flow net to
the current frame and scaled, or unwarped when key == current (the reference's
eq_flag), exactly as `dff` does for segmentation. `num_classes` counts the object
classes; the heads add the background as class 0. Inference on a video (key frames,
cached features) is keras_video.serving.streaming with these parts.
"""

import keras
import tensorflow as tf
from keras import layers

from keras_video.layers import PSRoIPooling, RPNProposals, box_ops
from keras_video.models import dff as dff_lib

GROUP_SIZE = 7  # the position-sensitive grid, k x k
BBOX_MEANS = (0.0, 0.0, 0.0, 0.0)
BBOX_STDS = (0.1, 0.1, 0.2, 0.2)
TEST_NMS = 0.3  # per class, cfg.TEST.NMS
SCORE_THRESHOLD = 1e-4  # pred_eval's thresh
MAX_DETECTIONS = 300  # cfg.TEST.max_per_image
BOX_CHANNELS = 8  # rfcn_bbox's output channels: background and foreground deltas
FOREGROUND_BOX_CHANNELS = 4  # the foreground slot (4..7), the only one a box is read from
MAP_NAMES = ("rpn_cls_score", "rpn_cls_prob", "rpn_bbox_pred", "rfcn_cls", "rfcn_bbox")


def _normal(stddev=0.01):
    return keras.initializers.RandomNormal(stddev=stddev)


def conv1x1(filters, name, dtype, stddev=0.01):
    """A 1x1 convolution initialised N(0, stddev), as the reference's heads."""
    return layers.Conv2D(filters, 1, kernel_initializer=_normal(stddev), name=name,
                         dtype=dtype)


@keras.saving.register_keras_serializable(package="keras_video")
class RPNHead(keras.layers.Layer):
    """The RPN on its half of the features: 1x1 convs to 2 A objectness logits and 4 A
    box deltas, A = len(anchor_scales) x len(anchor_ratios) anchors a position (the
    reference's rpn_cls_score and rpn_bbox_pred, initialised N(0, 0.01)). Returns
    (logits [h, w, 2 A]: the A background scores, then the A foreground ones;
    probabilities: the softmax over each anchor's pair; deltas [h, w, 4 A]). The anchors
    are part of its config, so inference (`detector_of`) and training build the same
    ones (keras_video.layers.box_ops.generate_anchors at `feature_stride`)."""

    def __init__(self, anchor_scales=box_ops.ANCHOR_SCALES, anchor_ratios=box_ops.ANCHOR_RATIOS,
                 feature_stride=dff_lib.FEATURE_STRIDE, **kwargs):
        super().__init__(**kwargs)
        self.anchor_scales = tuple(float(s) for s in anchor_scales)
        self.anchor_ratios = tuple(float(r) for r in anchor_ratios)
        self.feature_stride = int(feature_stride)
        self.num_anchors = len(self.anchor_scales) * len(self.anchor_ratios)
        self.cls_conv = conv1x1(2 * self.num_anchors, "rpn_cls_score", self.dtype_policy)
        self.bbox_conv = conv1x1(4 * self.num_anchors, "rpn_bbox_pred", self.dtype_policy)

    def build(self, input_shape):
        self.cls_conv.build(input_shape)
        self.bbox_conv.build(input_shape)

    def anchors(self):
        """The A base anchors [A, 4] (box_ops.generate_anchors)."""
        return box_ops.generate_anchors(self.feature_stride, self.anchor_ratios,
                                        self.anchor_scales)

    def call(self, features):
        logits = tf.cast(self.cls_conv(features), tf.float32)
        shape = tf.shape(logits)
        pairs = tf.reshape(logits, tf.concat([shape[:3], [2, self.num_anchors]], 0))
        prob = tf.reshape(tf.nn.softmax(pairs, axis=-2), shape)
        return logits, prob, tf.cast(self.bbox_conv(features), tf.float32)

    def compute_output_shape(self, input_shape):
        head = tuple(input_shape[:3])
        return ((*head, 2 * self.num_anchors), (*head, 2 * self.num_anchors),
                (*head, 4 * self.num_anchors))

    def get_config(self):
        return {**super().get_config(), "anchor_scales": self.anchor_scales,
                "anchor_ratios": self.anchor_ratios, "feature_stride": self.feature_stride}


def detection_net(feature_shape, num_classes, anchor_scales=box_ops.ANCHOR_SCALES,
                  group_size=GROUP_SIZE, feature_stride=dff_lib.FEATURE_STRIDE):
    """N_task of R-FCN: features [h, w, F] -> the dense maps (float32), a dict:

        rpn_cls_score  [h, w, 2 A] logits, the A background scores then the A foreground
        rpn_cls_prob   [h, w, 2 A] softmax over (background, foreground) of each anchor
        rpn_bbox_pred  [h, w, 4 A] anchor deltas, channel 4 a + k (normalised by the
                       anchor stds, NORMALIZE_RPN)
        rfcn_cls       [h, w, k k (C + 1)] position-sensitive class scores
        rfcn_bbox      [h, w, k k 8] position-sensitive box deltas (background, object)
    """
    features = keras.Input(feature_shape, name="features")
    half = feature_shape[-1] // 2
    rpn_feat = ChannelSlice(0, half, name="rpn_features")(features)
    rfcn_feat = ChannelSlice(half, feature_shape[-1], name="rfcn_features")(features)
    score, prob, bbox = RPNHead(anchor_scales, feature_stride=feature_stride,
                                name="rpn")(rpn_feat)
    cells = group_size * group_size
    rfcn_cls = conv1x1(cells * (num_classes + 1), "rfcn_cls", "float32")(rfcn_feat)
    rfcn_bbox = conv1x1(cells * BOX_CHANNELS, "rfcn_bbox", "float32", stddev=0.001)(rfcn_feat)
    outputs = dict(zip(MAP_NAMES, (score, prob, bbox, rfcn_cls, rfcn_bbox)))
    return keras.Model(features, outputs, name="task_net")


@keras.saving.register_keras_serializable(package="keras_video")
class ChannelSlice(keras.layers.Layer):
    """Channels [start, stop) of a channels-last tensor (the reference's SliceChannel)."""

    def __init__(self, start, stop, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop = int(start), int(stop)

    def call(self, x):
        return x[..., self.start:self.stop]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.stop - self.start)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package="keras_video")
class ImageInfo(keras.layers.Layer):
    """[B, 3] (height, width, scale 1) of the model's input, one row per image of
    `reference`'s batch: the proposals' im_info for frames of a fixed size."""

    def __init__(self, image_size, **kwargs):
        super().__init__(autocast=False, **kwargs)
        self.image_size = tuple(int(s) for s in image_size)

    def call(self, reference):
        row = tf.constant([[*self.image_size, 1.0]], tf.float32)
        return tf.tile(row, [tf.shape(reference)[0], 1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 3)

    def get_config(self):
        return {**super().get_config(), "image_size": self.image_size}


@keras.saving.register_keras_serializable(package="keras_video")
class DetectionOutput(keras.layers.Layer):
    """[scores [B R, C + 1], boxes [B R, 4], maps [B, ...]] (R RoIs an image, in image
    order, as RPNProposals gives them; `maps` only tells B) -> the detections of the
    reference's pred_eval, per image: for each object class, the RoIs scoring above
    `score_threshold`, NMS at `nms_threshold` (+1 IoU, keras_video.layers.box_ops
    .nms_per_class); then the best `max_detections` over all classes. Returns (boxes
    [B, M, 4], scores [B, M], labels [B, M] int32 1..C, count [B] int32), padded with
    zeros past count, best first."""

    def __init__(self, score_threshold=SCORE_THRESHOLD, nms_threshold=TEST_NMS,
                 max_detections=MAX_DETECTIONS, **kwargs):
        super().__init__(autocast=False, **kwargs)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.max_detections = int(max_detections)

    def _image(self, image):
        scores, boxes = image
        index, label = box_ops.nms_per_class(boxes, scores[:, 1:], self.nms_threshold,
                                             self.max_detections, self.score_threshold)
        label += 1  # class 0 is the background
        pad = self.max_detections - tf.size(index)
        return (tf.pad(tf.gather(boxes, index), [[0, pad], [0, 0]]),
                tf.pad(tf.gather_nd(scores, tf.stack([index, label], -1)), [[0, pad]]),
                tf.pad(label, [[0, pad]]), tf.size(index))

    def call(self, inputs):
        scores, boxes, maps = inputs
        batch = tf.shape(maps)[0]
        scores = tf.reshape(scores, [batch, -1, scores.shape[-1]])  # C + 1: static
        boxes = tf.reshape(boxes, [batch, -1, 4])
        m = self.max_detections
        return box_ops.per_image(self._image, (scores, boxes), (
            tf.TensorSpec((m, 4), tf.float32), tf.TensorSpec((m,), tf.float32),
            tf.TensorSpec((m,), tf.int32), tf.TensorSpec((), tf.int32)), maps.shape[0])

    def compute_output_shape(self, input_shape):
        b, m = input_shape[2][0], self.max_detections
        return (b, m, 4), (b, m), (b, m), (b,)

    def get_config(self):
        return {**super().get_config(), "score_threshold": self.score_threshold,
                "nms_threshold": self.nms_threshold, "max_detections": self.max_detections}


@keras.saving.register_keras_serializable(package="keras_video")
class RoIVote(keras.layers.Layer):
    """Call on [cls_pooled [R, k, k, C + 1], bbox_pooled [R, k, k, 8 or 4], rois [R, 5]]:
    R-FCN's voting (the average over the k x k bins), the class softmax, and the boxes:
    the foreground deltas (the last 4 channels: slots 4..7 of all 8, or the foreground
    slot alone), de-normalised by BBOX_STDS / MEANS, decoded on the RoIs and clipped to
    the image. Returns (scores [R, C + 1], boxes [R, 4])."""

    def __init__(self, image_size, stds=BBOX_STDS, means=BBOX_MEANS, **kwargs):
        super().__init__(autocast=False, **kwargs)
        self.image_size = tuple(int(s) for s in image_size)
        self.stds, self.means = tuple(stds), tuple(means)

    def call(self, inputs):
        cls_pooled, bbox_pooled, rois = inputs
        logits = tf.reduce_mean(tf.cast(cls_pooled, tf.float32), axis=(1, 2))
        deltas = tf.reduce_mean(tf.cast(bbox_pooled, tf.float32), axis=(1, 2))[:, -4:]
        boxes = box_ops.decode_boxes(rois[:, 1:], deltas, self.means, self.stds)
        boxes = box_ops.clip_boxes(boxes, float(self.image_size[0]), float(self.image_size[1]))
        return tf.nn.softmax(logits, axis=-1), boxes

    def get_config(self):
        return {**super().get_config(), "image_size": self.image_size, "stds": self.stds,
                "means": self.means}


def ps_roi_pooling(num_classes, stride, box_channels=BOX_CHANNELS, name=None):
    """The PSRoIPooling of both R-FCN map sets at once (`pool_maps`): rfcn_cls's C + 1
    output channels, then the last `box_channels` of rfcn_bbox's (all 8 for training;
    FOREGROUND_BOX_CHANNELS at inference, which reads no other). The pooling reads
    each output channel's k x k score maps alone, so one call on the concatenated maps
    gives both results, with one integral image and one set of gathers."""
    return PSRoIPooling(1.0 / stride, num_classes + 1 + box_channels, GROUP_SIZE, name=name)


def pool_maps(pooling, maps, rois):
    """(rfcn_cls pooled [R, k, k, C + 1], rfcn_bbox pooled [R, k, k, B]) over `rois`
    with a `ps_roi_pooling` layer, B its box channels: rfcn_bbox's last B channel
    groups (its channels are class-major, k x k score maps per output channel, so the
    foreground slot is the last 4 k k channels)."""
    box_channels = pooling.output_dim - maps["rfcn_cls"].shape[-1] // GROUP_SIZE ** 2
    boxes = maps["rfcn_bbox"][..., -box_channels * GROUP_SIZE ** 2:]
    pooled = pooling([keras.ops.concatenate([maps["rfcn_cls"], boxes], -1), rois])
    return pooled[..., :-box_channels], pooled[..., -box_channels:]


def detect_net(map_shapes, image_size, num_classes, max_detections=MAX_DETECTIONS,
               stride=dff_lib.FEATURE_STRIDE, anchor_scales=box_ops.ANCHOR_SCALES):
    """The dense maps of `detection_net` -> detections {"boxes" [B, M, 4] (x1, y1, x2,
    y2 in pixels of the model's input), "scores" [B, M], "labels" [B, M] int32 (1..C),
    "count" [B] int32}: the reference's test-time proposals, R-FCN head and
    post-processing."""
    maps = {name: keras.Input(shape, name=name)
            for name, shape in map_shapes.items()}
    info = ImageInfo(image_size, name="im_info")(maps["rpn_cls_prob"])
    rois, _ = RPNProposals(feature_stride=stride, anchor_scales=anchor_scales,
                           name="proposals")(
        [maps["rpn_cls_prob"], maps["rpn_bbox_pred"], info])
    # The background slot's box deltas are never read at test time: not pooled.
    pooling = ps_roi_pooling(num_classes, stride, FOREGROUND_BOX_CHANNELS, name="psroi")
    scores, boxes = RoIVote(image_size, name="vote")([*pool_maps(pooling, maps, rois), rois])
    out = DetectionOutput(max_detections=max_detections, name="detections")(
        [scores, boxes, maps["rpn_cls_prob"]])
    return keras.Model(maps, dict(zip(("boxes", "scores", "labels", "count"), out)),
                       name="detect_net")


def detector_of(model):
    """The inference network on the task net's maps of a `rfcn` / `dff_rfcn` model."""
    n_feat, _, n_task = dff_lib.dff_parts(model)
    shapes = {name: tuple(n_task.output[name].shape[1:]) for name in MAP_NAMES}
    num_classes = shapes["rfcn_cls"][-1] // GROUP_SIZE ** 2 - 1
    rpn = n_task.get_layer("rpn")
    return detect_net(shapes, tuple(n_feat.input.shape[1:3]), num_classes,
                      stride=rpn.feature_stride, anchor_scales=rpn.anchor_scales)


def detector_stages(detect):
    """The four stages of a `detect_net`, on its own layers, so that a caller can
    compile the arithmetic ones (XLA) apart from the two NMS steps, which XLA cannot:

        rank(maps)                   -> (boxes, scores): the decoded anchors, best
                                        first (RPNProposals.ranked; arithmetic)
        propose(boxes, scores)       -> rois: their NMS (RPNProposals.suppress)
        score(maps, rois)            -> (class scores, boxes): PSRoI pooling and voting
                                        (arithmetic)
        select(scores, boxes, maps)  -> the detections dict (per-class NMS)

    select(*score(maps, propose(*rank(maps))), maps) == detect(maps)."""
    info, proposals = detect.get_layer("im_info"), detect.get_layer("proposals")
    pooling, vote = detect.get_layer("psroi"), detect.get_layer("vote")
    output = detect.get_layer("detections")

    def rank(maps):
        return proposals.ranked([maps["rpn_cls_prob"], maps["rpn_bbox_pred"],
                                 info(maps["rpn_cls_prob"])])

    def propose(boxes, scores):
        return proposals.suppress(boxes, scores)[0]

    def score(maps, rois):
        return vote([*pool_maps(pooling, maps, rois), rois])

    def select(scores, boxes, maps):
        return dict(zip(("boxes", "scores", "labels", "count"),
                        output([scores, boxes, maps["rpn_cls_prob"]])))

    return rank, propose, score, select


def is_detector(model):
    """Whether `model` is a `rfcn` / `dff_rfcn` model (its task net gives maps)."""
    names = [layer.name for layer in model.layers]
    return "task_net" in names and isinstance(model.get_layer("task_net").output, dict)


def _check(num_classes, input_shape):
    if num_classes is None or num_classes < 1:
        raise ValueError(f"num_classes (object classes) must be at least 1, got "
                         f"{num_classes!r}")
    if len(input_shape) != 3 or input_shape[-1] != 3 or None in input_shape[:2]:
        raise ValueError(f"input_shape must be (H, W, 3) with H, W known, got {input_shape}")


def _nets(num_classes, input_shape, backbone, feature_width, width, backbone_weights,
          freeze_batchnorm, anchor_scales, output_stride):
    _check(num_classes, input_shape)
    n_feat = dff_lib.feature_net(tuple(input_shape), backbone, feature_width, width,
                                 backbone_weights, freeze_batchnorm, output_stride)
    return n_feat, detection_net(n_feat.output.shape[1:], num_classes, anchor_scales,
                                 feature_stride=output_stride)


def rfcn(num_classes=None, input_shape=(608, 1008, 3), backbone="resnet101",
         feature_width=1024, width=1.0, backbone_weights=None, freeze_batchnorm=False,
         anchor_scales=box_ops.ANCHOR_SCALES, output_stride=dff_lib.FEATURE_STRIDE):
    """The per-frame R-FCN: {"current"} frames [B, H, W, 3] in [0, 255] -> the dense maps
    (`detection_net`). Defaults: the reference's ResNet-101 at about its 600 x 1000
    test scale, anchors 8, 16, 32 x 16 px; `backbone_weights` a torchvision ImageNet
    .pth. Smaller frames want smaller `anchor_scales` (anchor side = scale x stride)."""
    n_feat, n_task = _nets(num_classes, input_shape, backbone, feature_width, width,
                           backbone_weights, freeze_batchnorm, anchor_scales, output_stride)
    return dff_lib.per_frame(n_feat, n_task, "rfcn")


def dff_rfcn(num_classes=None, input_shape=(608, 1008, 3), backbone="resnet101",
             feature_width=1024, width=1.0, flow_width=None, backbone_weights=None,
             freeze_batchnorm=False, anchor_scales=box_ops.ANCHOR_SCALES,
             output_stride=dff_lib.FEATURE_STRIDE):
    """Deep Feature Flow on R-FCN: {"current", "key"} -> the current frame's maps, its
    features warped from the key frame's (or the key frame's own when key ==
    current)."""
    n_feat, n_task = _nets(num_classes, input_shape, backbone, feature_width, width,
                           backbone_weights, freeze_batchnorm, anchor_scales, output_stride)
    return dff_lib.dff_model(n_feat, n_task, width if flow_width is None else flow_width,
                             name="dff_rfcn")
