"""Where DFF loses fast objects: ImageNet VID AP of the held-out boxes grouped by how
many frames they lie after their key frame, and by how much of the object the key
frame showed, for per-frame R-FCN and for DFF at one key interval; then, on the far
half of each interval, the false detections that sit where the object was in the key
frame (the "ghosts" a warp leaves behind) and the fast objects no detection finds;
and the mAP of every frame with the boxes thinned at random to ImageNet VID val's
speed mix, a what-if for data that moves as VID does.

    PYTHONPATH=. python experiments/dff_detection/fast_objects.py [--interval 10]

It reads the runs the benchmark trained (runs/dff_detection/vid_rfcn and vid_dff_rfcn)
and writes experiments/dff_detection/fast_objects.md. A group's AP is FGFA's bucket AP
(keras_video.tasks.detection_eval.vid_map_by_motion): the group's boxes count, the
other boxes of the same frames are ignored (a detection on them is neither right nor
wrong), and only the group's frames are scored.
"""

import argparse
import datetime
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from keras_video import runtime  # noqa: E402

runtime.start()

from keras_video import run_dir  # noqa: E402
from keras_video.data import imagenet_vid  # noqa: E402
from keras_video.serving import streaming  # noqa: E402
from keras_video.tasks import detection, detection_eval  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FAST = 0.7  # FGFA: motion IoU below this is fast
SHOWN = 0.8  # "whole at the key frame": its key-frame box has >= 80 % of its area
# ImageNet VID val's ground truth by speed (FGFA, arXiv 1703.10025, section 5).
VID_MIX = {"slow": 0.379, "medium": 0.359, "fast": 0.262}


def area(box):
    return (box[2] - box[0] + 1) * (box[3] - box[1] + 1)


def detect(parts, mode, interval, videos):
    """Per held-out frame: detections, its offset after its key frame, and per box the
    area of the same track's box in the key frame over its own (0 if absent there)."""
    detections, _ = detection.detect_videos(parts, videos, interval, mode)
    frames_out = []
    for video, found_frames in zip(videos, detections):
        truth = video.truth
        for index, found in enumerate(found_frames):
            key = truth[index - index % interval]
            shown = []
            for track, box in zip(truth[index]["track_ids"], truth[index]["boxes"]):
                same = np.flatnonzero(key["track_ids"] == track)
                shown.append(area(key["boxes"][same[0]]) / area(box) if len(same) else 0.0)
            frames_out.append((found, index % interval, np.array(shown)))
    return frames_out


def group_ap(found, truths, mious, num_classes, frame_rule, box_rule):
    """(AP %, boxes) of the boxes box_rule(motion IoU, shown) picks, on the frames
    frame_rule(offset) picks."""
    keep = [i for i, (_, offset, _) in enumerate(found) if frame_rule(offset)]
    # Motion IoU 0.5 puts a box in the one bucket scored, 2.0 outside it: ignored.
    marks = [np.where(box_rule(mious[i], found[i][2]), 0.5, 2.0) for i in keep]
    scores = detection_eval.vid_map_by_motion(
        [found[i][0] for i in keep], [truths[i] for i in keep], num_classes, marks,
        buckets=(("group", 0.0, 1.0),))
    return 100 * scores["group"]["mAP"], int(sum((m == 0.5).sum() for m in marks))


def vid_mix_map(found, truths, mious, num_classes, draws=20, seed=0):
    """mAP % (mean over `draws` random subsets) with the held-out boxes thinned at
    random to ImageNet VID val's speed mix (VID_MIX), the rest ignored."""
    rng = np.random.default_rng(seed)
    buckets = [np.digitize(m, (FAST, 0.9)) for m in mious]  # 0 fast, 1 medium, 2 slow
    counts = np.bincount(np.concatenate(buckets), minlength=3)
    share = np.array([VID_MIX["fast"], VID_MIX["medium"], VID_MIX["slow"]])
    keep = share * (counts / share).min() / counts  # the largest subset with that mix
    maps = []
    for _ in range(draws):
        marks = [np.where(rng.uniform(size=len(b)) < keep[b], 0.5, 2.0) for b in buckets]
        scores = detection_eval.vid_map_by_motion(
            [f[0] for f in found], truths, num_classes, marks, buckets=(("kept", 0.0, 1.0),))
        maps.append(100 * scores["kept"]["mAP"])
    return float(np.mean(maps)), float(np.std(maps))


def far_half_errors(found, truths, mious, interval, score=0.5):
    """On frames at least interval / 2 after their key frame: confident (> score)
    detections that match no object of the frame (IoU < 0.5, same class), split into
    those on an object's key-frame box (ghosts) and the rest; and the fast objects
    that no confident detection finds."""
    counts = dict.fromkeys(("ghosts", "other_false", "fast_objects", "fast_missed"), 0)
    for i, (dets, offset, _) in enumerate(found):
        if offset < interval // 2 or offset == 0:
            continue
        truth, key = truths[i], truths[i - offset]
        confident = dets["scores"] > score
        for box, label in zip(dets["boxes"][confident], dets["labels"][confident]):
            here = truth["boxes"][truth["labels"] == label]
            if len(here) and detection_eval.box_overlaps(box[None], here).max() >= 0.5:
                continue
            there = key["boxes"][key["labels"] == label]
            ghost = len(there) and detection_eval.box_overlaps(box[None], there).max() >= 0.5
            counts["ghosts" if ghost else "other_false"] += 1
        for box, label, miou in zip(truth["boxes"], truth["labels"], mious[i]):
            if miou >= FAST:
                continue
            counts["fast_objects"] += 1
            mine = dets["boxes"][confident & (dets["labels"] == label)]
            if not len(mine) or detection_eval.box_overlaps(box[None], mine).max() < 0.5:
                counts["fast_missed"] += 1
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default=os.path.join(ROOT, "runs", "dff_detection"))
    parser.add_argument("--dff_run", default="vid_dff_rfcn",
                        help="the DFF run under --runs to analyse")
    parser.add_argument("--interval", type=int, default=10, help="DFF's key interval")
    parser.add_argument("--data_root", default="",
                        help="the data set whose held-out videos to read (default: the "
                             "runs' own), e.g. the benchmark's 50-video one under "
                             "runs/dff_detection/data")
    parser.add_argument("--out", default=os.path.join(HERE, "fast_objects.md"))
    args = parser.parse_args()
    k = args.interval
    runs = {name: run_dir.RunDir(os.path.join(args.runs, name))
            for name in ("vid_rfcn", args.dff_run)}
    config = runs[args.dff_run].read_config()
    records = imagenet_vid.read_image_sets(args.data_root or config["data_root"],
                                           config["train"]["test_image_set"])
    wnids = tuple(config["wnids"])
    videos = detection.read_videos(records, wnids)
    truths = [t for video in videos for t in video.truth]
    mious = [m for video in videos for m in video.motion]
    per_frame = detect(streaming.KerasParts(runs["vid_rfcn"].load_best_model(), True),
                       "per_frame", k, videos)  # offsets as DFF's; every frame is a key
    dff = detect(streaming.KerasParts(runs[args.dff_run].load_best_model(), True),
                 "dff", k, videos)

    fast = lambda m, shown: m < FAST  # noqa: E731
    third = max(1, (k - 1) // 3)
    spans = [(1 + j * third, k - 1 if j == 2 else (j + 1) * third) for j in range(3)]
    groups = [("fast, every propagated frame", lambda o: o > 0, fast)]
    groups += [(f"fast, {a}-{b} frames after the key frame",
                lambda o, a=a, b=b: a <= o <= b, fast) for a, b in spans]
    groups += [
        (f"fast, whole at the key frame (>= {SHOWN:.0%} of its area)", lambda o: o > 0,
         lambda m, s: (m < FAST) & (s >= SHOWN)),
        ("fast, partly shown at the key frame", lambda o: o > 0,
         lambda m, s: (m < FAST) & (s > 0) & (s < SHOWN)),
        ("fast, absent from the key frame", lambda o: o > 0,
         lambda m, s: (m < FAST) & (s == 0)),
        ("slow and medium, every propagated frame", lambda o: o > 0,
         lambda m, s: m >= FAST)]
    lines = [f"Date {datetime.date.today().isoformat()}; `{' '.join(sys.argv)}`; DFF run "
             f"{args.dff_run}, key interval {k}; {len(records)} held-out videos.", "",
             "| boxes | count | per-frame AP % | DFF AP % | change (points) |",
             "|---|---:|---:|---:|---:|"]
    for name, frame_rule, box_rule in groups:
        base, count = group_ap(per_frame, truths, mious, len(wnids), frame_rule, box_rule)
        mine, _ = group_ap(dff, truths, mious, len(wnids), frame_rule, box_rule)
        lines.append(f"| {name} | {count} | {base:.2f} | {mine:.2f} | {mine - base:+.2f} |")
    base, base_sd = vid_mix_map(per_frame, truths, mious, len(wnids))
    mine, mine_sd = vid_mix_map(dff, truths, mious, len(wnids))
    lines += ["", f"Every frame, the boxes thinned at random to ImageNet VID val's speed mix "
              f"(slow / medium / fast {VID_MIX['slow']:.1%} / {VID_MIX['medium']:.1%} / "
              f"{VID_MIX['fast']:.1%}; 20 draws): per-frame mAP {base:.2f} (sd {base_sd:.2f}), "
              f"DFF {mine:.2f} (sd {mine_sd:.2f}), change {mine - base:+.2f} points."]
    errors = far_half_errors(dff, truths, mious, k)
    lines += ["", f"DFF, frames {k // 2}-{k - 1} after their key frame: "
              f"{errors['fast_missed']} of {errors['fast_objects']} fast objects found by no "
              f"detection scored > 0.5; false detections scored > 0.5: {errors['ghosts']} on "
              f"an object's key-frame box (ghosts), {errors['other_false']} elsewhere."]
    text = "\n".join(lines) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
