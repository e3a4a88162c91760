"""R-FCN's region proposals: the RPN's scores and box deltas -> RoIs for PSRoIPooling.

The reference, msracver/Deep-Feature-Flow, builds its symbols with
`mx.contrib.sym.Proposal` (CXX_PROPOSAL: true in
experiments/dff_rfcn/cfgs/resnet_v1_101_flownet_imagenet_vid_rfcn_end2end_ohem.yaml);
the repository carries that operator's batched twin, dff_rfcn/operator_cxx/
multi_proposal.cu, whose steps this layer follows for every image of the batch:

1. anchors (lib/rpn/generate_anchor.py, scales 8, 16, 32, ratios 0.5, 1, 2, stride
   16) at every position, position-major, anchor-minor;
2. the deltas, de-normalised by ANCHOR_MEANS / ANCHOR_STDS (0, 0, 0, 0 / 0.1, 0.1,
   0.4, 0.4: the config's NORMALIZE_RPN, dff_rfcn/operator_py/rpn_inv_normalize.py),
   decoded (bbox_pred) and clipped to the image (im_info height, width);
3. positions beyond the image's own part of the map (row >= int(height / stride) or
   column >= int(width / stride): padding of a smaller image) and boxes with a side
   (+1) below min_size * im_info scale get score -1 (a too small box is also widened
   by min_size * scale / 2 on every side). They are not removed: they sort after
   every real proposal (the Python operator dff_rfcn/operator_py/proposal.py drops
   them instead; with the config's RPN_MIN_SIZE 0 and unpadded maps both agree);
4. the pre_nms_top_n best by score (equal scores: lower index first, the stable sort
   of the reference), greedy NMS with +1 IoU above nms_threshold suppressed, the
   first post_nms_top_n kept (post_nms_top_n at most pre_nms_top_n, and
   pre_nms_top_n at most the number of anchors, as the reference clamps them);
5. fewer than post_nms_top_n survivors are repeated cyclically (row i takes survivor
   i mod count, the reference's PrepareOutput), so every image gives exactly
   post_nms_top_n rows.

Channel layout, channels-last. The reference's rpn_cls_prob is [B, 2 A, H, W] with
the A background probabilities first, then the A foreground ones (its softmax runs
over the `(0, 2, -1, 0)` reshape); here `cls_prob` is [B, H, W, 2 A] with channels
(bg_0 .. bg_{A-1}, fg_0 .. fg_{A-1}) and only the last A are read. `bbox_deltas` is
[B, H, W, 4 A] with channel 4 a + k holding delta k (dx, dy, dw, dh) of anchor a.
`im_info` is [B, 3]: (height, width, scale) of the resized image.
"""

import keras
import tensorflow as tf

from keras_video.layers import box_ops

# The config's TRAIN and TEST RPN settings (identical there).
PRE_NMS_TOP_N = 6000
POST_NMS_TOP_N = 300
NMS_THRESHOLD = 0.7
MIN_SIZE = 0
ANCHOR_MEANS = (0.0, 0.0, 0.0, 0.0)
ANCHOR_STDS = (0.1, 0.1, 0.4, 0.4)


@keras.saving.register_keras_serializable(package="keras_video")
class RPNProposals(keras.layers.Layer):
    """[cls_prob [B, H, W, 2 A], bbox_deltas [B, H, W, 4 A], im_info [B, 3]] ->
    (rois [B * post_nms_top_n, 5] = (batch index, x1, y1, x2, y2) in image pixels,
    scores [B * post_nms_top_n]), image by image, each image's rows best first.

    pre_nms_top_n, post_nms_top_n, nms_threshold, min_size apply at inference; the
    training_* twins when called with training=True (the reference builds its train
    symbol from cfg.TRAIN and its test symbol from cfg.TEST). All default to the
    config: 6000, 300, 0.7, 0. A top-n <= 0 means all anchors. delta_means /
    delta_stds de-normalise the deltas (default the config's ANCHOR_MEANS /
    ANCHOR_STDS; (0, 0, 0, 0) / (1, 1, 1, 1) for deltas that are not normalised).
    No gradient flows back (the reference's backward is zero).
    """

    def __init__(self, feature_stride=box_ops.FEATURE_STRIDE, anchor_scales=box_ops.ANCHOR_SCALES,
                 anchor_ratios=box_ops.ANCHOR_RATIOS, pre_nms_top_n=PRE_NMS_TOP_N,
                 post_nms_top_n=POST_NMS_TOP_N, nms_threshold=NMS_THRESHOLD, min_size=MIN_SIZE,
                 training_pre_nms_top_n=PRE_NMS_TOP_N, training_post_nms_top_n=POST_NMS_TOP_N,
                 training_nms_threshold=NMS_THRESHOLD, training_min_size=MIN_SIZE,
                 delta_means=ANCHOR_MEANS, delta_stds=ANCHOR_STDS, **kwargs):
        super().__init__(autocast=False, **kwargs)
        self.feature_stride = int(feature_stride)
        self.anchor_scales = tuple(float(s) for s in anchor_scales)
        self.anchor_ratios = tuple(float(r) for r in anchor_ratios)
        self.pre_nms_top_n, self.post_nms_top_n = int(pre_nms_top_n), int(post_nms_top_n)
        self.nms_threshold, self.min_size = float(nms_threshold), float(min_size)
        self.training_pre_nms_top_n = int(training_pre_nms_top_n)
        self.training_post_nms_top_n = int(training_post_nms_top_n)
        self.training_nms_threshold = float(training_nms_threshold)
        self.training_min_size = float(training_min_size)
        self.delta_means = tuple(float(v) for v in delta_means)
        self.delta_stds = tuple(float(v) for v in delta_stds)
        self.anchors = box_ops.generate_anchors(self.feature_stride, self.anchor_ratios,
                                                self.anchor_scales)
        self.num_anchors = len(self.anchors)

    def build(self, input_shape):
        cls_shape, deltas_shape, info_shape = input_shape
        anchors = self.num_anchors
        if len(cls_shape) != 4 or cls_shape[-1] not in (None, 2 * anchors):
            raise ValueError(f"cls_prob must be [B, H, W, {2 * anchors}], got {cls_shape}")
        if len(deltas_shape) != 4 or deltas_shape[-1] not in (None, 4 * anchors):
            raise ValueError(f"bbox_deltas must be [B, H, W, {4 * anchors}], got {deltas_shape}")
        if len(info_shape) != 2 or info_shape[-1] not in (None, 3):
            raise ValueError(f"im_info must be [B, 3], got {info_shape}")

    def _settings(self, training):
        if training:
            return (self.training_pre_nms_top_n, self.training_post_nms_top_n,
                    self.training_nms_threshold, self.training_min_size)
        return self.pre_nms_top_n, self.post_nms_top_n, self.nms_threshold, self.min_size

    def _top_counts(self, count, pre_nms_top_n, post_nms_top_n):
        """The reference's clamped top-n before and after NMS: Python ints when the
        number of anchors `count` is static, else int32 tensors."""
        def at_most(limit, value):
            return min(limit, value) if isinstance(value, int) else tf.minimum(limit, value)

        pre = count if pre_nms_top_n <= 0 else at_most(pre_nms_top_n, count)
        post = pre if post_nms_top_n <= 0 else at_most(post_nms_top_n, pre)
        return pre, post

    def call(self, inputs, training=None):
        return self.suppress(*self.ranked(inputs, training), training=training)

    def ranked(self, inputs, training=None):
        """Steps 1-4 up to NMS: (the pre_nms_top_n best boxes [B, pre, 4], their scores
        [B, pre]), plain tensor arithmetic that XLA compiles."""
        pre_nms_top_n, post_nms_top_n, _, min_size = self._settings(training)
        cls_prob, bbox_deltas, im_info = (tf.stop_gradient(tf.cast(x, tf.float32)) for x in inputs)
        num_anchors = self.num_anchors
        batch, feat_h, feat_w = (tf.shape(cls_prob)[i] for i in range(3))
        static_h, static_w = cls_prob.shape[1], cls_prob.shape[2]
        count = (static_h * static_w * num_anchors if static_h is not None and static_w is not None
                 else feat_h * feat_w * num_anchors)

        scores = tf.reshape(cls_prob[..., num_anchors:], (batch, -1))  # [B, N], (h, w, a) order
        deltas = tf.reshape(bbox_deltas, (batch, -1, 4))
        boxes = box_ops.decode_boxes(
            box_ops.shifted_anchors(feat_h, feat_w, self.feature_stride, self.anchors)[None],
            deltas, self.delta_means, self.delta_stds)
        height, width, scale = im_info[:, 0:1], im_info[:, 1:2], im_info[:, 2:3]  # [B, 1]
        boxes = box_ops.clip_boxes(boxes, height, width)

        # Positions in the padding beyond the image: score -1 (int() of a positive float).
        index = tf.range(tf.shape(scores)[1])
        row, col = index // (feat_w * num_anchors), index // num_anchors % feat_w
        real_h = tf.cast(tf.floor(height / self.feature_stride), tf.int32)
        real_w = tf.cast(tf.floor(width / self.feature_stride), tf.int32)
        outside = (row[None] >= real_h) | (col[None] >= real_w)
        # Too small boxes: widened by half the minimum size on every side, score -1.
        smallest = min_size * scale
        small = ((boxes[..., 2] - boxes[..., 0] + 1.0 < smallest)
                 | (boxes[..., 3] - boxes[..., 1] + 1.0 < smallest))
        half = smallest[..., None] / 2.0
        boxes = tf.where(small[..., None], boxes + tf.concat([-half, -half, half, half], -1), boxes)
        scores = tf.where(outside | small, -1.0, scores)

        pre, _ = self._top_counts(count, pre_nms_top_n, post_nms_top_n)
        top_scores, top_index = tf.math.top_k(scores, k=pre)  # ties: lower index first
        return tf.gather(boxes, top_index, batch_dims=1), top_scores  # [B, pre, 4], [B, pre]

    def suppress(self, top_boxes, top_scores, training=None):
        """Steps 4-5 on `ranked`'s output: NMS, the first post_nms_top_n, cyclic
        padding -> (rois, scores) as `call`."""
        _, post_nms_top_n, nms_threshold, _ = self._settings(training)
        batch = tf.shape(top_scores)[0]
        pre = top_scores.shape[1] if top_scores.shape[1] is not None else tf.shape(top_scores)[1]
        _, post = self._top_counts(pre, 0, post_nms_top_n)  # ranked's pre: all of them

        def select(image):
            image_boxes, image_scores = image
            keep = box_ops.nms(image_boxes, image_scores, nms_threshold, post)
            keep = tf.gather(keep, tf.range(post) % tf.size(keep))  # cyclic padding
            return tf.gather(image_boxes, keep), tf.gather(image_scores, keep)

        kept_boxes, kept_scores = box_ops.per_image(
            select, (top_boxes, top_scores),
            (tf.TensorSpec((None, 4), tf.float32), tf.TensorSpec((None,), tf.float32)))
        image_index = tf.broadcast_to(tf.cast(tf.range(batch)[:, None, None], tf.float32),
                                      tf.concat([tf.shape(kept_boxes)[:2], [1]], 0))
        rois = tf.reshape(tf.concat([image_index, kept_boxes], -1), (-1, 5))
        return rois, tf.reshape(kept_scores, (-1,))

    def compute_output_shape(self, input_shape):
        cls_shape = input_shape[0]
        batch, feat_h, feat_w = cls_shape[:3]
        rows = None
        same_in_both_modes = (self.pre_nms_top_n == self.training_pre_nms_top_n
                              and self.post_nms_top_n == self.training_post_nms_top_n)
        if None not in (batch, feat_h, feat_w) and same_in_both_modes:
            rows = batch * self._top_counts(feat_h * feat_w * self.num_anchors,
                                            self.pre_nms_top_n, self.post_nms_top_n)[1]
        return (rows, 5), (rows,)

    def get_config(self):
        return {**super().get_config(), "feature_stride": self.feature_stride,
                "anchor_scales": self.anchor_scales, "anchor_ratios": self.anchor_ratios,
                "pre_nms_top_n": self.pre_nms_top_n, "post_nms_top_n": self.post_nms_top_n,
                "nms_threshold": self.nms_threshold, "min_size": self.min_size,
                "training_pre_nms_top_n": self.training_pre_nms_top_n,
                "training_post_nms_top_n": self.training_post_nms_top_n,
                "training_nms_threshold": self.training_nms_threshold,
                "training_min_size": self.training_min_size,
                "delta_means": self.delta_means, "delta_stds": self.delta_stds}
