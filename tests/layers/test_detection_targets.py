"""R-FCN's training targets and losses (keras_video.layers.detection_targets) against
Python 3 ports of the reference, msracver/Deep-Feature-Flow: lib/rpn/rpn.py's
assign_anchor, dff_rfcn/operator_py/proposal_target.py with dff_rfcn/core/rcnn.py's
sample_rois, dff_rfcn/operator_py/box_annotator_ohem.py, and the gradients of the
MXNet losses of dff_rfcn/symbols/resnet_v1_101_flownet_rfcn.py; plus hand-built cases."""

import types

import numpy as np
import numpy.random as npr
import pytest
import tensorflow as tf

from keras_video.layers import box_ops
from keras_video.layers import detection_targets as dt

# The config's TRAIN settings (experiments/dff_rfcn/cfgs/
# resnet_v1_101_flownet_imagenet_vid_rfcn_end2end_ohem.yaml) as the ported code reads them.
CFG = types.SimpleNamespace(CLASS_AGNOSTIC=True, TRAIN=types.SimpleNamespace(
    RPN_BATCH_SIZE=256, RPN_FG_FRACTION=0.5, RPN_POSITIVE_OVERLAP=0.7,
    RPN_NEGATIVE_OVERLAP=0.3, RPN_CLOBBER_POSITIVES=False, RPN_BBOX_WEIGHTS=[1.0, 1.0, 1.0, 1.0],
    BATCH_ROIS=-1, BATCH_ROIS_OHEM=128, FG_FRACTION=0.25, FG_THRESH=0.5, BG_THRESH_HI=0.5,
    BG_THRESH_LO=0.0, BBOX_NORMALIZATION_PRECOMPUTED=True, BBOX_MEANS=[0.0, 0.0, 0.0, 0.0],
    BBOX_STDS=[0.1, 0.1, 0.2, 0.2], BBOX_WEIGHTS=[1.0, 1.0, 1.0, 1.0]))


def cfg_with(**train):
    """CFG with some TRAIN settings replaced."""
    return types.SimpleNamespace(CLASS_AGNOSTIC=CFG.CLASS_AGNOSTIC,
                                 TRAIN=types.SimpleNamespace(**{**vars(CFG.TRAIN), **train}))


# ---- Ports of the reference (Python 2 -> 3: print, np.float -> np.float64, `/` -> `//`).

def bbox_overlaps(boxes, query_boxes):
    """lib/bbox/bbox_transform.py's bbox_overlaps_py, vectorised with the same float64
    arithmetic (iw, ih > 0 else 0)."""
    boxes = boxes.astype(np.float64)[:, None, :]
    query = query_boxes.astype(np.float64)[None, :, :]
    iw = np.minimum(boxes[..., 2], query[..., 2]) - np.maximum(boxes[..., 0], query[..., 0]) + 1
    ih = np.minimum(boxes[..., 3], query[..., 3]) - np.maximum(boxes[..., 1], query[..., 1]) + 1
    box_area = (boxes[..., 2] - boxes[..., 0] + 1) * (boxes[..., 3] - boxes[..., 1] + 1)
    query_area = (query[..., 2] - query[..., 0] + 1) * (query[..., 3] - query[..., 1] + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        overlaps = iw * ih / (box_area + query_area - iw * ih)
    return np.where((iw > 0) & (ih > 0), overlaps, 0.0)


def bbox_transform(ex_rois, gt_rois):
    """lib/bbox/bbox_transform.py's nonlinear_transform, verbatim."""
    ex_widths = ex_rois[:, 2] - ex_rois[:, 0] + 1.0
    ex_heights = ex_rois[:, 3] - ex_rois[:, 1] + 1.0
    ex_ctr_x = ex_rois[:, 0] + 0.5 * (ex_widths - 1.0)
    ex_ctr_y = ex_rois[:, 1] + 0.5 * (ex_heights - 1.0)
    gt_widths = gt_rois[:, 2] - gt_rois[:, 0] + 1.0
    gt_heights = gt_rois[:, 3] - gt_rois[:, 1] + 1.0
    gt_ctr_x = gt_rois[:, 0] + 0.5 * (gt_widths - 1.0)
    gt_ctr_y = gt_rois[:, 1] + 0.5 * (gt_heights - 1.0)
    targets_dx = (gt_ctr_x - ex_ctr_x) / (ex_widths + 1e-14)
    targets_dy = (gt_ctr_y - ex_ctr_y) / (ex_heights + 1e-14)
    targets_dw = np.log(gt_widths / ex_widths)
    targets_dh = np.log(gt_heights / ex_heights)
    return np.vstack((targets_dx, targets_dy, targets_dw, targets_dh)).transpose()


def assign_anchor(feat_shape, gt_boxes, im_info, cfg, feat_stride=16, scales=(8, 16, 32),
                  ratios=(0.5, 1, 2), allowed_border=0, normalize_target=False,
                  bbox_mean=(0.0, 0.0, 0.0, 0.0), bbox_std=(0.1, 0.1, 0.4, 0.4),
                  base_anchors=None):
    """lib/rpn/rpn.py's assign_anchor (DEBUG prints dropped). generate_anchors is
    box_ops.generate_anchors (checked against py-faster-rcnn's values in
    test_box_ops.py); `base_anchors` (an addition) replaces them for hand-built grids."""
    def _unmap(data, count, inds, fill=0):
        if len(data.shape) == 1:
            ret = np.empty((count,), dtype=np.float32)
            ret.fill(fill)
            ret[inds] = data
        else:
            ret = np.empty((count,) + data.shape[1:], dtype=np.float32)
            ret.fill(fill)
            ret[inds, :] = data
        return ret

    im_info = im_info[0]
    scales = np.array(scales, dtype=np.float32)
    if base_anchors is None:
        base_anchors = box_ops.generate_anchors(feat_stride, list(ratios), scales)
    num_anchors = base_anchors.shape[0]
    feat_height, feat_width = feat_shape[-2:]

    shift_x = np.arange(0, feat_width) * feat_stride
    shift_y = np.arange(0, feat_height) * feat_stride
    shift_x, shift_y = np.meshgrid(shift_x, shift_y)
    shifts = np.vstack((shift_x.ravel(), shift_y.ravel(),
                        shift_x.ravel(), shift_y.ravel())).transpose()
    A = num_anchors
    K = shifts.shape[0]
    all_anchors = base_anchors.reshape((1, A, 4)) + shifts.reshape((1, K, 4)).transpose((1, 0, 2))
    all_anchors = all_anchors.reshape((K * A, 4))
    total_anchors = int(K * A)

    inds_inside = np.where((all_anchors[:, 0] >= -allowed_border) &
                           (all_anchors[:, 1] >= -allowed_border) &
                           (all_anchors[:, 2] < im_info[1] + allowed_border) &
                           (all_anchors[:, 3] < im_info[0] + allowed_border))[0]
    anchors = all_anchors[inds_inside, :]

    labels = np.empty((len(inds_inside),), dtype=np.float32)
    labels.fill(-1)

    if gt_boxes.size > 0:
        overlaps = bbox_overlaps(anchors.astype(np.float64), gt_boxes.astype(np.float64))
        argmax_overlaps = overlaps.argmax(axis=1)
        max_overlaps = overlaps[np.arange(len(inds_inside)), argmax_overlaps]
        gt_argmax_overlaps = overlaps.argmax(axis=0)
        gt_max_overlaps = overlaps[gt_argmax_overlaps, np.arange(overlaps.shape[1])]
        gt_argmax_overlaps = np.where(overlaps == gt_max_overlaps)[0]

        if not cfg.TRAIN.RPN_CLOBBER_POSITIVES:
            labels[max_overlaps < cfg.TRAIN.RPN_NEGATIVE_OVERLAP] = 0
        labels[gt_argmax_overlaps] = 1
        labels[max_overlaps >= cfg.TRAIN.RPN_POSITIVE_OVERLAP] = 1
        if cfg.TRAIN.RPN_CLOBBER_POSITIVES:
            labels[max_overlaps < cfg.TRAIN.RPN_NEGATIVE_OVERLAP] = 0
    else:
        labels[:] = 0

    num_fg = int(cfg.TRAIN.RPN_FG_FRACTION * cfg.TRAIN.RPN_BATCH_SIZE)
    fg_inds = np.where(labels == 1)[0]
    if len(fg_inds) > num_fg:
        disable_inds = npr.choice(fg_inds, size=(len(fg_inds) - num_fg), replace=False)
        labels[disable_inds] = -1

    num_bg = cfg.TRAIN.RPN_BATCH_SIZE - np.sum(labels == 1)
    bg_inds = np.where(labels == 0)[0]
    if len(bg_inds) > num_bg:
        disable_inds = npr.choice(bg_inds, size=(len(bg_inds) - num_bg), replace=False)
        labels[disable_inds] = -1

    bbox_targets = np.zeros((len(inds_inside), 4), dtype=np.float32)
    if gt_boxes.size > 0:
        bbox_targets[:] = bbox_transform(anchors, gt_boxes[argmax_overlaps, :4])

    bbox_weights = np.zeros((len(inds_inside), 4), dtype=np.float32)
    bbox_weights[labels == 1, :] = np.array(cfg.TRAIN.RPN_BBOX_WEIGHTS)

    if normalize_target:
        bbox_targets = ((bbox_targets - np.array(bbox_mean)) / np.array(bbox_std))

    labels = _unmap(labels, total_anchors, inds_inside, fill=-1)
    bbox_targets = _unmap(bbox_targets, total_anchors, inds_inside, fill=0)
    bbox_weights = _unmap(bbox_weights, total_anchors, inds_inside, fill=0)

    labels = labels.reshape((1, feat_height, feat_width, A)).transpose(0, 3, 1, 2)
    labels = labels.reshape((1, A * feat_height * feat_width))
    bbox_targets = bbox_targets.reshape((1, feat_height, feat_width, A * 4)).transpose(0, 3, 1, 2)
    bbox_weights = bbox_weights.reshape((1, feat_height, feat_width, A * 4)).transpose((0, 3, 1, 2))
    return {'label': labels, 'bbox_target': bbox_targets, 'bbox_weight': bbox_weights}


def expand_bbox_regression_targets(bbox_targets_data, num_classes, cfg):
    """lib/bbox/bbox_regression.py's expand_bbox_regression_targets, verbatim."""
    classes = bbox_targets_data[:, 0]
    if cfg.CLASS_AGNOSTIC:
        num_classes = 2
    bbox_targets = np.zeros((classes.size, 4 * num_classes), dtype=np.float32)
    bbox_weights = np.zeros(bbox_targets.shape, dtype=np.float32)
    indexes = np.where(classes > 0)[0]
    for index in indexes:
        cls = classes[index]
        start = int(4 * 1 if cls > 0 else 0) if cfg.CLASS_AGNOSTIC else int(4 * cls)
        end = start + 4
        bbox_targets[index, start:end] = bbox_targets_data[index, 1:]
        bbox_weights[index, start:end] = cfg.TRAIN.BBOX_WEIGHTS
    return bbox_targets, bbox_weights


def sample_rois(rois, fg_rois_per_image, rois_per_image, num_classes, cfg,
                labels=None, overlaps=None, bbox_targets=None, gt_boxes=None):
    """dff_rfcn/core/rcnn.py's sample_rois, verbatim (the precomputed branch unused)."""
    if labels is None:
        overlaps = bbox_overlaps(rois[:, 1:].astype(np.float64), gt_boxes[:, :4].astype(np.float64))
        gt_assignment = overlaps.argmax(axis=1)
        overlaps = overlaps.max(axis=1)
        labels = gt_boxes[gt_assignment, 4]

    fg_indexes = np.where(overlaps >= cfg.TRAIN.FG_THRESH)[0]
    fg_rois_per_this_image = np.minimum(fg_rois_per_image, fg_indexes.size)
    if len(fg_indexes) > fg_rois_per_this_image:
        fg_indexes = npr.choice(fg_indexes, size=fg_rois_per_this_image, replace=False)

    bg_indexes = np.where((overlaps < cfg.TRAIN.BG_THRESH_HI)
                          & (overlaps >= cfg.TRAIN.BG_THRESH_LO))[0]
    bg_rois_per_this_image = rois_per_image - fg_rois_per_this_image
    bg_rois_per_this_image = np.minimum(bg_rois_per_this_image, bg_indexes.size)
    if len(bg_indexes) > bg_rois_per_this_image:
        bg_indexes = npr.choice(bg_indexes, size=bg_rois_per_this_image, replace=False)

    keep_indexes = np.append(fg_indexes, bg_indexes)
    while keep_indexes.shape[0] < rois_per_image:
        gap = np.minimum(len(rois), rois_per_image - keep_indexes.shape[0])
        gap_indexes = npr.choice(range(len(rois)), size=gap, replace=False)
        keep_indexes = np.append(keep_indexes, gap_indexes)

    labels = labels[keep_indexes]
    labels[fg_rois_per_this_image:] = 0
    rois = rois[keep_indexes]

    if bbox_targets is not None:
        bbox_target_data = bbox_targets[keep_indexes, :]
    else:
        targets = bbox_transform(rois[:, 1:], gt_boxes[gt_assignment[keep_indexes], :4])
        if cfg.TRAIN.BBOX_NORMALIZATION_PRECOMPUTED:
            targets = ((targets - np.array(cfg.TRAIN.BBOX_MEANS)) / np.array(cfg.TRAIN.BBOX_STDS))
        bbox_target_data = np.hstack((labels[:, np.newaxis], targets))

    bbox_targets, bbox_weights = expand_bbox_regression_targets(bbox_target_data, num_classes, cfg)
    return rois, labels, bbox_targets, bbox_weights


def proposal_target_forward(all_rois, gt_boxes, num_classes, cfg, batch_images=1, batch_rois=-1,
                            fg_fraction=0.25):
    """dff_rfcn/operator_py/proposal_target.py's ProposalTargetOperator.forward."""
    if batch_rois == -1:
        rois_per_image = all_rois.shape[0] + gt_boxes.shape[0]
        fg_rois_per_image = rois_per_image
    else:
        rois_per_image = batch_rois // batch_images
        fg_rois_per_image = np.round(fg_fraction * rois_per_image).astype(int)
    zeros = np.zeros((gt_boxes.shape[0], 1), dtype=gt_boxes.dtype)
    all_rois = np.vstack((all_rois, np.hstack((zeros, gt_boxes[:, :-1]))))
    assert np.all(all_rois[:, 0] == 0), 'Only single item batches are supported'
    return sample_rois(all_rois, fg_rois_per_image, rois_per_image, num_classes, cfg,
                       gt_boxes=gt_boxes)


def mx_smooth_l1(x, scalar):
    """MXNet's smooth_l1 (src/operator/mshadow_op.h) and its gradient."""
    sigma2 = scalar * scalar
    value = np.where(x > 1.0 / sigma2, x - 0.5 / sigma2,
                     np.where(x < -1.0 / sigma2, -x - 0.5 / sigma2, 0.5 * x * x * sigma2))
    grad = np.where(x > 1.0 / sigma2, 1.0, np.where(x < -1.0 / sigma2, -1.0, sigma2 * x))
    return value, grad


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def box_annotator_ohem(cls_score, bbox_pred, labels, bbox_targets, bbox_weights, roi_per_img):
    """dff_rfcn/operator_py/box_annotator_ohem.py's forward with NumPy for mx.nd
    (SoftmaxActivation on [R, C]: softmax over the classes)."""
    per_roi_loss_cls = softmax(cls_score) + 1e-14
    per_roi_loss_cls = per_roi_loss_cls[np.arange(per_roi_loss_cls.shape[0], dtype='int'),
                                        labels.astype('int')]
    per_roi_loss_cls = -1 * np.log(per_roi_loss_cls)
    per_roi_loss_cls = np.reshape(per_roi_loss_cls, (-1,))
    per_roi_loss_bbox = bbox_weights * mx_smooth_l1(bbox_pred - bbox_targets, 1.0)[0]
    per_roi_loss_bbox = np.sum(per_roi_loss_bbox, axis=1)
    top_k_per_roi_loss = np.argsort(per_roi_loss_cls + per_roi_loss_bbox)
    labels_ohem = labels.copy()
    labels_ohem[top_k_per_roi_loss[::-1][roi_per_img:]] = -1
    bbox_weights_ohem = bbox_weights.copy()
    bbox_weights_ohem[top_k_per_roi_loss[::-1][roi_per_img:]] = 0
    return labels_ohem, bbox_weights_ohem


# ---- Helpers.

def random_gt(rng, height, width, count, pad_to, integer=True):
    """(boxes [pad_to, 4] float32 with garbage padding, labels [pad_to] int32)."""
    x1 = rng.uniform(0, width - 12, count)
    y1 = rng.uniform(0, height - 12, count)
    x2 = np.minimum(x1 + rng.uniform(8, width * 0.7, count), width - 1)
    y2 = np.minimum(y1 + rng.uniform(8, height * 0.7, count), height - 1)
    boxes = np.stack([x1, y1, x2, y2], axis=1)
    if integer:
        boxes = np.floor(boxes)
    padded = rng.uniform(-50, 50, (pad_to, 4))  # garbage, inverted boxes included
    padded[:count] = boxes
    labels = rng.integers(-3, 40, pad_to)
    labels[:count] = rng.integers(1, 31, count)
    return padded.astype(np.float32), labels.astype(np.int32)


def to_reference_order(values, feat_h, feat_w, anchors_per_position):
    """Ours: [H W A, k] in (h, w, a) order -> the reference's [A k, H, W] (k = 1: [A H W])."""
    k = 1 if values.ndim == 1 else values.shape[1]
    out = values.reshape(feat_h, feat_w, anchors_per_position * k).transpose(2, 0, 1)
    return out.ravel() if k == 1 else out


def run_anchor_targets(feat_h, feat_w, boxes, labels, count, height, width, base=None, **kwargs):
    anchors = box_ops.shifted_anchors(feat_h, feat_w, 16, base)
    out = dt.anchor_targets(anchors, boxes, labels, count, height, width,
                            seed=tf.constant([1, 2]), **kwargs)
    return [o.numpy() for o in out]


# ---- anchor_targets.

@pytest.mark.parametrize("case", range(6))
def test_anchor_targets_match_assign_anchor(case):
    rng = np.random.default_rng(case)
    height, width = [(200, 300), (150, 150), (333, 500), (160, 230), (200, 300), (240, 320)][case]
    feat_h, feat_w = -(-height // 16) + (case == 4), -(-width // 16) + (case == 4)  # 4: padded map
    count = int(rng.integers(1, 6))
    boxes, labels = random_gt(rng, height, width, count, 6, integer=case % 2 == 0)
    big = 10 ** 6  # subsampling off in both
    ours = run_anchor_targets(feat_h, feat_w, boxes, labels, count, height, width,
                              batch_size=big)
    gt = np.hstack([boxes[:count], labels[:count, None]]).astype(np.float32)
    ref = assign_anchor((feat_h, feat_w), gt, np.array([[height, width, 1.0]]),
                        cfg_with(RPN_BATCH_SIZE=big), normalize_target=True)
    np.testing.assert_array_equal(to_reference_order(ours[0], feat_h, feat_w, 9), ref['label'][0])
    assert (ref['label'][0] == 1).any() and (ref['label'][0] == -1).any()
    np.testing.assert_allclose(to_reference_order(ours[1], feat_h, feat_w, 9),
                               ref['bbox_target'][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(to_reference_order(ours[2], feat_h, feat_w, 9),
                                  ref['bbox_weight'][0])


@pytest.mark.parametrize("batch_size,fraction", [(256, 0.5), (16, 0.5), (40, 0.25)])
def test_anchor_subsampling_keeps_random_subsets_of_the_right_size(batch_size, fraction):
    rng = np.random.default_rng(7)
    height, width = 320, 480
    boxes, labels = random_gt(rng, height, width, 8, 10)
    unlimited = run_anchor_targets(20, 30, boxes, labels, 8, height, width, batch_size=10 ** 6)
    sampled = run_anchor_targets(20, 30, boxes, labels, 8, height, width, batch_size=batch_size,
                                 fg_fraction=fraction)
    fg, bg = unlimited[0] == 1, unlimited[0] == 0
    kept_fg, kept_bg = sampled[0] == 1, sampled[0] == 0
    assert not (kept_fg & ~fg).any() and not (kept_bg & ~bg).any()
    assert kept_fg.sum() == min(fg.sum(), int(fraction * batch_size))
    assert kept_bg.sum() == min(bg.sum(), batch_size - kept_fg.sum())
    np.testing.assert_array_equal(sampled[1], unlimited[1])
    np.testing.assert_array_equal(sampled[2], np.repeat(kept_fg[:, None], 4, axis=1).astype(float))
    if batch_size == 16:
        assert fg.sum() > 8  # the fg limit was reached in this case


def test_anchor_subsampling_is_seeded_and_uniform():
    rng = np.random.default_rng(3)
    boxes, labels = random_gt(rng, 320, 320, 2, 3)
    anchors = box_ops.shifted_anchors(20, 20)

    @tf.function
    def draw(seed):
        return dt.anchor_targets(anchors, boxes, labels, 2, 320, 320, seed=seed, batch_size=8,
                                 fg_fraction=0.5)[0]

    first = draw(tf.constant([5, 0])).numpy()
    np.testing.assert_array_equal(draw(tf.constant([5, 0])).numpy(), first)
    draws = np.stack([draw(tf.constant([5, i])).numpy() for i in range(200)])
    assert len({d.tobytes() for d in draws}) > 150
    unlimited = dt.anchor_targets(anchors, boxes, labels, 2, 320, 320, batch_size=10 ** 6)[0]
    unlimited = unlimited.numpy()
    fg = np.flatnonzero(unlimited == 1)
    assert len(fg) > 8
    frequency = (draws[:, fg] == 1).mean(axis=0)  # each fg kept with probability 4 / len(fg)
    np.testing.assert_allclose(frequency, 4 / len(fg), atol=0.15)
    # With the generator or the stateful op instead of a seed.
    generator = tf.random.Generator.from_seed(1)
    for kwargs in ({"rng": generator}, {}):
        out = dt.anchor_targets(anchors, boxes, labels, 2, 320, 320, batch_size=8, **kwargs)[0]
        assert (out.numpy() == 1).sum() == 4 and (out.numpy() == 0).sum() == 4


def test_anchor_targets_hand_built_grid():
    """Image 64 x 64, a 4 x 4 map of stride 16, two anchors per position: 16 x 16
    (a = 0) and 32 x 32 (a = 1, crossing the border unless at columns / rows 1, 2).
    The gt (16, 16, 35, 35) is 20 x 20."""
    base = np.array([[0, 0, 15, 15], [-8, -8, 23, 23]], np.float32)
    boxes = np.array([[16, 16, 35, 35], [0, 0, 0, 0]], np.float32)
    labels, targets, weights = run_anchor_targets(4, 4, boxes, np.array([3, 0]), 1, 64, 64, base)
    labels = labels.reshape(4, 4, 2)
    # a = 0: IoU 256 / 400 = 0.64 at (1, 1) (< 0.7, but the gt's best anchor: positive);
    # 0.108 at (1, 2), (2, 1), 0.025 at (2, 2), 0 elsewhere: all negative.
    expected_small = np.zeros((4, 4), np.int32)
    expected_small[1, 1] = 1
    # a = 1: inside only at rows and columns 1, 2; IoU 400 / 1024 = 0.39 at (1, 1)
    # (ignored: between 0.3 and 0.7), 0.20 at (1, 2), (2, 1) and 0.11 at (2, 2).
    expected_large = np.full((4, 4), -1, np.int32)
    expected_large[1, 2] = expected_large[2, 1] = expected_large[2, 2] = 0
    np.testing.assert_array_equal(labels[..., 0], expected_small)
    np.testing.assert_array_equal(labels[..., 1], expected_large)
    positive = (1 * 4 + 1) * 2
    dx = (25.5 - 23.5) / 16 / 0.1
    dw = np.log(20 / 16) / 0.4
    np.testing.assert_allclose(targets[positive], [dx, dx, dw, dw], rtol=1e-6)
    np.testing.assert_array_equal(weights.sum(axis=1) > 0, np.arange(32) == positive)
    # Outside anchors: target 0 (inside ones keep theirs, labelled or not).
    assert not targets.reshape(4, 4, 2, 4)[0, :, 1].any()

    # Ties: a 16 x 32 gt has IoU 0.5 with both (1, 1) and (2, 1) of a = 0: both positive.
    boxes = np.array([[16, 16, 31, 47]], np.float32)
    labels = run_anchor_targets(4, 4, boxes, np.array([1]), 1, 64, 64, base)[0].reshape(4, 4, 2)
    assert sorted(zip(*np.nonzero(labels == 1))) == [(1, 1, 0), (2, 1, 0)]
    assert labels[1, 1, 1] == labels[2, 1, 1] == -1  # IoU 1/3 with the large ones


def test_anchor_targets_keep_the_reference_zero_overlap_rule():
    """A gt that no inside anchor touches has best IoU 0, and the reference's
    np.where(overlaps == gt_max_overlaps) then makes every inside anchor with IoU 0
    positive; the port keeps that."""
    base = np.array([[-8, -8, 23, 23]], np.float32)
    boxes = np.array([[0, 0, 5, 5]], np.float32)
    ours = run_anchor_targets(4, 4, boxes, np.array([1]), 1, 64, 64, base)[0].reshape(4, 4)
    expected = np.full((4, 4), -1)
    expected[1:3, 1:3] = 1
    np.testing.assert_array_equal(ours, expected)
    ref = assign_anchor((4, 4), np.array([[0, 0, 5, 5, 1]], np.float32), np.array([[64, 64, 1.0]]),
                        CFG, base_anchors=base)
    np.testing.assert_array_equal(ours.ravel(), ref['label'][0])


def test_anchor_targets_without_boxes():
    boxes = np.full((4, 4), 7.0, np.float32)
    anchors = box_ops.shifted_anchors(13, 19)
    ref = assign_anchor((13, 19), np.zeros((0, 5)), np.array([[200, 300, 1.0]]),
                        cfg_with(RPN_BATCH_SIZE=10 ** 6), normalize_target=True)
    labels, targets, weights = (o.numpy() for o in dt.anchor_targets(
        anchors, boxes, np.ones(4, np.int32), 0, 200, 300, batch_size=10 ** 6))
    np.testing.assert_array_equal(to_reference_order(labels, 13, 19, 9), ref['label'][0])
    assert set(np.unique(labels)) == {-1, 0}
    assert not targets.any() and not weights.any()
    labels = dt.anchor_targets(anchors, boxes, np.ones(4, np.int32), 0, 200, 300,
                               seed=tf.constant([0, 1]), batch_size=64)[0].numpy()
    assert (labels == 0).sum() == 64 and (labels == 1).sum() == 0

    # No anchor inside the image (every anchor of a 96-pixel-high image is taller or
    # crosses it; the reference fails on np.argmax of nothing there): all ignored.
    labels, targets, weights = (o.numpy() for o in dt.anchor_targets(
        box_ops.shifted_anchors(6, 8), np.array([[10, 10, 50, 50]], np.float32), [1], 1, 96, 128))
    assert (labels == -1).all() and not targets.any() and not weights.any()


# ---- proposal_targets.

def random_rois(rng, gt, count, height, width):
    """Proposals: jittered copies of the gt boxes (some foreground) and random boxes."""
    near = gt[rng.integers(0, len(gt), count // 2)] + rng.normal(0, 12, (count // 2, 4))
    x1 = rng.uniform(0, width - 10, count - count // 2)
    y1 = rng.uniform(0, height - 10, count - count // 2)
    size = rng.uniform(4, 150, (len(x1), 2))
    far = np.stack([x1, y1, x1 + size[:, 0], y1 + size[:, 1]], 1)
    rois = np.concatenate([near, far])
    rois[:, 2:] = np.maximum(rois[:, 2:], rois[:, :2] + 1)
    rois = box_ops.clip_boxes(rois, height, width).numpy()
    return rois.astype(np.float32)


@pytest.mark.parametrize("case", range(5))
def test_proposal_targets_match_sample_rois(case):
    rng = np.random.default_rng(100 + case)
    height, width = 300, 400
    count = int(rng.integers(1, 5))
    boxes, labels = random_gt(rng, height, width, count, 5, integer=case % 2 == 0)
    rois = random_rois(rng, boxes[:count], 60, height, width)
    ours = [o.numpy() for o in dt.proposal_targets(rois, boxes, labels, count, 31)]
    gt = np.hstack([boxes[:count], labels[:count, None]]).astype(np.float32)
    ref_rois, ref_labels, ref_targets, ref_weights = proposal_target_forward(
        np.hstack([np.zeros((len(rois), 1), np.float32), rois]), gt, 2, CFG)
    real = 60 + count
    assert ours[0].shape == (65, 4) and ours[2].shape == (65, 8)
    np.testing.assert_array_equal(ours[4], np.arange(65) < real)
    np.testing.assert_array_equal(ours[0][:real], ref_rois[:, 1:])
    np.testing.assert_array_equal(ours[1][:real], ref_labels.astype(np.int32))
    assert 0 < (ref_labels > 0).sum() < real
    np.testing.assert_allclose(ours[2][:real], ref_targets, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ours[3][:real], ref_weights)
    # Padding rows: ignored, no targets, a finite box.
    assert (ours[1][real:] == -1).all() and not ours[2][real:].any() and not ours[3][real:].any()
    assert not ours[0][real:].any()


def test_proposal_targets_class_specific():
    rng = np.random.default_rng(9)
    boxes, labels = random_gt(rng, 300, 400, 3, 4)
    rois = random_rois(rng, boxes[:3], 30, 300, 400)
    ours = [o.numpy() for o in dt.proposal_targets(rois, boxes, labels, 3, 31,
                                                   class_agnostic=False)]
    gt = np.hstack([boxes[:3], labels[:3, None]]).astype(np.float32)
    cfg = types.SimpleNamespace(CLASS_AGNOSTIC=False, TRAIN=CFG.TRAIN)
    _, ref_labels, ref_targets, ref_weights = proposal_target_forward(
        np.hstack([np.zeros((30, 1), np.float32), rois]), gt, 31, cfg)
    assert ours[2].shape == (34, 124)
    np.testing.assert_array_equal(ours[1][:33], ref_labels)
    np.testing.assert_allclose(ours[2][:33], ref_targets, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ours[3][:33], ref_weights)


def test_proposal_targets_without_boxes():
    rng = np.random.default_rng(4)
    rois = random_rois(rng, np.array([[10, 10, 90, 90]], np.float32), 20, 200, 200)
    boxes = rng.uniform(-10, 10, (3, 4)).astype(np.float32)
    out_rois, labels, targets, weights, valid = (o.numpy() for o in dt.proposal_targets(
        rois, boxes, np.array([1, 2, 3]), 0, 31))
    np.testing.assert_array_equal(valid, np.arange(23) < 20)
    np.testing.assert_array_equal(out_rois[:20], rois)  # all background: the original order
    np.testing.assert_array_equal(labels, np.where(valid, 0, -1))
    assert not targets.any() and not weights.any() and np.isfinite(out_rois).all()


# ---- Losses.

@pytest.mark.parametrize("sigma", [1.0, 3.0])
def test_smooth_l1_is_mxnets(sigma):
    x = tf.constant(np.linspace(-2, 2, 81), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = dt.smooth_l1(x, sigma)
    value, grad = mx_smooth_l1(x.numpy().astype(np.float64), sigma)
    np.testing.assert_allclose(y.numpy(), value, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), grad, rtol=1e-6, atol=1e-7)


def test_rpn_losses_gradients_are_mxnets():
    """SoftmaxOutput(normalization='valid', ignore -1): d/dscore = (p - onehot) / valid
    count, 0 for ignored anchors; MakeLoss(grad_scale=1/256): d/dpred = weight *
    smooth_l1'(pred - target) / 256."""
    rng = np.random.default_rng(5)
    feat_h, feat_w, A = 12, 14, 9
    boxes, labels = random_gt(rng, 192, 224, 3, 4)
    gt_labels, targets, weights = run_anchor_targets(feat_h, feat_w, boxes, labels, 3, 192, 224)
    cls = tf.constant(rng.normal(0, 2, (feat_h, feat_w, 2 * A)), tf.float32)
    pred = tf.constant(rng.normal(0, 1, (feat_h, feat_w, 4 * A)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([cls, pred])
        cls_loss, box_loss = dt.rpn_losses(cls, pred, gt_labels, targets, weights)
    pairs = np.stack([cls.numpy()[..., :A].ravel(), cls.numpy()[..., A:].ravel()], 1)
    prob = softmax(pairs.astype(np.float64))
    valid = gt_labels >= 0
    count = valid.sum()
    onehot = np.eye(2)[np.maximum(gt_labels, 0)]
    grad_pairs = np.where(valid[:, None], prob - onehot, 0.0) / count
    expected = np.concatenate([grad_pairs[:, 0].reshape(feat_h, feat_w, A),
                               grad_pairs[:, 1].reshape(feat_h, feat_w, A)], axis=-1)
    np.testing.assert_allclose(tape.gradient(cls_loss, cls).numpy(), expected, atol=1e-6)
    ce = -np.log(prob[np.arange(len(prob)), np.maximum(gt_labels, 0)])
    np.testing.assert_allclose(cls_loss.numpy(), ce[valid].sum() / count, rtol=1e-5)
    diff = pred.numpy().reshape(-1, 4) - targets
    value, grad = mx_smooth_l1(diff.astype(np.float64), 1.0)
    np.testing.assert_allclose(box_loss.numpy(), (weights * value).sum() / 256, rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(box_loss, pred).numpy().reshape(-1, 4),
                               weights * grad / 256, atol=1e-7)
    assert (gt_labels == -1).any() and (weights == 0).any()
    # Probabilities instead of logits: the same loss.
    probs = tf.concat([tf.reshape(prob[:, 0], (feat_h, feat_w, A)),
                       tf.reshape(prob[:, 1], (feat_h, feat_w, A))], axis=-1)
    cls_from_prob, _ = dt.rpn_losses(tf.cast(probs, tf.float32), pred, gt_labels, targets, weights,
                                     from_logits=False)
    np.testing.assert_allclose(cls_from_prob.numpy(), cls_loss.numpy(), rtol=1e-5)


def ohem_inputs(rng, rois=300, classes=31, count=4):
    boxes, labels = random_gt(rng, 300, 400, count, 6)
    proposals = random_rois(rng, boxes[:count], rois, 300, 400) if count else \
        random_rois(rng, np.array([[10, 10, 90, 90]], np.float32), rois, 300, 400)
    targets = dt.proposal_targets(proposals, boxes, labels, count, classes)
    n = rois + 6
    score = tf.constant(rng.normal(0, 2, (n, classes)), tf.float32)
    pred = tf.constant(rng.normal(0, 1, (n, 8)), tf.float32)
    return score, pred, [t.numpy() for t in targets]


@pytest.mark.parametrize("rois", [300, 100])
def test_ohem_matches_box_annotator(rois):
    rng = np.random.default_rng(rois)
    score, pred, (_, labels, targets, weights, valid) = ohem_inputs(rng, rois)
    labels_ohem, weights_ohem = (o.numpy() for o in dt.ohem_select(
        score, pred, labels, targets, weights, valid))
    real = valid.sum()
    ref_labels, ref_weights = box_annotator_ohem(
        score.numpy()[:real].astype(np.float64), pred.numpy()[:real].astype(np.float64),
        labels[:real].astype(np.float64), targets[:real], weights[:real], 128)
    np.testing.assert_array_equal(labels_ohem[:real], ref_labels)
    np.testing.assert_array_equal(weights_ohem[:real], ref_weights)
    assert (labels_ohem[real:] == -1).all() and not weights_ohem[real:].any()
    assert (labels_ohem >= 0).sum() == min(128, real)

    with tf.GradientTape(persistent=True) as tape:
        tape.watch([score, pred])
        cls_loss, box_loss = dt.rcnn_ohem_losses(score, pred, labels, targets, weights, valid)
    kept = labels_ohem >= 0
    prob = softmax(score.numpy().astype(np.float64))
    onehot = np.eye(31)[np.maximum(labels_ohem, 0)]
    expected = np.where(kept[:, None], prob - onehot, 0.0) / kept.sum()
    np.testing.assert_allclose(tape.gradient(cls_loss, score).numpy(), expected, atol=1e-6)
    ce = -np.log(prob[np.arange(len(prob)), np.maximum(labels_ohem, 0)])
    np.testing.assert_allclose(cls_loss.numpy(), ce[kept].sum() / kept.sum(), rtol=1e-5)
    value, grad = mx_smooth_l1((pred.numpy() - targets).astype(np.float64), 1.0)
    np.testing.assert_allclose(box_loss.numpy(), (weights_ohem * value).sum() / 128, rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(box_loss, pred).numpy(), weights_ohem * grad / 128,
                               atol=1e-7)


def test_ohem_keeps_the_largest_losses():
    """Six RoIs, keep 3: the per-RoI losses (cross-entropy + weighted smooth-L1) are made
    distinct by hand; the invalid row has the largest scores but never counts."""
    score = np.zeros((7, 3), np.float32)
    labels = np.array([0, 1, 2, 0, 1, 0, 0], np.int32)
    score[np.arange(7), labels] = [5.0, 0.0, -1.0, 2.0, -3.0, 4.0, -9.0]  # lower: harder
    pred = np.zeros((7, 8), np.float32)
    targets = np.zeros((7, 8), np.float32)
    weights = np.zeros((7, 8), np.float32)
    weights[1, 4:] = 1.0
    targets[1, 4:] = 10.0  # RoI 1: box loss 4 * 9.5 makes it the hardest
    valid = np.array([True] * 6 + [False])
    labels_ohem, weights_ohem = (o.numpy() for o in dt.ohem_select(
        score, pred, labels, targets, weights, valid, roi_per_img=3))
    # Cross-entropies: RoI 4 (-3) > RoI 2 (-1) > RoI 1 (0) > 3 > 5 > 0; RoI 1 adds 38.
    np.testing.assert_array_equal(labels_ohem, [-1, 1, 2, -1, 1, -1, -1])
    np.testing.assert_array_equal(weights_ohem, weights)


def test_ignored_entries_get_no_gradient_and_empty_images_no_nan():
    rng = np.random.default_rng(11)
    score, pred, (_, labels, targets, weights, valid) = ohem_inputs(rng, 200, count=0)
    assert (labels[valid] == 0).all() and not weights.any()
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([score, pred])
        cls_loss, box_loss = dt.rcnn_ohem_losses(score, pred, labels, targets, weights, valid)
    assert np.isfinite(cls_loss.numpy()) and box_loss.numpy() == 0.0
    grad = tape.gradient(cls_loss, score).numpy()
    assert np.isfinite(grad).all() and not grad[~valid].any()
    assert (np.abs(grad).sum(axis=1) > 0).sum() == 128
    box_grad = tape.gradient(box_loss, pred)
    assert box_grad is None or not box_grad.numpy().any()

    anchors = box_ops.shifted_anchors(12, 16)
    labels, targets, weights = dt.anchor_targets(anchors, np.zeros((3, 4), np.float32),
                                                 np.zeros(3, np.int32), 0, 192, 256,
                                                 seed=tf.constant([3, 3]), batch_size=32)
    assert (labels.numpy() == 0).sum() == 32 and (labels.numpy() == 1).sum() == 0
    cls = tf.constant(rng.normal(0, 1, (12, 16, 18)), tf.float32)
    deltas = tf.constant(rng.normal(0, 1, (12, 16, 36)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([cls, deltas])
        cls_loss, box_loss = dt.rpn_losses(cls, deltas, labels, targets, weights)
    assert np.isfinite(cls_loss.numpy()) and box_loss.numpy() == 0.0
    grad = tape.gradient(cls_loss, cls).numpy()
    ignored = (labels.numpy() == -1).reshape(12, 16, 9)
    assert np.isfinite(grad).all() and ignored.any()
    assert not grad[..., :9][ignored].any() and not grad[..., 9:][ignored].any()
    assert not tape.gradient(box_loss, deltas).numpy().any()

    # All anchors ignored (nothing inside the image): losses 0, not NaN.
    nothing = -tf.ones(12 * 16 * 9, tf.int32)
    cls_loss, box_loss = dt.rpn_losses(cls, deltas, nothing, targets, weights)
    assert cls_loss.numpy() == 0.0 and box_loss.numpy() == 0.0


def test_a_batch_loop_compiles_with_xla():
    """The intended use: a tf.function over a static batch, one image at a time, XLA
    included (static shapes throughout)."""
    rng = np.random.default_rng(12)
    batch, feat_h, feat_w, rois, g_max = 2, 5, 6, 20, 3
    anchors = box_ops.shifted_anchors(feat_h, feat_w)
    gt = [random_gt(rng, 80, 96, 2, g_max) for _ in range(batch)]
    boxes = tf.constant(np.stack([g[0] for g in gt]))
    labels = tf.constant(np.stack([g[1] for g in gt]))
    num_boxes = tf.constant([2, 0], tf.int32)
    proposals = tf.constant(np.stack([random_rois(rng, g[0][:2], rois, 80, 96) for g in gt]))
    rpn_cls = tf.constant(rng.normal(0, 1, (batch, feat_h, feat_w, 18)), tf.float32)
    rpn_box = tf.constant(rng.normal(0, 1, (batch, feat_h, feat_w, 36)), tf.float32)
    score = tf.constant(rng.normal(0, 1, (batch, rois + g_max, 31)), tf.float32)
    pred = tf.constant(rng.normal(0, 1, (batch, rois + g_max, 8)), tf.float32)

    def step(step_index):
        total = 0.0
        for i in range(batch):
            seed = tf.stack([step_index, tf.constant(i)])
            rpn_targets = dt.anchor_targets(anchors, boxes[i], labels[i], num_boxes[i], 80, 96,
                                            seed=seed)
            _, rcnn_labels, targets, weights, valid = dt.proposal_targets(
                proposals[i], boxes[i], labels[i], num_boxes[i], 31)
            total += tf.add_n(dt.rpn_losses(rpn_cls[i], rpn_box[i], *rpn_targets))
            total += tf.add_n(dt.rcnn_ohem_losses(score[i], pred[i], rcnn_labels, targets, weights,
                                                  valid))
        return total

    eager = step(tf.constant(4)).numpy()
    compiled = tf.function(step, jit_compile=True)(tf.constant(4)).numpy()
    assert np.isfinite(eager)
    np.testing.assert_allclose(compiled, eager, rtol=1e-4)
