"""keras_video.tasks.detection_eval: ImageNet VID AP computed as DFF / FGFA compute it.

There are hand-computed cases (each AP is derived in a comment) for the rules the module
docstring states. The reference evaluation loops are ported below and compared with the
module on random frames, to 1e-12. The ports are Deep-Feature-Flow
lib/dataset/imagenet_vid_eval.py (`parse_vid_rec`, `vid_ap`, `vid_eval`) and
Flow-Guided-Feature-Aggregation lib/dataset/imagenet_vid_eval_motion.py
(`vid_eval_motion`, `calculate_ap`). The ports keep the reference loops and replace only
the file reading (annotation XML / pickle cache, results text, .mat) with arrays given
directly. Python 2 idioms are made Python 3: a list comprehension stands in for
np.array(cells)[gt_img_ids] over ragged cells.
"""

import numpy as np
import pytest

from keras_video.data import imagenet_vid
from keras_video.tasks import detection_eval as de


# ----------------------------------------------------------------------------------------
# The reference, ported


def ref_parse_vid_rec(boxes, labels, img_ids, defaultIOUthr=0.5, pixelTolerance=10):
    """parse_vid_rec without the XML: one frame's gt record."""
    objects = []
    for box, label in zip(boxes, labels):
        obj_dict = dict()
        obj_dict['label'] = int(label)
        obj_dict['bbox'] = [float(v) for v in box]
        gt_w = obj_dict['bbox'][2] - obj_dict['bbox'][0] + 1
        gt_h = obj_dict['bbox'][3] - obj_dict['bbox'][1] + 1
        thr = (gt_w*gt_h)/((gt_w+pixelTolerance)*(gt_h+pixelTolerance))
        obj_dict['thr'] = np.min([thr, defaultIOUthr])
        objects.append(obj_dict)
    return {'bbox': np.array([x['bbox'] for x in objects]),
            'label': np.array([x['label'] for x in objects]),
            'thr': np.array([x['thr'] for x in objects]),
            'img_ids': img_ids}


def ref_vid_ap(rec, prec):
    mrec = np.concatenate(([0.], rec, [1.]))
    mpre = np.concatenate(([0.], prec, [0.]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    ap = np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])
    return ap


def ref_cells(splitlines, gt_img_ids):
    """The part of vid_eval / vid_eval_motion that reads detection lines into per-frame
    cells, sorted by confidence."""
    img_ids = np.array([int(x[0]) for x in splitlines])
    obj_labels = np.array([int(x[1]) for x in splitlines])
    obj_confs = np.array([float(x[2]) for x in splitlines])
    obj_bboxes = np.array([[float(z) for z in x[3:]] for x in splitlines])
    if obj_bboxes.shape[0] > 0:
        sorted_inds = np.argsort(img_ids)
        img_ids = img_ids[sorted_inds]
        obj_labels = obj_labels[sorted_inds]
        obj_confs = obj_confs[sorted_inds]
        obj_bboxes = obj_bboxes[sorted_inds, :]
    num_imgs = max(max(gt_img_ids), max(img_ids)) + 1
    obj_labels_cell = [None] * num_imgs
    obj_confs_cell = [None] * num_imgs
    obj_bboxes_cell = [None] * num_imgs
    start_i = 0
    id = img_ids[0]
    for i in range(0, len(img_ids)):
        if i == len(img_ids)-1 or img_ids[i+1] != id:
            conf = obj_confs[start_i:i+1]
            label = obj_labels[start_i:i+1]
            bbox = obj_bboxes[start_i:i+1, :]
            sorted_inds = np.argsort(-conf)
            obj_labels_cell[id] = label[sorted_inds]
            obj_confs_cell[id] = conf[sorted_inds]
            obj_bboxes_cell[id] = bbox[sorted_inds, :]
            if i < len(img_ids)-1:
                id = img_ids[i+1]
                start_i = i+1
    return num_imgs, obj_labels_cell, obj_confs_cell, obj_bboxes_cell


def _gather(cells, gt_img_ids):
    return np.concatenate([cells[i] for i in gt_img_ids if cells[i] is not None])


def ref_vid_eval(recs, splitlines, gt_img_ids, num_classes_with_bg):
    """vid_eval after the files are read: AP per class 1..C."""
    npos = np.zeros(num_classes_with_bg)
    for rec in recs:
        for x in rec['label']:
            npos[x] += 1
    num_imgs, obj_labels_cell, obj_confs_cell, obj_bboxes_cell = ref_cells(
        splitlines, gt_img_ids)
    tp_cell = [None] * num_imgs
    fp_cell = [None] * num_imgs
    for rec in recs:
        id = rec['img_ids']
        gt_labels = rec['label']
        gt_bboxes = rec['bbox']
        gt_thr = rec['thr']
        num_gt_obj = len(gt_labels)
        gt_detected = np.zeros(num_gt_obj)
        labels = obj_labels_cell[id]
        bboxes = obj_bboxes_cell[id]
        num_obj = 0 if labels is None else len(labels)
        tp = np.zeros(num_obj)
        fp = np.zeros(num_obj)
        for j in range(0, num_obj):
            bb = bboxes[j, :]
            ovmax = -1
            kmax = -1
            for k in range(0, num_gt_obj):
                if labels[j] != gt_labels[k]:
                    continue
                if gt_detected[k] > 0:
                    continue
                bbgt = gt_bboxes[k, :]
                bi = [np.max((bb[0], bbgt[0])), np.max((bb[1], bbgt[1])),
                      np.min((bb[2], bbgt[2])), np.min((bb[3], bbgt[3]))]
                iw = bi[2]-bi[0]+1
                ih = bi[3]-bi[1]+1
                if iw > 0 and ih > 0:
                    ua = (bb[2] - bb[0] + 1.) * (bb[3] - bb[1] + 1.) + \
                         (bbgt[2] - bbgt[0] + 1.) * \
                         (bbgt[3] - bbgt[1] + 1.) - iw*ih
                    ov = iw*ih/ua
                    if ov >= gt_thr[k] and ov > ovmax:
                        ovmax = ov
                        kmax = k
            if kmax >= 0:
                tp[j] = 1
                gt_detected[kmax] = 1
            else:
                fp[j] = 1
        tp_cell[id] = tp
        fp_cell[id] = fp
    tp_all = _gather(tp_cell, gt_img_ids)
    fp_all = _gather(fp_cell, gt_img_ids)
    obj_labels = _gather(obj_labels_cell, gt_img_ids)
    confs = _gather(obj_confs_cell, gt_img_ids)
    sorted_inds = np.argsort(-confs)
    tp_all = tp_all[sorted_inds]
    fp_all = fp_all[sorted_inds]
    obj_labels = obj_labels[sorted_inds]
    ap = np.zeros(num_classes_with_bg)
    with np.errstate(divide="ignore", invalid="ignore"):
        for c in range(1, num_classes_with_bg):
            fp = np.cumsum(fp_all[obj_labels == c])
            tp = np.cumsum(tp_all[obj_labels == c])
            rec = tp / float(npos[c])
            prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
            ap[c] = ref_vid_ap(rec, prec)
    return ap[1:]


def ref_calculate_ap(tp_cell, fp_cell, gt_img_ids, obj_labels_cell, obj_confs_cell,
                     num_classes_with_bg, npos):
    tp_all = _gather(tp_cell, gt_img_ids)
    fp_all = _gather(fp_cell, gt_img_ids)
    obj_labels = _gather(obj_labels_cell, gt_img_ids)
    confs = _gather(obj_confs_cell, gt_img_ids)
    sorted_inds = np.argsort(-confs)
    tp_all = tp_all[sorted_inds]
    fp_all = fp_all[sorted_inds]
    obj_labels = obj_labels[sorted_inds]
    cur_ap = np.zeros(num_classes_with_bg)
    for c in range(1, num_classes_with_bg):
        fp = np.cumsum(fp_all[obj_labels == c])
        tp = np.cumsum(tp_all[obj_labels == c])
        if npos[c] <= 0:
            cur_ap[c] = -1
        else:
            rec = tp / npos[c]
            prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
            cur_ap[c] = ref_vid_ap(rec, prec)
    return cur_ap[1:]


def ref_vid_eval_motion(recs, splitlines, gt_img_ids, num_classes_with_bg, motion_iou,
                        motion_ranges, area_ranges):
    """vid_eval_motion after the files are read. motion_iou: per frame, as FGFA's
    loader leaves it (an object-less frame holds [0])."""
    num_imgs, obj_labels_cell, obj_confs_cell, obj_bboxes_cell = ref_cells(
        splitlines, gt_img_ids)
    ov_all = [None] * num_imgs
    npos = np.zeros(num_classes_with_bg)
    for index, rec in enumerate(recs):
        id = rec['img_ids']
        gt_labels = rec['label']
        gt_bboxes = rec['bbox']
        num_gt_obj = len(gt_labels)
        for x in gt_labels:
            npos[x] += 1
        labels = obj_labels_cell[id]
        bboxes = obj_bboxes_cell[id]
        num_obj = 0 if labels is None else len(labels)
        ov_obj = [None] * num_obj
        for j in range(0, num_obj):
            bb = bboxes[j, :]
            ov_gt = np.zeros(num_gt_obj)
            for k in range(0, num_gt_obj):
                bbgt = gt_bboxes[k, :]
                bi = [np.max((bb[0], bbgt[0])), np.max((bb[1], bbgt[1])),
                      np.min((bb[2], bbgt[2])), np.min((bb[3], bbgt[3]))]
                iw = bi[2] - bi[0] + 1
                ih = bi[3] - bi[1] + 1
                if iw > 0 and ih > 0:
                    ua = (bb[2] - bb[0] + 1.) * (bb[3] - bb[1] + 1.) + \
                         (bbgt[2] - bbgt[0] + 1.) * \
                         (bbgt[3] - bbgt[1] + 1.) - iw * ih
                    ov_gt[k] = iw * ih / ua
            ov_obj[j] = ov_gt
        ov_all[id] = ov_obj

    ap = np.zeros((len(motion_ranges), len(area_ranges), num_classes_with_bg - 1))
    npos_bak = npos.copy()
    for motion_range_id, motion_range in enumerate(motion_ranges):
        for area_range_id, area_range in enumerate(area_ranges):
            tp_cell = [None] * num_imgs
            fp_cell = [None] * num_imgs
            all_motion_iou = np.concatenate(motion_iou, axis=0)
            empty_weight = sum([(all_motion_iou[i] >= motion_range[0]) &
                                (all_motion_iou[i] <= motion_range[1])
                                for i in range(len(all_motion_iou))]) / float(
                len(all_motion_iou))
            for index, rec in enumerate(recs):
                id = rec['img_ids']
                gt_labels = rec['label']
                gt_bboxes = rec['bbox']
                gt_thr = rec['thr']
                num_gt_obj = len(gt_labels)
                gt_detected = np.zeros(num_gt_obj)
                gt_motion_iou = motion_iou[index]
                ig_gt_motion = [(gt_motion_iou[i] < motion_range[0]) |
                                (gt_motion_iou[i] > motion_range[1])
                                for i in range(len(gt_motion_iou))]
                gt_area = [(x[3] - x[1] + 1) * (x[2] - x[0] + 1) for x in gt_bboxes]
                ig_gt_area = [(area < area_range[0]) | (area > area_range[1])
                              for area in gt_area]
                labels = obj_labels_cell[id]
                bboxes = obj_bboxes_cell[id]
                num_obj = 0 if labels is None else len(labels)
                tp = np.zeros(num_obj)
                fp = np.zeros(num_obj)
                for j in range(0, num_obj):
                    bb = bboxes[j, :]
                    ovmax = -1
                    kmax = -1
                    ovmax_ig = -1
                    ovmax_nig = -1
                    for k in range(0, num_gt_obj):
                        ov = ov_all[id][j][k]
                        if (ov >= gt_thr[k]) & (ov > ovmax) & (not gt_detected[k]) & \
                                (labels[j] == gt_labels[k]):
                            ovmax = ov
                            kmax = k
                        if ig_gt_motion[k] & (ov > ovmax_ig):
                            ovmax_ig = ov
                        if (not ig_gt_motion[k]) & (ov > ovmax_nig):
                            ovmax_nig = ov
                    if kmax >= 0:
                        gt_detected[kmax] = 1
                        if (not ig_gt_motion[kmax]) & (not ig_gt_area[kmax]):
                            tp[j] = 1.0
                    else:
                        bb_area = (bb[3] - bb[1] + 1) * (bb[2] - bb[0] + 1)
                        if (bb_area < area_range[0]) | (bb_area > area_range[1]):
                            fp[j] = 0
                            continue
                        if ovmax_nig > ovmax_ig:
                            fp[j] = 1
                        elif ovmax_ig > ovmax_nig:
                            fp[j] = 0
                        elif num_gt_obj == 0:
                            fp[j] = empty_weight
                        else:
                            fp[j] = sum([1 if ig_gt_motion[i] else 0
                                         for i in range(len(ig_gt_motion))]) / float(
                                num_gt_obj)
                tp_cell[id] = tp
                fp_cell[id] = fp
                for k in range(0, num_gt_obj):
                    label = gt_labels[k]
                    if (ig_gt_motion[k]) | (ig_gt_area[k]):
                        npos[label] = npos[label] - 1
            ap[motion_range_id][area_range_id] = ref_calculate_ap(
                tp_cell, fp_cell, gt_img_ids, obj_labels_cell, obj_confs_cell,
                num_classes_with_bg, npos)
            npos = npos_bak.copy()
    return ap


def to_reference(detections, ground_truth, as_written=False):
    """(recs, splitlines, gt_img_ids) from the module's per-frame inputs. Frame f has
    id f. The detection lines are strings as in the results file when `as_written`,
    and the exact values otherwise (float() of a float is the float)."""
    recs = [ref_parse_vid_rec(g["boxes"], g["labels"], f)
            for f, g in enumerate(ground_truth)]
    lines = []
    for f, d in enumerate(detections):
        for box, score, label in zip(d["boxes"], d["scores"], d["labels"]):
            if as_written:
                lines.append('{:d} {:d} {:.4f} {:.2f} {:.2f} {:.2f} {:.2f}'.format(
                    f, int(label), score, *box).split(' '))
            else:
                lines.append([f, int(label), float(score)] + [float(v) for v in box])
    return recs, lines, list(range(len(ground_truth)))


# ----------------------------------------------------------------------------------------
# Helpers


def gt(boxes, labels=None, **extra):
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    labels = np.ones(len(boxes), np.int64) if labels is None else np.asarray(labels)
    return {"boxes": boxes, "labels": labels, **extra}


def det(boxes, scores, labels=None):
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    labels = np.ones(len(boxes), np.int64) if labels is None else np.asarray(labels)
    return {"boxes": boxes, "scores": np.asarray(scores, np.float64), "labels": labels}


A = (0, 0, 49, 49)
B = (100, 100, 149, 149)
FAR = (300, 300, 349, 349)  # overlaps neither A nor B


def ap_of(dets, gts, num_classes=1):
    return de.vid_ap(dets, gts, num_classes)


# ----------------------------------------------------------------------------------------
# Hand-computed cases


def test_average_precision_is_the_interpolated_area():
    # rec (.5, .5, 1), prec (1, .5, 2/3): envelope (1, 2/3, 2/3); area .5*1 + .5*2/3
    assert de.average_precision([.5, .5, 1.], [1., .5, 2 / 3]) == pytest.approx(5 / 6)
    assert de.average_precision([], []) == 0.0  # no detections
    # Not the 11-point metric: with rec (.25,), prec (1,) the 11-point average is
    # 3/11 (at recall 0, .1, .2); the area is .25.
    assert de.average_precision([.25], [1.]) == pytest.approx(.25)


def test_iou_thresholds():
    t = de.iou_thresholds([(0, 0, 9, 9), (0, 0, 0, 0), (0, 0, 19, 19), (0, 0, 29, 29),
                           (0, 0, 99, 99)])
    # 100/400, 1/121, 400/900, 900/1600 -> .5, 10000/12100 -> .5
    np.testing.assert_allclose(t, [.25, 1 / 121, 4 / 9, .5, .5], rtol=0, atol=1e-15)


def test_perfect_detector():
    gts = [gt([A, B], [1, 2]), gt([A], [2]), gt(np.zeros((0, 4)), [])]
    dets = [det([A, B], [.9, .8], [1, 2]), det([A], [.7], [2]), det(np.zeros((0, 4)), [])]
    r = de.vid_ap(dets, gts, 2)
    np.testing.assert_array_equal(r["ap"], [1., 1.])
    assert r["mAP"] == 1.0 and list(r["num_gt"]) == [1, 2]


def test_false_positive_ranked_first():
    # Two objects A, B of one class. Detections: FAR (.9, fp), A (.8, tp), B (.7, tp).
    #   cum tp 0, 1, 2; cum fp 1, 1, 1
    #   recall 0, 1/2, 1; precision 0, 1/2, 2/3
    #   envelope from the right: 2/3, 2/3, 2/3
    #   AP = (1/2 - 0) * 2/3 + (1 - 1/2) * 2/3 = 2/3
    r = ap_of([det([FAR, A, B], [.9, .8, .7])], [gt([A, B])])
    assert r["ap"][0] == pytest.approx(2 / 3, abs=1e-12)
    # Without the detection of B: recall 0, 1/2; precision 0, 1/2.
    #   AP = 1/2 * 1/2 + (1 - 1/2) * 0 (the sentinel) = 1/4
    r = ap_of([det([FAR, A], [.9, .8])], [gt([A, B])])
    assert r["ap"][0] == pytest.approx(.25, abs=1e-12)


def test_duplicate_detection_is_a_false_positive():
    # A (.9, tp), A again (.8: A is taken, fp), B (.7, tp)
    #   cum tp 1, 1, 2; cum fp 0, 1, 1
    #   recall 1/2, 1/2, 1; precision 1, 1/2, 2/3
    #   envelope 1, 2/3, 2/3; AP = 1/2 * 1 + 1/2 * 2/3 = 5/6
    r = ap_of([det([A, A, B], [.9, .8, .7])], [gt([A, B])])
    assert r["ap"][0] == pytest.approx(5 / 6, abs=1e-12)


def test_a_duplicate_takes_the_best_unmatched_object():
    # Two overlapping objects of a class: P (0, 0, 99, 99) and Q (0, 20, 99, 119).
    # D = (0, 5, 99, 104): IoU with P = 9500 / 10500 = .905, with Q = 8500 / 11500 = .739.
    # The first D takes P. The second D (P taken) takes Q, since .739 >= .5. Both are
    # true positives, so AP = 1. VOC would pick P again (its best IoU) and call it a
    # false positive.
    P, Q, D = (0, 0, 99, 99), (0, 20, 99, 119), (0, 5, 99, 104)
    r = ap_of([det([D, D], [.9, .8])], [gt([P, Q])])
    assert r["ap"][0] == 1.0
    # The third copy finds nothing free: a false positive after full recall, AP still 1.
    r = ap_of([det([D, D, D], [.9, .8, .7])], [gt([P, Q])])
    assert r["ap"][0] == 1.0
    # Labels must agree: a class-2 detection never takes a class-1 object.
    r = de.vid_ap([det([P], [.9], [2])], [gt([P], [1])], 2)
    assert r["ap"][0] == 0.0 and np.isnan(r["ap"][1])


def test_small_object_threshold():
    # gt 10 x 10 pixels (0..9): threshold min(.5, 100 / (20 * 20)) = .25.
    # Detection (0, 0, 19, 10) is 20 x 11 and contains the gt: IoU = 100 / 220 = .4545,
    # below .5 but above .25, so it is a match and AP = 1.
    small = (0, 0, 9, 9)
    assert de.box_overlaps([(0, 0, 19, 10)], [small])[0, 0] == pytest.approx(100 / 220)
    assert ap_of([det([(0, 0, 19, 10)], [.9])], [gt([small])])["ap"][0] == 1.0
    # The same IoU 10000 / 22000 = .4545 for a 100 x 100 object, whose threshold is
    # min(.5, 10000 / 12100) = .5: a false positive, AP 0.
    r = ap_of([det([(0, 0, 199, 109)], [.9])], [gt([(0, 0, 99, 99)])])
    assert r["ap"][0] == 0.0
    # Exactly at the threshold: IoU 100 / 400 = .25 >= .25 matches ...
    assert ap_of([det([(0, 0, 19, 19)], [.9])], [gt([small])])["ap"][0] == 1.0
    # ... and 100 / 420 = .238 does not.
    assert ap_of([det([(0, 0, 20, 19)], [.9])], [gt([small])])["ap"][0] == 0.0


def test_class_without_ground_truth():
    # Class 3 has detections but no object: AP NaN, left out of the mAP (FGFA's rule).
    # DFF's vid_eval would give 0/0 = NaN for it (and 0 if it had no detections).
    gts = [gt([A, B], [1, 2])]
    dets = [det([A, B, FAR], [.9, .8, .95], [1, 2, 3])]
    r = de.vid_ap(dets, gts, 3)
    assert r["ap"][:2].tolist() == [1.0, 1.0] and np.isnan(r["ap"][2])
    assert r["mAP"] == 1.0 and r["num_gt"].tolist() == [1, 1, 0]
    table = de.format_table(r, ["a", "b", "c"])
    assert table.splitlines()[3].split() == ["c", "-"]
    assert table.splitlines()[4].split() == ["mAP", "1.0000"]


def test_as_written_rounds_like_the_results_file():
    # A box 0.004 px too tall: IoU 100 / (20 * 20.004) < .25, a miss. The results file
    # writes it as 19.00: IoU .25, a match.
    dets, gts = [det([(0, 0, 19, 19.004)], [.9])], [gt([(0, 0, 9, 9)])]
    assert de.vid_ap(dets, gts, 1)["ap"][0] == 0.0
    assert de.vid_ap(dets, gts, 1, as_written=True)["ap"][0] == 1.0


def test_input_checks():
    with pytest.raises(ValueError, match="one entry per frame"):
        de.vid_ap([det([A], [.9])], [gt([A]), gt([B])], 1)
    with pytest.raises(ValueError, match="labels must be in 1..1"):
        de.vid_ap([det([A], [.9], [0])], [gt([A])], 1)
    with pytest.raises(ValueError, match="x2 < x1"):
        de.vid_ap([det([A], [.9])], [gt([(5, 0, 4, 9)])], 1)


# ----------------------------------------------------------------------------------------
# Motion IoU and the speed buckets


def three_object_video():
    """3 frames of three 10 x 10 objects of class 1, as read_annotation dicts: S stands
    still, M moves 1 px a frame, F 5 px a frame."""
    frames = []
    for f in range(3):
        boxes = np.array([(0, 0, 9, 9), (100 + f, 0, 109 + f, 9),
                          (200 + 5 * f, 0, 209 + 5 * f, 9)], np.float64)
        frames.append({"boxes": boxes, "labels": np.ones(3, np.int64),
                       "track_ids": np.array([0, 1, 2])})
    return frames


def test_motion_iou_is_the_data_modules():
    # keras_video.data.imagenet_vid defines motion_iou; this module re-exports it.
    assert de.motion_iou is imagenet_vid.motion_iou


def test_motion_iou_of_a_constructed_video():
    ious, speeds = de.motion_iou(three_object_video())
    # S: IoU 1 with both other frames.
    # M shifted by 1 px: 9*10 / (200 - 90) = 9/11; by 2 px: 80 / 120 = 2/3.
    # F shifted by 5 px: 50 / 150 = 1/3; by 10 px: disjoint, 0.
    expected = [[1, (9 / 11 + 2 / 3) / 2, (1 / 3 + 0) / 2],
                [1, 9 / 11, 1 / 3],
                [1, (9 / 11 + 2 / 3) / 2, 1 / 6]]
    np.testing.assert_allclose(np.stack(ious), expected, rtol=0, atol=1e-12)
    assert [list(s) for s in speeds] == [["slow", "medium", "fast"]] * 3


def test_speed_buckets_on_a_constructed_video():
    video = three_object_video()
    boxes = [f["boxes"] for f in video]
    miou, _ = de.motion_iou(video)
    # Motion IoUs (see above): S 1 (slow); M .742, .818, .742 (medium); F .167, .333,
    # .167 (fast). The detections, all class 1, ranked by score:
    #   X1 .95 frame 0 (400, 400, 409, 409): touches nothing
    #   S0 .90, S1 .89, S2 .88 exact
    #   M0 .80, M1 .79 exact (M in frame 2 is missed)
    #   X2 .75 frame 1 (212, 0, 221, 9): IoU 30/170 = 3/17 with F1, below F's .25
    #   F0 .70, F1 .69, F2 .68 exact
    X1, X2 = (400, 400, 409, 409), (212, 0, 221, 9)
    dets = [det([X1, boxes[0][0], boxes[0][1], boxes[0][2]], [.95, .90, .80, .70]),
            det([boxes[1][0], boxes[1][1], X2, boxes[1][2]], [.89, .79, .75, .69]),
            det([boxes[2][0], boxes[2][2]], [.88, .68])]
    gts = [gt(b, motion_iou=m) for b, m in zip(boxes, miou)]
    r = de.vid_map_by_motion(dets, gts, 1)
    assert list(r) == ["all", "slow", "medium", "fast"]
    assert [r[k]["num_gt"].tolist() for k in r] == [[9], [3], [3], [3]]
    # all (9 objects; X1 and X2 are plain false positives):
    #   order X1 S0 S1 S2 M0 M1 X2 F0 F1 F2
    #   cum tp 0 1 2 3 4 5 5 6 7 8, cum fp 1 1 1 1 1 1 2 2 2 2
    #   precision 0, 1/2, 2/3, 3/4, 4/5, 5/6, 5/7, 6/8, 7/9, 8/10
    #   envelope: 5/6 up to M1, 4/5 from X2 on
    #   AP = 5 * 1/9 * 5/6 + 3 * 1/9 * 4/5 = 25/54 + 4/15 = 197/270
    assert r["all"]["ap"][0] == pytest.approx(197 / 270, abs=1e-12)
    # slow (only S counts):
    #   X1 touches nothing, and the frame's objects are 2/3 ignored: fp = 2/3
    #   S0..S2 tp; M, F detections are matched to ignored objects: left out
    #   X2: its best IoU with an ignored object (F, 3/17) beats the in-bucket one (S, 0):
    #       fp = 0
    #   precision 1/(1+2/3) = 3/5, 2/(2+2/3) = 3/4, 3/(3+2/3) = 9/11 -> AP = 9/11
    assert r["slow"]["ap"][0] == pytest.approx(9 / 11, abs=1e-12)
    # medium (M0, M1, M2; M2 missed): X1 fp 2/3, M0 3/5, M1 3/4, X2 fp 0 (as for slow)
    #   AP = 1/3 * 3/4 + 1/3 * 3/4 = 1/2
    assert r["medium"]["ap"][0] == pytest.approx(.5, abs=1e-12)
    # fast: X1 fp 2/3; X2 now overlaps an in-bucket object (F, 3/17 > 0): fp 1.
    #   F0 1/(1+5/3) = 3/8, F1 2/(2+5/3) = 6/11, F2 3/(3+5/3) = 9/14 -> AP = 9/14
    assert r["fast"]["ap"][0] == pytest.approx(9 / 14, abs=1e-12)
    # "all" is vid_ap.
    np.testing.assert_array_equal(r["all"]["ap"], de.vid_ap(dets, gts, 1)["ap"])
    # FGFA's loop gives the same.
    recs, lines, ids = to_reference(dets, gts)
    ref = ref_vid_eval_motion(recs, lines, ids, 2, miou, [[0, 1], [.9, 1], [.7, .9],
                                                         [0, .7]], [[0, 1e10]])
    np.testing.assert_allclose([r[k]["ap"][0] for k in r], ref[:, 0, 0], rtol=0,
                               atol=1e-12)
    table = de.format_table(r, ["thing"]).splitlines()
    assert table[0].split() == ["class", "all", "slow", "medium", "fast"]
    assert table[1].split() == ["thing", "0.7296", "0.8182", "0.5000", "0.6429"]
    assert table[2].split() == ["mAP", "0.7296", "0.8182", "0.5000", "0.6429"]
    assert table[4] == "motion [0.9 1.0] slow: Mean AP@0.5 = 0.8182 (3 objects)"


def test_false_positive_weight_in_a_frame_without_objects():
    # Frame 0: a (0, 0, 9, 9) with motion IoU .95 (slow), b (100, 0, 109, 9) with .5
    # (fast), both detected exactly (.5, .4). Frame 1: no object, detection X (.9).
    # FGFA's loader gives the empty frame one motion IoU of 0, so the data set's motion
    # IoUs are (.95, .5, 0). X counts as fp = the fraction of them in the bucket.
    a, b = (0, 0, 9, 9), (100, 0, 109, 9)
    gts = [gt([a, b], motion_iou=[.95, .5]), gt(np.zeros((0, 4)), [], motion_iou=[])]
    dets = [det([a, b], [.5, .4]), det([a], [.9])]
    r = de.vid_map_by_motion(dets, gts, 1)
    # slow: X fp 1/3, then a tp (b left out): precision 1/(4/3) = 3/4 -> AP 3/4
    assert r["slow"]["ap"][0] == pytest.approx(3 / 4, abs=1e-12)
    # fast: X fp 2/3 (.5 and the 0), a left out, b tp: 1/(5/3) = 3/5 -> AP 3/5
    assert r["fast"]["ap"][0] == pytest.approx(3 / 5, abs=1e-12)
    # all: X fp 1, then 1/2, 2/3 -> envelope 2/3 -> AP 2/3
    assert r["all"]["ap"][0] == pytest.approx(2 / 3, abs=1e-12)
    # medium has no object: AP NaN, mAP NaN.
    assert np.isnan(r["medium"]["ap"][0]) and np.isnan(r["medium"]["mAP"])
    recs, lines, ids = to_reference(dets, gts)
    ref = ref_vid_eval_motion(recs, lines, ids, 2, [[.95, .5], [0]],
                              [[0, 1], [.9, 1], [.7, .9], [0, .7]], [[0, 1e10]])
    ours = np.array([r[k]["ap"][0] for k in r])
    np.testing.assert_allclose(np.where(np.isnan(ours), -1, ours), ref[:, 0, 0],
                               rtol=0, atol=1e-12)


def test_motion_inputs_are_checked():
    with pytest.raises(ValueError, match="2 motion IoUs for 1 objects"):
        de.vid_map_by_motion([det([A], [.9])], [gt([A])], 1, motion_ious=[[.5, .5]])
    with pytest.raises(ValueError, match="NaN"):
        de.vid_map_by_motion([det([A], [.9])], [gt([A])], 1, motion_ious=[[np.nan]])


# ----------------------------------------------------------------------------------------
# The module against the ported reference on random frames


def random_frames(seed, num_frames=40, num_classes=4):
    rng = np.random.default_rng(seed)
    dets, gts, mious = [], [], []
    for _ in range(num_frames):
        n = rng.integers(0, 5) if rng.random() > .15 else 0
        xy = rng.integers(0, 150, (n, 2))
        wh = rng.integers(1, 60, (n, 2))  # many small objects: thresholds below .5
        g = np.concatenate([xy, xy + wh - 1], axis=1).astype(np.float64)
        gl = rng.integers(1, num_classes + 1, n)
        boxes, labels = [], []
        for box, label in zip(g, gl):
            for _ in range(rng.choice([0, 1, 1, 1, 2])):  # missed, found, duplicated
                size = box[2:] - box[:2] + 1
                boxes.append(box + rng.normal(0, .12, 4) * np.tile(size, 2))
                wrong = rng.integers(1, num_classes + 1)
                labels.append(label if rng.random() < .85 else wrong)
        for _ in range(rng.integers(0, 4)):  # clutter
            x, y = rng.uniform(0, 150, 2)
            w, h = rng.uniform(2, 60, 2)
            boxes.append(np.array([x, y, x + w, y + h]))
            labels.append(rng.integers(1, num_classes + 1))
        boxes = np.array(boxes, np.float64).reshape(-1, 4)
        dets.append(det(boxes, rng.random(len(boxes)), np.array(labels, np.int64)))
        gts.append(gt(g, gl))
        m = rng.choice([rng.random(), .7, .9, 1.0, rng.uniform(.65, .95)], size=n)
        mious.append(np.asarray(m, np.float64))
    return dets, gts, mious


@pytest.mark.parametrize("seed", range(6))
def test_vid_ap_equals_the_reference(seed):
    dets, gts, _ = random_frames(seed)
    ours = de.vid_ap(dets, gts, 4)
    recs, lines, ids = to_reference(dets, gts)
    ref = ref_vid_eval(recs, lines, ids, 5)
    has_gt = ours["num_gt"] > 0
    assert has_gt.any() and ours["num_gt"].sum() > 20
    np.testing.assert_allclose(ours["ap"][has_gt], ref[has_gt], rtol=0, atol=1e-12)
    assert np.isnan(ours["ap"][~has_gt]).all()
    # With the results file's rounding: distinct scores k * 1e-4 + 2e-5, which the file
    # writes as k * 1e-4 (still distinct, so no tie order is involved); boxes lose
    # everything past 2 decimals.
    rng = np.random.default_rng(seed)
    ks = iter(rng.permutation(9000) + 500)
    for d in dets:
        d["scores"] = np.array([next(ks) * 1e-4 + 2e-5 for _ in d["scores"]])
    recs, lines, ids = to_reference(dets, gts, as_written=True)
    scores = np.array([float(x[2]) for x in lines])
    assert len(np.unique(scores)) == len(scores)
    ref = ref_vid_eval(recs, lines, ids, 5)
    ours = de.vid_ap(dets, gts, 4, as_written=True)
    np.testing.assert_allclose(ours["ap"][has_gt], ref[has_gt], rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_vid_map_by_motion_equals_the_reference(seed):
    dets, gts, mious = random_frames(100 + seed)
    ranges = [[0.0, 1.0], [0.0, 0.7], [0.7, 0.9], [0.9, 1.0]]  # FGFA's order
    names = ["all", "fast", "medium", "slow"]
    recs, lines, ids = to_reference(dets, gts)
    loader = [m if len(m) else np.zeros(1) for m in mious]  # FGFA's empty-cell [0]
    for area in ([0, 1e10], [0, 900]):  # FGFA's range, and one that bites
        ref = ref_vid_eval_motion(recs, lines, ids, 5, loader, ranges, [area])
        ours = de.vid_map_by_motion(dets, gts, 4, motion_ious=mious,
                                    area_range=None if area[1] == 1e10 else area)
        for i, name in enumerate(names):
            ap = ours[name]["ap"]
            np.testing.assert_allclose(np.where(np.isnan(ap), -1, ap), ref[i, 0], rtol=0,
                                       atol=1e-12)
            kept = ref[i, 0][ref[i, 0] >= 0]
            if kept.size:
                assert ours[name]["mAP"] == pytest.approx(np.mean(kept), abs=1e-12)
    # and "all" is vid_ap
    np.testing.assert_array_equal(de.vid_map_by_motion(dets, gts, 4, mious)["all"]["ap"],
                                  de.vid_ap(dets, gts, 4)["ap"])


# ----------------------------------------------------------------------------------------
# The paired bootstrap over videos


def test_bootstrap_draws_whole_videos_for_both_methods():
    # Video 0 has two frames, video 1 one; each frame shows one slow object of class 1.
    # Method a finds all three, method b misses video 1's. A draw of videos (0, 0)
    # gives a - b = 1 - 1 = 0; (1, 1) gives 1 - 0 = 1; a mixed draw gives 1 - 2/3 (b's
    # recall stops at 2/3 with precision 1). So the differences are 0, 1/3 and 1 with
    # odds 1/4, 1/2, 1/4; drawing frames instead would also give 2/3.
    truth = [[gt([A], [1]), gt([A], [1])], [gt([A], [1])]]
    mious = [[np.array([1.0]), np.array([1.0])], [np.array([1.0])]]
    found = [[det([A], [.9], [1]), det([A], [.9], [1])], [det([A], [.9], [1])]]
    missed = [found[0], [det(np.zeros((0, 4)), [], [])]]
    r = de.bootstrap_map_difference(found, missed, truth, mious, 1, samples=4000, seed=3)
    drawn = r["all"]["samples"]
    assert r["all"]["difference"] == pytest.approx(1 / 3, abs=1e-12)
    values = (0.0, 1 / 3, 1.0)
    assert set(np.round(drawn, 12)) == set(np.round(values, 12))
    np.testing.assert_allclose([np.mean(np.isclose(drawn, v)) for v in values],
                               [.25, .5, .25], atol=0.04)
    assert (r["all"]["low"], r["all"]["high"]) == (0.0, 1.0)
    np.testing.assert_array_equal(r["slow"]["samples"], drawn)
    # No object is fast: every draw's fast mAP is undefined, and so is its interval.
    assert np.isnan(r["fast"]["samples"]).all() and np.isnan(r["fast"]["low"])


def test_bootstrap_of_a_method_against_itself_is_zero():
    truth = [[gt([A, B], [1, 2]), gt([A], [2])], [gt([B], [1])]]
    mious = [[np.array([1.0, .5]), np.array([.8])], [np.array([.6])]]
    dets = [[det([A, B], [.9, .3], [1, 1]), det([A], [.7], [2])], [det([FAR], [.4], [1])]]
    r = de.bootstrap_map_difference(dets, dets, truth, mious, 2, samples=50)
    for name, *_ in de.MOTION_BUCKETS:
        finite = r[name]["samples"][~np.isnan(r[name]["samples"])]
        assert finite.size and not finite.any()
        assert r[name]["difference"] == r[name]["low"] == r[name]["high"] == 0.0


def test_bootstrap_wants_the_same_videos_for_both_methods():
    with pytest.raises(ValueError, match="different lengths"):
        de.bootstrap_map_difference([[det([A], [.9])]], [], [[gt([A])]],
                                    [[np.array([1.0])]], 1)


def test_bootstrap_scores_a_draw_as_vid_map_by_motion_of_its_frames():
    # Random videos (frames without objects included, for the empty-frame weight);
    # every draw's difference equals vid_map_by_motion run on the drawn videos' frames.
    rng = np.random.default_rng(5)

    def video(frames):
        truth, mious, dets = [], [], []
        for _ in range(frames):
            g = int(rng.integers(0, 3))
            corner = rng.uniform(0, 200, (g, 2))
            boxes = np.concatenate([corner, corner + rng.uniform(8, 60, (g, 2))], 1)
            truth.append(gt(boxes, rng.integers(1, 3, g)))
            mious.append(rng.choice([.5, .8, .95, 1.0], g))
            found = [b + rng.normal(0, 6, 4) for b in boxes] + [rng.uniform(0, 200, 4)]
            found = np.array([(x1, y1, max(x1, x2), max(y1, y2)) for x1, y1, x2, y2 in found])
            dets.append(det(found, np.round(rng.uniform(0, 1, len(found)), 1),
                            rng.integers(1, 3, len(found))))
        return truth, mious, dets

    videos = [video(int(rng.integers(1, 5))) for _ in range(5)]
    other = [[det(d["boxes"][::-1], d["scores"][::-1] * .9, d["labels"][::-1])
              for d in dets] for _, _, dets in videos]
    truth, mious, dets = zip(*videos)
    r = de.bootstrap_map_difference(dets, other, truth, mious, 2, samples=40, seed=1)
    draws = np.random.default_rng(1).integers(0, 5, size=(40, 5))
    for chosen, i in ((range(5), None), *((c, k) for k, c in enumerate(draws))):
        def flat(per_video):
            return [e for v in chosen for e in per_video[v]]
        a = de.vid_map_by_motion(flat(dets), flat(truth), 2, flat(mious))
        b = de.vid_map_by_motion(flat(other), flat(truth), 2, flat(mious))
        for name, *_ in de.MOTION_BUCKETS:
            want = a[name]["mAP"] - b[name]["mAP"]
            got = r[name]["difference"] if i is None else r[name]["samples"][i]
            np.testing.assert_equal(got, want)
