"""Box arithmetic and RPNProposals against NumPy ports of the reference
(msracver/Deep-Feature-Flow lib/bbox/bbox_transform.py, lib/nms/nms.py,
dff_rfcn/operator_cxx/multi_proposal.cu) and against hand-built cases."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from detection_reference import (random_boxes, reference_bbox_pred, reference_nms,
                                 reference_overlaps)
from keras_video.layers import box_ops
from keras_video.layers.proposals import RPNProposals

# The 9 anchors of lib/rpn/generate_anchor.py with its defaults (base 16, ratios 0.5, 1,
# 2, scales 8, 16, 32): py-faster-rcnn's published values (its docstring lists them
# 1-based, i.e. each of these + 1).
REFERENCE_ANCHORS = np.array([
    [-84, -40, 99, 55], [-176, -88, 191, 103], [-360, -184, 375, 199],
    [-56, -56, 71, 71], [-120, -120, 135, 135], [-248, -248, 263, 263],
    [-36, -80, 51, 95], [-80, -168, 95, 183], [-168, -344, 183, 359]], np.float32)


def test_anchors_are_the_reference_values():
    np.testing.assert_array_equal(box_ops.generate_anchors(), REFERENCE_ANCHORS)
    np.testing.assert_array_equal(box_ops.generate_anchors(16, (0.5, 1, 2), (8, 16, 32)),
                                  REFERENCE_ANCHORS)


def test_shifted_anchors_are_position_major_anchor_minor():
    shifted = box_ops.shifted_anchors(3, 4, 16).numpy()
    assert shifted.shape == (3 * 4 * 9, 4)
    for h in range(3):
        for w in range(4):
            for a in range(9):
                shift = np.float32([16 * w, 16 * h, 16 * w, 16 * h])
                np.testing.assert_array_equal(shifted[(h * 4 + w) * 9 + a],
                                              REFERENCE_ANCHORS[a] + shift)


def test_encode_decode_round_trip_with_normalisation():
    rng = np.random.default_rng(0)
    boxes, gt = random_boxes(rng, 50), random_boxes(rng, 50)
    means, stds = (0.01, -0.02, 0.0, 0.05), (0.1, 0.1, 0.2, 0.2)
    deltas = box_ops.encode_boxes(boxes, gt, means, stds)
    np.testing.assert_allclose(box_ops.decode_boxes(boxes, deltas, means, stds), gt, atol=1e-3)
    # The un-normalised targets are bbox_transform's: decoded by its bbox_pred they give gt.
    raw = box_ops.encode_boxes(boxes, gt).numpy()
    np.testing.assert_allclose(reference_bbox_pred(boxes, raw.astype(np.float64)), gt, atol=1e-3)


def test_decode_matches_the_reference_bbox_pred_class_by_class():
    rng = np.random.default_rng(1)
    boxes = random_boxes(rng, 40)
    deltas = rng.normal(scale=0.5, size=(40, 4 * 3)).astype(np.float32)  # 3 classes
    np.testing.assert_allclose(box_ops.decode_boxes(boxes, deltas),
                               reference_bbox_pred(boxes, deltas.astype(np.float64)),
                               rtol=1e-5, atol=1e-3)
    stds = (0.1, 0.1, 0.2, 0.2)
    np.testing.assert_allclose(box_ops.decode_boxes(boxes, deltas, stds=stds),
                               reference_bbox_pred(boxes, deltas * np.tile(stds, 3)),
                               rtol=1e-5, atol=1e-3)


def test_clip_boxes():
    boxes = np.array([[-5, 3, 120, 90, 10, -1, 50, 200]], np.float32)
    np.testing.assert_array_equal(box_ops.clip_boxes(boxes, 80, 100),
                                  [[0, 3, 99, 79, 10, 0, 50, 79]])


def test_box_iou_matches_the_reference_overlaps():
    rng = np.random.default_rng(2)
    a, b = random_boxes(rng, 30), random_boxes(rng, 20)
    expected = reference_overlaps(a.astype(np.float64), b.astype(np.float64))
    assert np.count_nonzero(expected == 0) and np.count_nonzero(expected)
    np.testing.assert_allclose(box_ops.box_iou(a, b), expected, atol=1e-6)


@pytest.mark.parametrize("seed,threshold", [(3, 0.7), (4, 0.3), (5, 0.5)])
def test_nms_matches_the_reference(seed, threshold):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 400)
    scores = rng.uniform(size=400).astype(np.float32)
    expected = reference_nms(np.hstack([boxes, scores[:, None]]), threshold)
    assert 10 < len(expected) < 400
    np.testing.assert_array_equal(box_ops.nms(boxes, scores, threshold, 400), expected)
    np.testing.assert_array_equal(box_ops.nms(boxes, scores, threshold, 7), expected[:7])


def test_nms_uses_plus_one_areas_and_keeps_iou_equal_to_the_threshold():
    # +1 areas: 10 x 10 and 10 x 7 pixels sharing 70: IoU 0.7 exactly (without the +1
    # it would be 9 * 6 / 81 = 0.67).
    boxes = np.array([[0, 0, 9, 9], [0, 0, 9, 6], [0, 0, 9, 5]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    dets = np.hstack([boxes, scores[:, None]])
    assert reference_nms(dets, 0.7) == [0, 1]  # 0.7 survives, 0.6 too
    assert reference_nms(dets, 0.65) == [0, 2]
    np.testing.assert_array_equal(box_ops.nms(boxes, scores, 0.7, 10), [0, 1])
    np.testing.assert_array_equal(box_ops.nms(boxes, scores, 0.65, 10), [0, 2])


def test_nms_score_threshold_keeps_only_scores_above_it():
    # pred_eval: np.where(scores[:, j] > thresh): a score equal to the threshold is out.
    boxes = np.array([[0, 0, 9, 9], [20, 20, 29, 29], [40, 40, 49, 49]], np.float32)
    scores = np.array([0.5, 1e-4, 0.2], np.float32)
    np.testing.assert_array_equal(box_ops.nms(boxes, scores, 0.3, 10, 1e-4), [0, 2])
    np.testing.assert_array_equal(box_ops.nms(boxes, -scores, 0.3, 10), [1, 2, 0])


def test_nms_per_class_is_nms_of_each_class_then_the_best_overall():
    rng = np.random.default_rng(4)
    boxes = random_boxes(rng, 120)
    scores = rng.uniform(size=(120, 3)).astype(np.float32)
    index, label = (x.numpy() for x in box_ops.nms_per_class(boxes, scores, 0.3, 40))
    per_class = [(scores[i, c], c, i) for c in range(3)
                 for i in reference_nms(np.hstack([boxes, scores[:, c:c + 1]]), 0.3)]
    assert len(per_class) > 40
    expected = sorted(per_class, key=lambda t: -t[0])[:40]
    assert list(zip(label, index)) == [(c, i) for _, c, i in expected]


# RPNProposals -----------------------------------------------------------------------


def reference_proposals(cls_prob, bbox_deltas, im_info, anchors, stride, pre_nms_top_n,
                        post_nms_top_n, threshold, min_size, stds):
    """multi_proposal.cu's MultiProposalGPUOp::Forward step by step in float32 NumPy, on
    channels-last inputs; rpn_inv_normalize (delta * std) first."""
    batch, height, width, _ = cls_prob.shape
    count = height * width * len(anchors)
    pre = min(pre_nms_top_n, count)
    post = min(post_nms_top_n, pre)
    rois, scores_out = [], []
    for b in range(batch):
        dets = np.zeros((count, 5), np.float32)
        for h in range(height):
            for w in range(width):
                for a in range(len(anchors)):
                    i = (h * width + w) * len(anchors) + a
                    anchor = anchors[a] + np.float32([w * stride, h * stride] * 2)
                    delta = bbox_deltas[b, h, w, 4 * a:4 * a + 4] * np.float32(stds)
                    box = reference_bbox_pred(anchor[None], delta[None].astype(np.float64))[0]
                    box = box.astype(np.float32)
                    box[0::2] = np.maximum(np.minimum(box[0::2], im_info[b, 1] - 1), 0)
                    box[1::2] = np.maximum(np.minimum(box[1::2], im_info[b, 0] - 1), 0)
                    score = cls_prob[b, h, w, len(anchors) + a]
                    if h >= int(im_info[b, 0] / stride) or w >= int(im_info[b, 1] / stride):
                        score = -1.0
                    smallest = np.float32(min_size * im_info[b, 2])
                    if box[2] - box[0] + 1 < smallest or box[3] - box[1] + 1 < smallest:
                        box += np.float32([-1, -1, 1, 1]) * (smallest / 2)
                        score = -1.0
                    dets[i, :4], dets[i, 4] = box, score
        order = np.argsort(-dets[:, 4], kind="stable")[:pre]
        ordered = dets[order]
        # The GPU NMS walks the boxes in the given (sorted) order; nms.py re-sorts with
        # ties reversed, so feed it a tie-free stand-in score that keeps this order.
        keep = reference_nms(np.hstack([ordered[:, :4], -np.arange(pre)[:, None]]), threshold)
        rows = [keep[i % len(keep)] for i in range(post)]
        rois.append(np.hstack([np.full((post, 1), b), ordered[rows, :4]]))
        scores_out.append(ordered[rows, 4])
    return np.concatenate(rois), np.concatenate(scores_out)


def rpn_outputs(fg_scores, deltas):
    """Channels-last cls_prob [B, H, W, 18] (background first) and deltas [B, H, W, 36]
    from foreground scores [B, H, W, 9] and deltas [B, H, W, 9, 4]."""
    cls_prob = np.concatenate([1.0 - fg_scores, fg_scores], axis=-1).astype(np.float32)
    return cls_prob, deltas.reshape(*deltas.shape[:3], 36).astype(np.float32)


@pytest.mark.parametrize("scales,pre,post", [((8, 16, 32), 200, 60), ((1, 2, 4), 6000, 200)])
def test_proposals_match_the_reference_operator_on_random_maps(scales, pre, post):
    """The config's anchors (few survive NMS in so small an image: cyclic padding), and
    small anchors with every anchor entering NMS (the score -1 ones come out last)."""
    rng = np.random.default_rng(6)
    fg = rng.uniform(size=(2, 5, 6, 9))
    cls_prob, deltas = rpn_outputs(fg, rng.normal(scale=0.3, size=(2, 5, 6, 9, 4)))
    # Image 1 fills only 4 x 5 of the map (padding scores -1); min_size drops some boxes.
    im_info = np.array([[80, 96, 1.0], [70, 85, 1.5]], np.float32)
    layer = RPNProposals(anchor_scales=scales, pre_nms_top_n=pre, post_nms_top_n=post,
                         nms_threshold=0.7, min_size=20)
    rois, scores = layer([cls_prob, deltas, im_info])
    anchors = box_ops.generate_anchors(16, (0.5, 1, 2), scales)
    expected_rois, expected_scores = reference_proposals(
        cls_prob, deltas, im_info, anchors, 16, pre, post, 0.7, 20, stds=(0.1, 0.1, 0.4, 0.4))
    assert rois.shape == (2 * post, 5) and scores.shape == (2 * post,)
    np.testing.assert_allclose(rois, expected_rois, atol=1e-3)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
    for image in range(2):  # each image's proposals are sorted, best first, then repeat
        image_scores = expected_scores[image * post:(image + 1) * post]
        survivors = len(set(map(tuple, expected_rois[image * post:(image + 1) * post])))
        assert np.all(np.diff(image_scores[:survivors]) <= 0)
    if scales == (1, 2, 4):
        assert np.any(expected_scores == -1)
    else:
        assert survivors < post


def test_proposals_on_a_constructed_case():
    """One anchor per position (32 x 32, scale 2, ratio 1) on a 3 x 3 map of a 48 x 40
    image (the last map row is padding); the deltas place the boxes by hand."""
    anchors = box_ops.generate_anchors(16, (1.0,), (2.0,))
    shifted = box_ops.shifted_anchors(3, 3, 16, anchors).numpy()
    wanted = np.array([
        [0, 0, 19, 19],  # (0, 0) 0.9: kept first
        [1, 1, 20, 20],  # (0, 1) 0.8: IoU 0.82 with the first: suppressed
        [35, -6, 60, 10],  # (0, 2) 0.6: clipped to (35, 0, 47, 10)
        [20, 20, 35, 30],  # (1, 0) 0.7
        [5, 5, 6, 6],  # (1, 1) 0.95 but 2 x 2 < min_size 4: score -1
        [2, 25, 12, 36],  # (1, 2) 0.5
        [0, 0, 19, 19], [0, 0, 19, 19], [0, 0, 19, 19]],  # row 2, 0.99: outside the image
        np.float32)
    fg = np.array([0.9, 0.8, 0.6, 0.7, 0.95, 0.5, 0.99, 0.99, 0.99], np.float32).reshape(1, 3, 3, 1)
    deltas = box_ops.encode_boxes(shifted, wanted).numpy().reshape(1, 3, 3, 4)
    cls_prob = np.concatenate([1 - fg, fg], axis=-1)
    im_info = np.array([[40, 48, 1.0]], np.float32)  # int(40 / 16) = 2 rows inside
    settings = dict(anchor_scales=(2,), anchor_ratios=(1,), min_size=4,
                    delta_means=(0, 0, 0, 0), delta_stds=(1, 1, 1, 1))

    rois, scores = RPNProposals(post_nms_top_n=4, **settings)([cls_prob, deltas, im_info])
    np.testing.assert_allclose(rois, [[0, 0, 0, 19, 19], [0, 20, 20, 35, 30],
                                      [0, 35, 0, 47, 10], [0, 2, 25, 12, 36]], atol=1e-3)
    np.testing.assert_allclose(scores, [0.9, 0.7, 0.6, 0.5], atol=1e-6)

    # Only 3 go into NMS, 2 survive: the 3 output rows repeat them cyclically.
    rois, scores = RPNProposals(pre_nms_top_n=3, post_nms_top_n=5, **settings)(
        [cls_prob, deltas, im_info])
    np.testing.assert_allclose(rois[:, 1:], [[0, 0, 19, 19], [20, 20, 35, 30], [0, 0, 19, 19]],
                               atol=1e-3)
    np.testing.assert_allclose(scores, [0.9, 0.7, 0.9], atol=1e-6)

    # Two images: the rows of image 1 carry batch index 1. Training uses the training_*
    # settings: 2 rows, and min size 0 (the default), so the 2 x 2 box is back, first.
    layer = RPNProposals(post_nms_top_n=4, training_post_nms_top_n=2, **settings)
    both = [np.concatenate([x, x]) for x in (cls_prob, deltas, im_info)]
    rois, _ = layer(both)
    np.testing.assert_array_equal(rois[:, 0], [0, 0, 0, 0, 1, 1, 1, 1])
    rois, _ = layer(both, training=True)
    np.testing.assert_array_equal(rois[:, 0], [0, 0, 1, 1])
    np.testing.assert_allclose(rois[2:, 1:], [[5, 5, 6, 6], [0, 0, 19, 19]], atol=1e-3)


def test_proposals_config_and_saving(tmp_path):
    layer = RPNProposals(min_size=16, post_nms_top_n=50, training_post_nms_top_n=50,
                         name="proposals")
    clone = RPNProposals.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert layer.get_config()["delta_stds"] == (0.1, 0.1, 0.4, 0.4)

    inputs = [keras.Input((5, 6, 18)), keras.Input((5, 6, 36)), keras.Input((3,))]
    model = keras.Model(inputs, layer(inputs))
    assert model.outputs[0].shape == (None, 5)
    rng = np.random.default_rng(7)
    cls_prob, deltas = rpn_outputs(rng.uniform(size=(1, 5, 6, 9)),
                                   rng.normal(scale=0.3, size=(1, 5, 6, 9, 4)))
    data = [cls_prob, deltas, np.array([[80, 96, 1.0]], np.float32)]
    expected = [x.numpy() for x in model(data)]
    path = str(tmp_path / "proposals.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    for got, want in zip(loaded(data), expected):
        np.testing.assert_array_equal(got, want)
    traced = tf.function(lambda *x: layer(list(x)))
    np.testing.assert_array_equal(traced(*data)[0], expected[0])
