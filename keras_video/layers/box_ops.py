"""Box arithmetic of R-FCN, the detector of Deep Feature Flow, in TensorFlow.

The conventions are those of the reference, msracver/Deep-Feature-Flow (MXNet),
inherited from py-faster-rcnn:

* A box is (x1, y1, x2, y2) in image pixels with both corners inside the box, so its
  width is x2 - x1 + 1 and its centre x1 + 0.5 (width - 1) (lib/bbox/bbox_transform.py).
  The same +1 enters every area: IoU, NMS (lib/nms/nms.py) and the proposal
  operator's size filter.
* A regression delta is (dx, dy, dw, dh): the centre offset in units of the box size
  and the log size ratio (bbox_transform.py's nonlinear_transform / nonlinear_pred).
  Deltas are normalised as (delta - mean) / std; the config
  experiments/dff_rfcn/cfgs/resnet_v1_101_flownet_imagenet_vid_rfcn_end2end_ohem.yaml
  uses BBOX_MEANS 0, 0, 0, 0 and BBOX_STDS 0.1, 0.1, 0.2, 0.2 for the R-FCN head
  (dff_rfcn/core/rcnn.py) and ANCHOR_MEANS 0, 0, 0, 0 / ANCHOR_STDS 0.1, 0.1, 0.4, 0.4
  for the RPN (dff_rfcn/operator_py/rpn_inv_normalize.py).
* Anchors are ratio-major, scale-minor (lib/rpn/generate_anchor.py), and the anchors of
  a feature map are position-major (row h, then column w), anchor-minor
  (dff_rfcn/operator_py/proposal.py, dff_rfcn/operator_cxx/multi_proposal.cu).

Boxes may carry K class-specific boxes in the last axis ([..., 4 K], as the R-FCN head
predicts them); every function here broadcasts over the leading axes.
"""

import numpy as np
import tensorflow as tf

# The config's anchor settings (network: ANCHOR_SCALES, ANCHOR_RATIOS, RPN_FEAT_STRIDE).
ANCHOR_SCALES = (8, 16, 32)
ANCHOR_RATIOS = (0.5, 1, 2)
FEATURE_STRIDE = 16


def generate_anchors(base_size=FEATURE_STRIDE, ratios=ANCHOR_RATIOS, scales=ANCHOR_SCALES):
    """[len(ratios) * len(scales), 4] float32 anchors around the window (0, 0, base_size - 1,
    base_size - 1): a NumPy port of lib/rpn/generate_anchor.py, ratio-major.

    Each ratio r keeps the window's area: width round(sqrt(area / r)), height
    round(width * r) (NumPy's round, half to even, as the reference), both then
    multiplied by each scale about the window's centre. With the defaults these are
    the 9 anchors of py-faster-rcnn, e.g. (-84, -40, 99, 55) for ratio 0.5, scale 8.
    """
    base = np.array([0.0, 0.0, base_size - 1.0, base_size - 1.0])
    ratios = np.asarray(ratios, np.float64)
    scales = np.asarray(scales, np.float64)

    def centre_and_size(box):
        width, height = box[2] - box[0] + 1, box[3] - box[1] + 1
        return width, height, box[0] + 0.5 * (width - 1), box[1] + 0.5 * (height - 1)

    def make(widths, heights, x_ctr, y_ctr):
        return np.stack([x_ctr - 0.5 * (widths - 1), y_ctr - 0.5 * (heights - 1),
                         x_ctr + 0.5 * (widths - 1), y_ctr + 0.5 * (heights - 1)], axis=-1)

    width, height, x_ctr, y_ctr = centre_and_size(base)
    ratio_widths = np.round(np.sqrt(width * height / ratios))
    ratio_heights = np.round(ratio_widths * ratios)
    ratio_anchors = make(ratio_widths, ratio_heights, x_ctr, y_ctr)
    anchors = [make(w * scales, h * scales, x, y)
               for w, h, x, y in map(centre_and_size, ratio_anchors)]
    return np.concatenate(anchors).astype(np.float32)


def shifted_anchors(feat_h, feat_w, stride=FEATURE_STRIDE, anchors=None):
    """[feat_h * feat_w * A, 4] float32: `anchors` (default `generate_anchors(stride)`)
    moved to every feature-map position (x, y) * stride, in the reference's order:
    row h slowest, then column w, then anchor a (row index (h * feat_w + w) * A + a),
    the order in which the [H, W, A * k] channels-last RPN outputs flatten."""
    anchors = generate_anchors(stride) if anchors is None else anchors
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    shift_x = tf.cast(tf.range(feat_w) * stride, tf.float32)
    shift_y = tf.cast(tf.range(feat_h) * stride, tf.float32)
    shift_y, shift_x = tf.meshgrid(shift_y, shift_x, indexing="ij")  # [H, W]
    shifts = tf.stack([shift_x, shift_y, shift_x, shift_y], axis=-1)
    shifts = tf.reshape(shifts, (-1, 1, 4))  # [H W, 1, 4]
    return tf.reshape(shifts + anchors[None], (-1, 4))


def _split_classes(boxes):
    """[..., 4 K] -> [..., K, 4]."""
    boxes = tf.convert_to_tensor(boxes)
    return tf.reshape(boxes, tf.concat([tf.shape(boxes)[:-1], [-1, 4]], axis=0))


def _join_classes(boxes):
    """[..., K, 4] -> [..., 4 K]."""
    return tf.reshape(boxes, tf.concat([tf.shape(boxes)[:-2], [-1]], axis=0))


def _centres_and_sizes(boxes):
    """(ctr_x, ctr_y, width, height) of [..., 4] boxes with the +1 width convention."""
    widths = boxes[..., 2] - boxes[..., 0] + 1.0
    heights = boxes[..., 3] - boxes[..., 1] + 1.0
    ctr_x = boxes[..., 0] + 0.5 * (widths - 1.0)
    ctr_y = boxes[..., 1] + 0.5 * (heights - 1.0)
    return ctr_x, ctr_y, widths, heights


def encode_boxes(boxes, gt, means=(0.0, 0.0, 0.0, 0.0), stds=(1.0, 1.0, 1.0, 1.0)):
    """Regression targets [..., 4] taking `boxes` to `gt` (both [..., 4]), normalised as
    (target - means) / stds: bbox_transform.py's nonlinear_transform (its 1e-14 guard
    included) followed by dff_rfcn/core/rcnn.py's normalisation."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    gt = tf.convert_to_tensor(gt, tf.float32)
    ex_x, ex_y, ex_w, ex_h = _centres_and_sizes(boxes)
    gt_x, gt_y, gt_w, gt_h = _centres_and_sizes(gt)
    targets = tf.stack([(gt_x - ex_x) / (ex_w + 1e-14), (gt_y - ex_y) / (ex_h + 1e-14),
                        tf.math.log(gt_w / ex_w), tf.math.log(gt_h / ex_h)], axis=-1)
    return (targets - tf.constant(means, tf.float32)) / tf.constant(stds, tf.float32)


def decode_boxes(boxes, deltas, means=(0.0, 0.0, 0.0, 0.0), stds=(1.0, 1.0, 1.0, 1.0)):
    """Boxes [..., 4 K] that `deltas` [..., 4 K] (normalised by means / stds, each of 4
    values) predict from `boxes` [..., 4]: the deltas are de-normalised (delta * std +
    mean, as rpn_inv_normalize.py does for the RPN) and applied as bbox_transform.py's
    nonlinear_pred (bbox_pred), class by class."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    deltas = tf.convert_to_tensor(deltas, tf.float32)
    split = _split_classes(deltas) * tf.constant(stds, tf.float32) + tf.constant(means, tf.float32)
    ctr_x, ctr_y, widths, heights = (v[..., None] for v in _centres_and_sizes(boxes))
    pred_x = split[..., 0] * widths + ctr_x
    pred_y = split[..., 1] * heights + ctr_y
    pred_w = tf.exp(split[..., 2]) * widths
    pred_h = tf.exp(split[..., 3]) * heights
    predicted = tf.stack([pred_x - 0.5 * (pred_w - 1.0), pred_y - 0.5 * (pred_h - 1.0),
                          pred_x + 0.5 * (pred_w - 1.0), pred_y + 0.5 * (pred_h - 1.0)], axis=-1)
    return _join_classes(predicted)


def clip_boxes(boxes, height, width):
    """Boxes [..., 4 K] with x clipped to [0, width - 1] and y to [0, height - 1]
    (bbox_transform.py's clip_boxes). `height` / `width`: scalars, or tensors that
    broadcast against the leading axes of `boxes` (one size per image)."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    split = _split_classes(boxes)
    height = tf.cast(height, tf.float32)[..., None, None]
    width = tf.cast(width, tf.float32)[..., None, None]
    upper = tf.concat([width, height, width, height], axis=-1) - 1.0  # [..., 1, 4]
    return _join_classes(tf.maximum(tf.minimum(split, upper), 0.0))


def box_iou(a, b):
    """[N, M] IoU of boxes a [N, 4] and b [M, 4] with the +1 areas of
    bbox_transform.py's bbox_overlaps; 0 where they do not overlap."""
    a = tf.convert_to_tensor(a, tf.float32)[:, None, :]
    b = tf.convert_to_tensor(b, tf.float32)[None, :, :]
    inter_w = tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0]) + 1.0
    inter_h = tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1]) + 1.0
    overlap = (inter_w > 0) & (inter_h > 0)
    inter = tf.where(overlap, inter_w * inter_h, 0.0)
    area_a = (a[..., 2] - a[..., 0] + 1.0) * (a[..., 3] - a[..., 1] + 1.0)
    area_b = (b[..., 2] - b[..., 0] + 1.0) * (b[..., 3] - b[..., 1] + 1.0)
    return tf.where(overlap, inter / (area_a + area_b - inter), 0.0)


def nms(boxes, scores, iou_threshold, max_output, score_threshold=float("-inf")):
    """int32 indices (at most `max_output`, best first) that greedy non-maximum
    suppression keeps from `boxes` [N, 4] scored by `scores` [N], among the boxes
    scoring above `score_threshold` (none left out by default; scores may be negative).

    Same selection as the reference's NMS (lib/nms/nms.py, and the GPU kernel of
    dff_rfcn/operator_cxx/multi_proposal.cu): the best remaining box is kept and every
    box whose IoU with it, with +1 areas, is above `iou_threshold` is dropped; IoU
    equal to the threshold survives. It runs TF's own NMS kernel
    (tf.image.non_max_suppression, which also drops only IoU > threshold, keeps only
    scores > score_threshold, and takes equal scores lowest index first) on the boxes
    (y1, x1, y2 + 1, x2 + 1): their plain IoU is the +1 IoU of the originals.
    """
    return _nms_plain(_plus_one(boxes), scores, iou_threshold, max_output, score_threshold)


def _plus_one(boxes):
    """(x1, y1, x2, y2) -> (y1, x1, y2 + 1, x2 + 1), TF's NMS order with +1 extents."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    return tf.stack([boxes[:, 1], boxes[:, 0], boxes[:, 3] + 1.0, boxes[:, 2] + 1.0], axis=-1)


def _nms_plain(boxes, scores, iou_threshold, max_output, score_threshold):
    return tf.image.non_max_suppression(boxes, tf.cast(scores, tf.float32), max_output,
                                        iou_threshold=iou_threshold,
                                        score_threshold=score_threshold)


def nms_per_class(boxes, scores, iou_threshold, max_output, score_threshold=float("-inf")):
    """Per-class NMS of class-agnostic boxes, then the best `max_output` over all
    classes: `boxes` [N, 4], `scores` [N, K] (K static) -> (box indices, classes 0..K-1),
    int32 [M], M <= max_output, best score first (equal scores: lower class, then NMS
    order). Each class is `nms` on its own column: the reference's per-class loop
    (tester.py pred_eval), with each NMS comparing a box only with its own class's."""
    num_classes = scores.shape[-1]
    if num_classes is None:
        raise ValueError("nms_per_class needs the number of classes (scores' last axis) "
                         "known when the graph is built")
    shifted = _plus_one(boxes)
    kept, classes, kept_scores = [], [], []
    for c in range(num_classes):
        keep = _nms_plain(shifted, scores[:, c], iou_threshold, max_output, score_threshold)
        kept.append(keep)
        classes.append(tf.fill(tf.shape(keep), c))
        kept_scores.append(tf.gather(scores[:, c], keep))
    kept_scores = tf.concat(kept_scores, 0)
    best = tf.math.top_k(kept_scores, k=tf.minimum(max_output, tf.size(kept_scores))).indices
    return tf.gather(tf.concat(kept, 0), best), tf.gather(tf.concat(classes, 0), best)


def per_image(fn, elems, fn_output_signature, batch_size=None):
    """tf.map_fn of `fn` over the images of the batched tensors `elems`, for the detection
    layers' image-by-image steps. A batch of one (the streaming engine's) calls `fn` once
    on the image and adds the batch axis back: no loop in the graph. `batch_size`: the
    static batch size where `elems` lost it (default: that of elems[0])."""
    batch_size = elems[0].shape[0] if batch_size is None else batch_size
    if batch_size == 1:
        return tuple(x[None] for x in fn(tuple(e[0] for e in elems)))
    return tf.map_fn(fn, elems, fn_output_signature=fn_output_signature)
