"""ImageNet VID detection evaluation computed the way the video detection papers do:
DFF, FGFA and the work that compares with them report these numbers. Pure NumPy.

The references (MIT licensed) are:
  msracver/Deep-Feature-Flow  lib/dataset/imagenet_vid_eval.py    `vid_eval`, `vid_ap`
                              lib/dataset/imagenet_vid.py         `write_vid_results`,
                                                                  `do_python_eval`
  msracver/Flow-Guided-Feature-Aggregation
                              lib/dataset/imagenet_vid_eval_motion.py  `vid_eval_motion`,
                                                                       `calculate_ap`
                              lib/dataset/imagenet_vid.py         `do_python_eval_gen`
                              lib/dataset/imagenet_vid_groundtruth_motion_iou.mat

The rules are those of the reference code, including where they differ from Pascal VOC:

Boxes
    (x1, y1, x2, y2) with inclusive pixel indices: a box is x2 - x1 + 1 wide. Areas and
    intersections both use the +1. IoU is inter / (area_det + area_gt - inter), and it is
    computed only when the intersection is positive in both directions (0 otherwise).

Per-object threshold
    A ground-truth box w x h pixels is detected at IoU >= min(0.5, w*h / ((w+10)*(h+10))).
    This is the ImageNet rule that lowers the bar for small objects: a 10 x 10 box needs
    only 100 / 400 = 0.25. `vid_eval`'s `ovthresh` argument is never read, so 0.5 is
    fixed.

Matching (within a frame)
    The frame's detections, all classes together, are visited by descending score. Each
    one is matched to the ground-truth box that has the highest IoU among the boxes that
    (a) have the same label, (b) are not matched yet, and (c) reach their own threshold.
    When IoUs tie, the first box in annotation order wins. The match is a true positive.
    A detection with no such box is a false positive. So a duplicate of a detected object
    is a false positive unless it clears the threshold of another unmatched object of the
    class. VOC differs here: it takes the best-IoU box over all boxes and calls the
    detection a false positive when that box is taken.

Average precision (per class)
    The detections of all frames are ranked by score. recall = cumsum(tp) / npos.
    precision = cumsum(tp) / max(cumsum(tp) + cumsum(fp), eps). AP is the area under the
    interpolated curve: precision is made monotone from the right, with sentinels
    (0, 0) and (1, 0), and then sum(delta recall * precision) is taken. This is the
    VOC2010+ form, not the 11-point metric. The reference names this `vid_ap`; here it is
    `average_precision`. npos counts every ground-truth box of the class. ImageNet VID
    has no "difficult" flag.

Classes without ground truth
    Their AP is NaN here, and the mAP is the mean of the other classes. That is FGFA's
    rule: `calculate_ap` stores -1 when npos <= 0, and `do_python_eval_gen` averages
    only APs >= 0. DFF's `vid_eval` divides by npos = 0 instead. Such a class gets AP 0
    when it has no detections and NaN (with a warning) when it has some, and
    `do_python_eval` then prints np.mean over all classes, which becomes NaN. The VID
    validation set has ground truth for all 30 classes, so the published numbers are not
    affected.

Ties and the written file
    The reference writes detections to text ('{:.4f}' scores, '{:.2f}' boxes), reads
    them back, and sorts with np.argsort (not stable). Here scores and boxes are used as
    given, and tied scores are broken by frame order and then by input order (stable
    sorts). `as_written=True` rounds them first exactly as the file does. Tied scores can
    then still rank differently from the reference, whose tie order depends on NumPy's
    sort algorithm.

Ground truth as the reference reads it
    `parse_vid_rec` reads the XML boxes as they are: it does not clip them to the image
    the way keras_video.data.imagenet_vid.read_annotation and DFF's training roidb do.
    For exact parity, pass the unclipped boxes. Clipping changes a box only where the
    annotation runs past the image.

Motion IoU
    This is keras_video.data.imagenet_vid.motion_iou, imported and re-exported here. For
    each object it is the mean IoU (+1 pixel convention) with the same track id's boxes
    in the other frames within +-10, as in the FGFA paper (section 5). That function
    gives 0 to an object with no instance nearby.
    FGFA ships the values, not the code (lib/dataset/
    imagenet_vid_groundtruth_motion_iou.mat: 176,126 val frames). Read with scipy, the
    file shows:
      * 273,505 objects, each with a value. The only empty cells are the 4,046 frames
        without objects.
      * The smallest values are 1e-10 / K for K in {4, ..., 12, 20}, i.e. means over at
        most 20 neighbours (the frame itself excluded) of IoUs that are all 0, with a
        1e-10 guard.
      * 2,178 values are exactly 1. Most of them come in runs over consecutive frames,
        i.e. objects that stand still.
      * No value is exactly 0.7 or 0.9.
    So the file does not show which value an object with no neighbour gets.

Motion-specific mAP (FGFA), see `vid_map_by_motion`
    Ground-truth objects are bucketed by motion IoU: slow [0.9, 1.0],
    medium [0.7, 0.9], fast [0.0, 0.7], all [0.0, 1.0]. Both ends are inclusive, as in
    FGFA's code (`ig = miou < lo | miou > hi`). The README words it as > 0.9, 0.7..0.9
    and < 0.7, so in the code a value of exactly 0.7 or 0.9 falls in two buckets.
    (keras_video.data.imagenet_vid.speed_of, which labels objects, gives such values
    to medium.) For one bucket, an object outside it is "ignored":
      * npos counts only the class's objects in the bucket.
      * Matching is the same as above and runs over all objects, ignored ones included.
        A detection matched to an ignored object takes that object (nothing else may
        match it), but it counts as neither tp nor fp, so it drops out of the ranking.
      * An unmatched detection compares its highest IoU with an in-bucket object
        (ov_nig) and with an ignored object (ov_ig). Both maxima range over all the
        frame's objects of any label, matched or not, and start at -1. The detection is
        a false positive (fp = 1) if ov_nig > ov_ig, and not counted (fp = 0) if
        ov_ig > ov_nig. On a tie it is a fractional false positive:
          - if the frame has no objects, fp = the fraction of the data set's motion IoUs
            inside the bucket. These come from FGFA's loader, in which every frame
            without objects contributes one value of 0 (its MATLAB cell is empty, and the
            loader turns that into [0]). That is reproduced here.
          - otherwise (e.g. the detection touches no object at all), fp = the fraction of
            the frame's objects that are *ignored*. That is FGFA's
            `sum(ig_gt_motion) / num_gt_obj`, kept as written even though it is the
            complement of the empty-frame weight.
      * A class with no object in the bucket gets AP NaN (FGFA: -1), and the bucket's mAP
        leaves it out.
    For the "all" bucket nothing is ignored, and the result equals `vid_ap`.
    FGFA's optional area ranges (only [0, 1e10] is used, i.e. none) are `area_range`:
    objects outside the range are ignored for tp and npos but not in the ov_ig / ov_nig
    comparison. An unmatched detection outside the range is not counted.
"""

import numpy as np

from keras_video.data.imagenet_vid import motion_iou

__all__ = ["MOTION_BUCKETS", "average_precision", "bootstrap_map_difference", "box_overlaps",
           "format_table", "iou_thresholds", "motion_iou", "vid_ap", "vid_map_by_motion"]

DEFAULT_IOU = 0.5  # parse_vid_rec's defaultIOUthr
PIXEL_TOLERANCE = 10  # parse_vid_rec's pixelTolerance

# (name, low, high), both ends inclusive: FGFA's do_python_eval_gen motion_ranges.
MOTION_BUCKETS = (("all", 0.0, 1.0), ("slow", 0.9, 1.0), ("medium", 0.7, 0.9),
                  ("fast", 0.0, 0.7))


def average_precision(recall, precision):
    """Area under the interpolated precision-recall curve (the reference's `vid_ap`).

    Adds the sentinels (0, 0) in front and (1, 0) at the end, makes precision
    non-increasing from the right, and sums delta-recall * precision wherever recall
    changes.
    """
    mrec = np.concatenate(([0.0], np.asarray(recall, np.float64), [1.0]))
    mpre = np.concatenate(([0.0], np.asarray(precision, np.float64), [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def iou_thresholds(gt_boxes, default=DEFAULT_IOU, tolerance=PIXEL_TOLERANCE):
    """min(0.5, w*h / ((w+10)*(h+10))) for each ground-truth box [G, 4]."""
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    w = gt_boxes[:, 2] - gt_boxes[:, 0] + 1
    h = gt_boxes[:, 3] - gt_boxes[:, 1] + 1
    return np.minimum((w * h) / ((w + tolerance) * (h + tolerance)), default)


def box_overlaps(boxes, gt_boxes):
    """IoU [D, G] with inclusive pixels, 0 where the boxes do not overlap.

    The arithmetic follows the reference's order, so the values match its loop bit for
    bit.
    """
    bb = np.asarray(boxes, np.float64).reshape(-1, 4)[:, None, :]
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)[None, :, :]
    iw = np.minimum(bb[..., 2], gt[..., 2]) - np.maximum(bb[..., 0], gt[..., 0]) + 1
    ih = np.minimum(bb[..., 3], gt[..., 3]) - np.maximum(bb[..., 1], gt[..., 1]) + 1
    ua = ((bb[..., 2] - bb[..., 0] + 1.) * (bb[..., 3] - bb[..., 1] + 1.)
          + (gt[..., 2] - gt[..., 0] + 1.) * (gt[..., 3] - gt[..., 1] + 1.) - iw * ih)
    overlap = (iw > 0) & (ih > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(overlap, iw * ih / np.where(overlap, ua, 1.0), 0.0)


def _written(values, spec):
    """Values after the reference's text round trip, e.g. float('{:.4f}'.format(v))."""
    return np.array([float(format(v, spec)) for v in np.ravel(values)],
                    np.float64).reshape(np.shape(values))


def _frames(detections, ground_truth, num_classes, as_written):
    """Checks the inputs and prepares each frame: detections sorted by descending score
    (stable), the IoU matrix, and the greedy match of every detection (a gt index or
    -1). The match does not depend on the motion bucket, so it is computed once."""
    if len(detections) != len(ground_truth):
        raise ValueError(f"detections cover {len(detections)} frames, ground truth "
                         f"{len(ground_truth)}; give one entry per frame (empty ones "
                         f"included)")
    frames = []
    for f, (det, gt) in enumerate(zip(detections, ground_truth)):
        gt_boxes = np.asarray(gt["boxes"], np.float64).reshape(-1, 4)
        gt_labels = np.asarray(gt["labels"], np.int64).reshape(-1)
        boxes = np.asarray(det["boxes"], np.float64).reshape(-1, 4)
        scores = np.asarray(det["scores"], np.float64).reshape(-1)
        labels = np.asarray(det["labels"], np.int64).reshape(-1)
        if len(gt_labels) != len(gt_boxes):
            raise ValueError(f"frame {f}: {len(gt_boxes)} gt boxes, "
                             f"{len(gt_labels)} labels")
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError(f"frame {f}: {len(boxes)} detection boxes, {len(scores)} "
                             f"scores, {len(labels)} labels")
        for what, lab in (("gt", gt_labels), ("detection", labels)):
            if lab.size and (lab.min() < 1 or lab.max() > num_classes):
                raise ValueError(f"frame {f}: {what} labels must be in 1..{num_classes} "
                                 f"(0 is the background), got {lab.min()}..{lab.max()}")
        if (np.any(gt_boxes[:, 2] < gt_boxes[:, 0])
                or np.any(gt_boxes[:, 3] < gt_boxes[:, 1])):
            raise ValueError(f"frame {f}: a gt box has x2 < x1 or y2 < y1")
        if as_written:
            scores, boxes = _written(scores, ".4f"), _written(boxes, ".2f")
        order = np.argsort(-scores, kind="stable")
        boxes, scores, labels = boxes[order], scores[order], labels[order]
        ov = box_overlaps(boxes, gt_boxes)
        thr = iou_thresholds(gt_boxes)
        ok = (ov >= thr[None, :]) & (labels[:, None] == gt_labels[None, :])
        matched = np.full(len(boxes), -1, np.int64)
        taken = np.zeros(len(gt_boxes), bool)
        for j in np.flatnonzero(ok.any(axis=1)):
            free = ok[j] & ~taken
            if free.any():
                k = int(np.argmax(np.where(free, ov[j], -np.inf)))  # first max, as `>`
                matched[j] = k
                taken[k] = True
        frames.append({"boxes": boxes, "scores": scores, "labels": labels, "ov": ov,
                       "matched": matched, "gt_boxes": gt_boxes, "gt_labels": gt_labels})
    return frames


def _score_frame(frame, ignored, empty_weight, area_range):
    """tp, fp [D] of one frame's detections for one bucket (FGFA's inner loop).

    ignored: bool [G], the objects outside the motion bucket.
    """
    matched, ov = frame["matched"], frame["ov"]
    num_gt = len(frame["gt_labels"])
    gt_out = ignored.copy()
    if area_range is not None:
        g = frame["gt_boxes"]
        area = (g[:, 3] - g[:, 1] + 1) * (g[:, 2] - g[:, 0] + 1)
        gt_out |= (area < area_range[0]) | (area > area_range[1])
    hit = matched >= 0
    tp = np.zeros(len(matched))
    tp[hit] = (~gt_out[matched[hit]]).astype(np.float64)
    fp = np.zeros(len(matched))
    miss = ~hit
    ov_ig = np.where(ignored[None, :], ov, -1.0).max(axis=1, initial=-1.0)
    ov_nig = np.where(~ignored[None, :], ov, -1.0).max(axis=1, initial=-1.0)
    if num_gt == 0:
        tie = empty_weight
    else:
        tie = np.sum(ignored) / float(num_gt)
    fp_miss = np.where(ov_nig > ov_ig, 1.0, np.where(ov_ig > ov_nig, 0.0, tie))
    if area_range is not None:
        b = frame["boxes"]
        area = (b[:, 3] - b[:, 1] + 1) * (b[:, 2] - b[:, 0] + 1)
        fp_miss = np.where((area < area_range[0]) | (area > area_range[1]), 0.0, fp_miss)
    fp[miss] = fp_miss[miss]
    return tp, fp


def _class_aps(frames, tps, fps, npos, num_classes):
    """Per-class AP [C] (NaN where npos <= 0) from every frame's tp / fp (FGFA's
    `calculate_ap`; DFF's last loop)."""
    return _ranked_aps(np.concatenate([np.zeros(0)] + tps),
                       np.concatenate([np.zeros(0)] + fps), *_ranked_keys(frames), npos,
                       num_classes)


def _ranked_aps(tp_all, fp_all, labels, scores, npos, num_classes):
    """Per-class AP [C] of all frames' detections in frame order: ranked by score, ties
    kept in that order (stable)."""
    order = np.argsort(-scores, kind="stable")
    tp_all, fp_all, labels = tp_all[order], fp_all[order], labels[order]
    ap = np.full(num_classes, np.nan)
    for c in range(1, num_classes + 1):
        if npos[c - 1] <= 0:
            continue
        fp = np.cumsum(fp_all[labels == c])
        tp = np.cumsum(tp_all[labels == c])
        rec = tp / float(npos[c - 1])
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        ap[c - 1] = average_precision(rec, prec)
    return ap


def _summary(ap, npos):
    kept = ap[~np.isnan(ap)]
    return {"ap": ap, "mAP": float(np.mean(kept)) if kept.size else float("nan"),
            "num_gt": np.asarray(npos, np.int64)}


def vid_ap(detections, ground_truth, num_classes, as_written=False):
    """Per-class AP and mAP at the ImageNet VID thresholds (DFF's `vid_eval`).

    detections: one entry per frame, a mapping with "boxes" [D, 4] (x1, y1, x2, y2,
        inclusive pixels), "scores" [D] and "labels" [D] (1..num_classes).
    ground_truth: one entry per frame, in the same order, with "boxes" [G, 4] and
        "labels" [G] (a keras_video.data.imagenet_vid.read_annotation dict works). Frames
        without objects or without detections are still given, as empty arrays.
    as_written: round scores to 4 and boxes to 2 decimals first, as the reference's
        results file does.

    Returns {"ap": float [C] (NaN for a class without ground truth), "mAP": mean of
    the non-NaN APs, "num_gt": int [C]}. The module docstring gives the rules.
    """
    frames = _frames(detections, ground_truth, num_classes, as_written)
    npos = np.zeros(num_classes, np.int64)
    tps, fps = [], []
    for frame in frames:
        np.add.at(npos, frame["gt_labels"] - 1, 1)
        tp, fp = _score_frame(frame, np.zeros(len(frame["gt_labels"]), bool), 1.0, None)
        tps.append(tp)
        fps.append(fp)
    return _summary(_class_aps(frames, tps, fps, npos, num_classes), npos)


def vid_map_by_motion(detections, ground_truth, num_classes, motion_ious=None,
                      buckets=MOTION_BUCKETS, area_range=None, as_written=False):
    """mAP overall and for slow, medium and fast objects (FGFA's `vid_eval_motion`).

    detections, ground_truth, num_classes, as_written: as in `vid_ap`.
    motion_ious: per frame [G] (aligned with that frame's gt boxes), e.g. the first
        output of `motion_iou(annotations)` run on each video, or FGFA's .mat values.
        If None, each ground-truth entry's "motion_iou" is used.
    buckets: (name, low, high) with both ends inclusive. The default is FGFA's all
        [0, 1], slow [0.9, 1], medium [0.7, 0.9], fast [0, 0.7].
    area_range: (low, high) gt / detection area in pixels, or None (FGFA's only used
        range [0, 1e10] has the same effect).

    Returns {name: {"ap", "mAP", "num_gt", "range"}} in the order of `buckets`. The
    module docstring gives the exact rule for objects outside a bucket.
    """
    if motion_ious is None:
        motion_ious = [gt["motion_iou"] for gt in ground_truth]
    frames = _frames(detections, ground_truth, num_classes, as_written)
    mious = _checked_motion(frames, motion_ious)
    labels, scores = _ranked_keys(frames)
    parts = _bucket_parts(frames, mious, num_classes, buckets, area_range)
    return {name: {**_bucket_summary(part, labels, scores, num_classes),
                   "range": (low, high)}
            for (name, low, high), part in zip(buckets, parts)}


def _ranked_keys(frames):
    """The frames' detection labels and scores, concatenated in frame order."""
    return (np.concatenate([np.zeros(0, np.int64)] + [f["labels"] for f in frames]),
            np.concatenate([np.zeros(0)] + [f["scores"] for f in frames]))


def _bucket_summary(part, labels, scores, num_classes):
    """`_summary` of one bucket's `_bucket_parts` entry, its empty-frame ties weighted
    by the share of motion IoUs inside the bucket."""
    npos, tp, fp, inside, count = part
    fp = np.where(np.isnan(fp), inside / count if count else 0.0, fp)
    return _summary(_ranked_aps(tp, fp, labels, scores, npos, num_classes), npos)


def _checked_motion(frames, motion_ious):
    if len(motion_ious) != len(frames):
        raise ValueError(f"motion IoUs for {len(motion_ious)} frames, ground truth for "
                         f"{len(frames)}")
    mious = []
    for f, (frame, m) in enumerate(zip(frames, motion_ious)):
        m = np.asarray(m, np.float64).reshape(-1)
        if len(m) != len(frame["gt_labels"]):
            raise ValueError(f"frame {f}: {len(m)} motion IoUs for "
                             f"{len(frame['gt_labels'])} objects")
        if np.isnan(m).any():
            raise ValueError(f"frame {f}: a motion IoU is NaN")
        mious.append(m)
    return mious


def _bucket_parts(frames, mious, num_classes, buckets, area_range):
    """Per bucket: npos [C], the frames' tp and fp (concatenated in frame order), and the
    count of motion IoUs inside the bucket out of all. fp is NaN where it is the
    empty-frame weight (a tie in a frame without objects): inside / count over the
    whole set scored, which a subset of it (the bootstrap's) computes for itself.
    FGFA's loader turns each object-less frame's empty cell into one value 0."""
    all_miou = np.concatenate([m if len(m) else np.zeros(1) for m in mious] or [[]])
    parts = []
    for name, low, high in buckets:
        npos = np.zeros(num_classes, np.int64)
        tps, fps = [np.zeros(0)], [np.zeros(0)]
        for frame, m in zip(frames, mious):
            ignored = (m < low) | (m > high)
            counted = ~ignored
            if area_range is not None:
                g = frame["gt_boxes"]
                area = (g[:, 3] - g[:, 1] + 1) * (g[:, 2] - g[:, 0] + 1)
                counted &= (area >= area_range[0]) & (area <= area_range[1])
            np.add.at(npos, frame["gt_labels"][counted] - 1, 1)
            tp, fp = _score_frame(frame, ignored, np.nan, area_range)
            tps.append(tp)
            fps.append(fp)
        inside = int(np.sum((all_miou >= low) & (all_miou <= high)))
        parts.append((npos, np.concatenate(tps), np.concatenate(fps), inside,
                      all_miou.size))
    return parts


def _is_by_motion(results):
    return all(isinstance(v, dict) and "ap" in v for v in results.values())


def format_table(results, class_names):
    """The lines an evaluation command prints, joined by newlines.

    results: from `vid_ap` (one AP column) or `vid_map_by_motion` (one column a bucket).
    class_names: C names, class 1 first (e.g. keras_video.data.imagenet_vid.CLASS_NAMES).
    There is one line per class, then the mAP line, then for motion results one line a
    bucket in FGFA's "motion [lo hi]" wording. A class without ground truth prints "-".
    """
    columns = results if _is_by_motion(results) else {"AP": results}
    names = list(columns)
    num_classes = len(next(iter(columns.values()))["ap"])
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
    width = max([len("class"), len("mAP")] + [len(n) for n in class_names])

    def cell(v):
        return f"{'-':>8}" if np.isnan(v) else f"{v:8.4f}"

    lines = [f"{'class':<{width}} " + " ".join(f"{n:>8}" for n in names)]
    for c, cname in enumerate(class_names):
        lines.append(f"{cname:<{width}} " + " ".join(cell(columns[n]["ap"][c])
                                                     for n in names))
    lines.append(f"{'mAP':<{width}} " + " ".join(cell(columns[n]["mAP"]) for n in names))
    if columns is results:
        for n in names:
            low, high = results[n]["range"]
            lines.append(f"motion [{low:.1f} {high:.1f}] {n}: Mean AP@0.5 = "
                         f"{results[n]['mAP']:.4f} ({int(results[n]['num_gt'].sum())} "
                         f"objects)")
    return "\n".join(lines)


def bootstrap_map_difference(detections_a, detections_b, ground_truth, motion_ious,
                             num_classes, samples=1000, seed=0, level=0.95,
                             buckets=MOTION_BUCKETS):
    """Paired bootstrap over videos of mAP(a) - mAP(b): how large a difference between
    two methods on the same held-out videos the choice of those videos alone makes.

    detections_a, detections_b, ground_truth, motion_ious: one list per video of the
        per-frame entries `vid_map_by_motion` takes (the same videos and frames for
        both methods).
    The unit drawn is the video, not the frame: a video's frames show the same objects,
    so their errors go together and drawing frames would understate the spread. Each of
    `samples` draws takes len(videos) videos with replacement, the same ones for both
    methods (paired), and scores both on them.

    Returns {bucket: {"difference": on all the videos, "low", "high": the central
    `level` interval of the drawn differences (percentiles), "std", "samples": the
    drawn differences ([samples]; NaN where a draw has no object of the bucket)}}.
    """
    n = len(ground_truth)
    if not (len(detections_a) == len(detections_b) == len(motion_ious) == n) or n == 0:
        raise ValueError(f"per-video lists of different lengths: {len(detections_a)}, "
                         f"{len(detections_b)} detections, {n} ground truth, "
                         f"{len(motion_ious)} motion IoUs")
    # Each video is matched and scored once; a draw concatenates its videos' scores,
    # which gives exactly vid_map_by_motion of the drawn videos' frames in that order.
    scored = [[_video_parts(d, t, m, num_classes, buckets)
               for d, t, m in zip(detections, ground_truth, motion_ious)]
              for detections in (detections_a, detections_b)]

    def difference(chosen):
        a, b = (_drawn_maps(videos, chosen, num_classes) for videos in scored)
        return np.asarray(a) - np.asarray(b)

    full = difference(np.arange(n))
    draws = np.random.default_rng(seed).integers(0, n, size=(samples, n))
    drawn = np.array([difference(chosen) for chosen in draws], np.float64).reshape(
        samples, len(buckets))
    tail = 100 * (1 - level) / 2
    results = {}
    for i, (name, *_) in enumerate(buckets):
        column = drawn[:, i]
        finite = column[~np.isnan(column)]
        low, high = (np.percentile(finite, [tail, 100 - tail]) if finite.size
                     else (np.nan, np.nan))
        results[name] = {"difference": float(full[i]), "low": float(low),
                         "high": float(high),
                         "std": float(np.std(finite)) if finite.size else float("nan"),
                         "samples": column}
    return results


def _video_parts(detections, ground_truth, motion_ious, num_classes, buckets):
    """One video's detections (labels, scores in frame order) and `_bucket_parts`."""
    frames = _frames(detections, ground_truth, num_classes, False)
    parts = _bucket_parts(frames, _checked_motion(frames, motion_ious), num_classes,
                          buckets, None)
    return (*_ranked_keys(frames), parts)


def _drawn_maps(videos, chosen, num_classes):
    """Each bucket's mAP over the `chosen` videos' frames (repeats included)."""
    labels = np.concatenate([videos[v][0] for v in chosen])
    scores = np.concatenate([videos[v][1] for v in chosen])
    maps = []
    for b in range(len(videos[0][2])):
        parts = [videos[v][2][b] for v in chosen]
        drawn = (np.sum([p[0] for p in parts], axis=0),
                 np.concatenate([p[1] for p in parts]),
                 np.concatenate([p[2] for p in parts]),
                 sum(p[3] for p in parts), sum(p[4] for p in parts))
        maps.append(_bucket_summary(drawn, labels, scores, num_classes)["mAP"])
    return maps
