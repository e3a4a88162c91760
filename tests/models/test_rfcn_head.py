"""R-FCN's inference head (keras_video.models.rfcn): the per-class selection against
the reference's pred_eval, and the staged head the streaming engine compiles against
the head as one Keras model."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import small_dff_rfcn
from detection_reference import (random_boxes, reference_bbox_pred, reference_forward,
                                 reference_pred_eval)
from keras_video.models import rfcn
from keras_video.models.dff import dff_parts
from keras_video.serving import streaming


def detections_of(boxes, scores, labels, count):
    return sorted(((float(s), int(c), tuple(b)) for b, s, c in
                   zip(boxes[:count], scores[:count], labels[:count])), reverse=True)


def test_detection_output_is_pred_eval_for_one_image_and_for_a_batch():
    """Per-class NMS 0.3 over scores above 1e-4 and the best max_detections overall; a
    batch of two (a loop over the images) and each image alone (no loop) agree."""
    rng = np.random.default_rng(3)
    rois, classes, kept = 60, 4, 25
    boxes = np.stack([random_boxes(rng, rois, 60.0) for _ in range(2)]).astype(np.float32)
    logits = rng.normal(scale=3.0, size=(2, rois, classes + 1))
    scores = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    scores[..., 2] = np.where(scores[..., 2] < 0.05, 1e-5, scores[..., 2])  # under 1e-4
    scores = scores.astype(np.float32)
    layer = rfcn.DetectionOutput(max_detections=kept)
    maps = np.zeros((2, 1), np.float32)  # only its batch size is read

    batch = [x.numpy() for x in layer([scores.reshape(-1, classes + 1),
                                       boxes.reshape(-1, 4), maps])]
    for image in range(2):
        expected = reference_pred_eval(scores[image], boxes[image], rfcn.SCORE_THRESHOLD,
                                       rfcn.TEST_NMS, kept)
        alone = [x.numpy()[0] for x in layer([scores[image], boxes[image], maps[:1]])]
        for got in (alone, [x[image] for x in batch]):
            found = detections_of(*got)
            assert [c for _, c, _ in found] == [c for _, c, _ in expected]
            np.testing.assert_allclose([s for s, _, _ in found], [s for s, _, _ in expected],
                                       rtol=1e-6)
            np.testing.assert_allclose([b for _, _, b in found], [b for _, _, b in expected])
        assert int(alone[3]) == len(expected) and len(expected) <= kept


def test_the_heads_scores_and_boxes_are_the_reference_symbols():
    """detect_net's PSRoI pooling and voting (detector_stages' score) against the
    reference's test symbol in NumPy: both map sets pooled whole by the kernel's port
    (rfcn_bbox's 8 channels, the background slot too), averaged over the 7 x 7 bins,
    the class softmax, and the foreground slot's deltas (4..7) times BBOX_STDS decoded
    on the RoIs (bbox_pred) and clipped to the image. detect_net pools the foreground
    slot alone: the same numbers."""
    model = small_dff_rfcn(2)
    _, _, n_task = dff_parts(model)
    _, _, score, _ = rfcn.detector_stages(rfcn.detector_of(model))
    rng = np.random.default_rng(7)
    maps = {name: rng.normal(size=(1, *n_task.output[name].shape[1:])).astype(np.float32)
            for name in rfcn.MAP_NAMES}
    boxes = random_boxes(rng, 30, 70.0) - 3.0  # some past the 64 x 64 image's edges
    rois = np.concatenate([np.zeros((30, 1)), boxes], axis=1).astype(np.float32)

    got_scores, got_boxes = (x.numpy() for x in score(maps, tf.constant(rois)))

    scale, group = 1.0 / 8, rfcn.GROUP_SIZE
    logits = reference_forward(maps["rfcn_cls"], rois, scale, 4, group, group).mean((1, 2))
    deltas = reference_forward(maps["rfcn_bbox"], rois, scale, rfcn.BOX_CHANNELS, group,
                               group).mean((1, 2))
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    foreground = deltas[:, 4:8] * np.array(rfcn.BBOX_STDS) + np.array(rfcn.BBOX_MEANS)
    want_boxes = np.clip(reference_bbox_pred(rois[:, 1:], foreground), 0.0, 63.0)
    np.testing.assert_allclose(got_scores, probabilities, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_boxes, want_boxes, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_the_engines_staged_head_is_the_keras_head(jit_compile):
    """KerasParts runs the head as stages (the anchors ranked inside the network's
    XLA cluster, the two NMS steps apart, both PSRoI poolings as one): its detections
    on a key frame and on a propagated one are detect_net's on the same maps."""
    model = small_dff_rfcn(2)
    rng = np.random.default_rng(5)
    key, current = (rng.uniform(0, 255, (1, 64, 64, 3)).astype(np.float32) for _ in range(2))
    n_feat, _, n_task = dff_parts(model)
    detect = rfcn.detector_of(model)
    parts = streaming.KerasParts(model, jit_compile)

    features, got_key = parts.key(key)
    want_key = detect(n_task(n_feat(key, training=False), training=False))
    got_current = parts.propagate(current, tf.constant(key), features)
    want_current = detect(model({"current": current, "key": key}, training=False))
    for got, want in ((got_key, want_key), (got_current, want_current)):
        count = int(want["count"][0])
        assert int(got["count"][0]) == count > 0
        # Matched one to one, not by rank: XLA's rounding may swap near-equal scores.
        unmatched = detections_of(*(want[n][0].numpy() for n in ("boxes", "scores", "labels")),
                                  count)
        for found in detections_of(*(got[n][0].numpy() for n in ("boxes", "scores", "labels")),
                                   count):
            same = [w for w in unmatched if w[1] == found[1]
                    and abs(w[0] - found[0]) <= 1e-5 + 1e-4 * abs(w[0])
                    and np.allclose(w[2], found[2], rtol=1e-4, atol=1e-3)]
            assert same, f"{found} is not among the Keras head's detections"
            unmatched.remove(same[0])
