"""NumPy ports of the Deep Feature Flow reference's box arithmetic, NMS, test-time
selection and PSRoI pooling kernel (msracver/Deep-Feature-Flow
lib/bbox/bbox_transform.py, lib/nms/nms.py, dff_rfcn/core/tester.py,
dff_rfcn/operator_cxx/psroi_pooling.cu), shared by the detection layer and head
tests."""

import math

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


def c_round(value):
    """C's round(): half away from zero."""
    return math.copysign(math.floor(abs(value) + 0.5), value)


def multiply_add(a, b, c, fused):
    """float32 a * b + c: one rounding (CUDA's fmaf: the exact value is computed in
    double) or two."""
    if fused:
        return np.float32(np.float64(a) * np.float64(b) + np.float64(c))
    return np.float32(np.float32(a) * np.float32(b)) + np.float32(c)


def bin_bounds(roi, spatial_scale, pooled, ph, pw, height, width, fused=True):
    """PSROIPoolForwardKernel's bin bounds, in its float32 arithmetic and order, with
    `ph * bin_size + roi_start` fused into one multiply-add as nvcc compiles it by
    default (--fmad=true)."""
    f32 = np.float32
    scale = f32(spatial_scale)
    start_w = f32(c_round(roi[1])) * scale
    start_h = f32(c_round(roi[2])) * scale
    end_w = f32(c_round(roi[3]) + 1.0) * scale
    end_h = f32(c_round(roi[4]) + 1.0) * scale
    roi_w = max(f32(end_w - start_w), f32(0.1))
    roi_h = max(f32(end_h - start_h), f32(0.1))
    bin_h, bin_w = f32(roi_h / f32(pooled)), f32(roi_w / f32(pooled))
    hstart = int(np.floor(multiply_add(ph, bin_h, start_h, fused)))
    wstart = int(np.floor(multiply_add(pw, bin_w, start_w, fused)))
    hend = int(np.ceil(multiply_add(ph + 1, bin_h, start_h, fused)))
    wend = int(np.ceil(multiply_add(pw + 1, bin_w, start_w, fused)))
    hstart, hend = min(max(hstart, 0), height), min(max(hend, 0), height)
    wstart, wend = min(max(wstart, 0), width), min(max(wend, 0), width)
    return hstart, hend, wstart, wend


def reference_channel(ctop, ph, pw, group, pooled):
    gw = min(max(int(np.floor(pw * group / pooled)), 0), group - 1)
    gh = min(max(int(np.floor(ph * group / pooled)), 0), group - 1)
    return (ctop * group + gh) * group + gw


def reference_forward(features, rois, spatial_scale, output_dim, group, pooled, fused=True):
    """The forward kernel, one output element at a time; features channels-last,
    output [R, P, P, output_dim]."""
    features = np.asarray(features, np.float64)
    _, height, width, _ = features.shape
    out = np.zeros((len(rois), pooled, pooled, output_dim))
    for n, roi in enumerate(np.asarray(rois, np.float32)):
        for ctop in range(output_dim):
            for ph in range(pooled):
                for pw in range(pooled):
                    hs, he, ws, we = bin_bounds(roi, spatial_scale, pooled, ph, pw, height,
                                                width, fused)
                    if he <= hs or we <= ws:
                        continue
                    c = reference_channel(ctop, ph, pw, group, pooled)
                    out[n, ph, pw, ctop] = features[int(roi[0]), hs:he, ws:we, c].mean()
    return out
