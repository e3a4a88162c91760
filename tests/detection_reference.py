"""NumPy ports of the Deep Feature Flow reference's box arithmetic, NMS and test-time
selection (msracver/Deep-Feature-Flow lib/bbox/bbox_transform.py, lib/nms/nms.py,
dff_rfcn/core/tester.py), shared by the detection layer and head tests."""

import numpy as np


def reference_bbox_pred(boxes, box_deltas):
    """bbox_transform.py's nonlinear_pred, verbatim but for np.float -> np.float64."""
    boxes = boxes.astype(np.float64, copy=False)
    widths = boxes[:, 2] - boxes[:, 0] + 1.0
    heights = boxes[:, 3] - boxes[:, 1] + 1.0
    ctr_x = boxes[:, 0] + 0.5 * (widths - 1.0)
    ctr_y = boxes[:, 1] + 0.5 * (heights - 1.0)
    dx, dy = box_deltas[:, 0::4], box_deltas[:, 1::4]
    dw, dh = box_deltas[:, 2::4], box_deltas[:, 3::4]
    pred_ctr_x = dx * widths[:, np.newaxis] + ctr_x[:, np.newaxis]
    pred_ctr_y = dy * heights[:, np.newaxis] + ctr_y[:, np.newaxis]
    pred_w = np.exp(dw) * widths[:, np.newaxis]
    pred_h = np.exp(dh) * heights[:, np.newaxis]
    pred_boxes = np.zeros(box_deltas.shape)
    pred_boxes[:, 0::4] = pred_ctr_x - 0.5 * (pred_w - 1.0)
    pred_boxes[:, 1::4] = pred_ctr_y - 0.5 * (pred_h - 1.0)
    pred_boxes[:, 2::4] = pred_ctr_x + 0.5 * (pred_w - 1.0)
    pred_boxes[:, 3::4] = pred_ctr_y + 0.5 * (pred_h - 1.0)
    return pred_boxes


def reference_overlaps(boxes, query_boxes):
    """bbox_transform.py's bbox_overlaps_py."""
    overlaps = np.zeros((len(boxes), len(query_boxes)))
    for k, q in enumerate(query_boxes):
        query_area = (q[2] - q[0] + 1) * (q[3] - q[1] + 1)
        for n, b in enumerate(boxes):
            iw = min(b[2], q[2]) - max(b[0], q[0]) + 1
            if iw > 0:
                ih = min(b[3], q[3]) - max(b[1], q[1]) + 1
                if ih > 0:
                    box_area = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
                    overlaps[n, k] = iw * ih / float(box_area + query_area - iw * ih)
    return overlaps


def reference_nms(dets, thresh):
    """lib/nms/nms.py's nms (py-faster-rcnn's py_cpu_nms), verbatim."""
    x1, y1, x2, y2, scores = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3], dets[:, 4]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        w = np.maximum(0.0, xx2 - xx1 + 1)
        h = np.maximum(0.0, yy2 - yy1 + 1)
        inter = w * h
        ovr = inter / (areas[i] + areas[order[1:]] - inter)
        inds = np.where(ovr <= thresh)[0]
        order = order[inds + 1]
    return keep


def random_boxes(rng, count, size=100.0):
    x1, y1 = rng.uniform(0, size, count), rng.uniform(0, size, count)
    return np.stack([x1, y1, x1 + rng.uniform(1, size / 2, count),
                     y1 + rng.uniform(1, size / 2, count)], axis=1).astype(np.float32)


def reference_pred_eval(scores, boxes, thresh, nms_threshold, max_per_image):
    """dff_rfcn/core/tester.py's pred_eval for one image (class-agnostic boxes): per
    class the boxes scoring above `thresh`, NMS; then the best `max_per_image` of all
    classes. Returns (score, class, box) triples."""
    found = []
    for j in range(1, scores.shape[1]):
        inds = np.where(scores[:, j] > thresh)[0]
        dets = np.hstack([boxes[inds], scores[inds, j:j + 1]]).astype(np.float32)
        for k in reference_nms(dets, nms_threshold):
            found.append((float(dets[k, 4]), j, tuple(dets[k, :4])))
    if len(found) > max_per_image:
        cut = sorted(s for s, _, _ in found)[-max_per_image]
        found = [f for f in found if f[0] >= cut]
    return sorted(found, reverse=True)
