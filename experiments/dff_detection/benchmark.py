"""Deep Feature Flow video object detection benchmark: mAP against speed on held-out
generated videos in the ILSVRC2015 VID layout.

    PYTHONPATH=. python experiments/dff_detection/benchmark.py

In one run: trains (or re-finds, when finished) the per-frame R-FCN (experiment
vid_rfcn) and DFF on it (vid_dff_rfcn, starting from the R-FCN's N_feat and N_task and
trained end to end) under --runs, then detects held-out videos (VID_val_videos of the
same generated data set, --test_videos of them) frame by frame at batch 1 on the CPU
with keras_video.serving.streaming:

    per-frame    the vid_rfcn model, R-FCN on every frame
    DFF          the vid_dff_rfcn model at key intervals 1, 2, 5, 10, 20
    DFF + DIS    its N_feat and N_task with OpenCV's DIS optical flow in place of its
                 flow net (no scale field)
    DFF + true flow  the same with the generator's exact flow (generate.vid_meta,
                 moving_shapes.flow_between; no scale field): what warping the key
                 frame's features along the motion alone gives; the flow net and
                 scale field trained on the detection loss can do better (frames/s
                 not measured: the flow is given)

and writes experiments/dff_detection/results.md (the table), results.json and
map_vs_fps.png (mAP against frames/s, drawn with matplotlib). mAP is ImageNet VID's at
IoU 0.5, overall and for slow / medium / fast objects (FGFA's motion IoU;
keras_video.tasks.detection_eval). The target's mAP drop (per-frame - DFF at interval
10) comes with a 95 % interval from a paired bootstrap over the held-out videos
(detection_eval.bootstrap_map_difference): with the runs' own 10 videos that interval
is about 10 points wide, too wide to tell a 1-point drop from a 5-point one, hence 50
videos by default (the training runs' 10 first, then 40 more of the same generator).
The theoretical speed-up is from FLOPs (keras_video.models.flops): a key frame costs
N_feat + N_task, any other frame flow + warp + scale + N_task; the detection
post-processing (proposals, PSRoI pooling, NMS), which every frame pays, is not counted
there and is in the measured speed.

Frames/s is measured after the mAP, interleaved: video by video, every method runs
over the same video in a shuffled order, --repeats times, and a method's frames/s is
its frames over its summed seconds. The machine is shared and its speed drifts over
seconds; interleaving puts that drift on every method alike, so the speed-ups (ratios)
hold where a pass per method would not. The network steps are XLA-compiled (--jit,
default on, both methods alike); the head's two NMS steps run as TensorFlow graphs.
"""

import argparse
import datetime
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from keras_video import runtime  # noqa: E402

runtime.start()  # TensorFlow's CPU kernels as the commands choose them

from keras_video import plots, run_dir  # noqa: E402
from keras_video.data import generate, imagenet_vid, moving_shapes  # noqa: E402
from keras_video.models import flops  # noqa: E402
from keras_video.serving import streaming  # noqa: E402
from keras_video.tasks import detection, detection_eval  # noqa: E402
from keras_video.training import configs, trainer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
INTERVALS = (1, 2, 5, 10, 20)
TARGET_SPEEDUP, TARGET_DROP = 5.0, 1.0  # at interval 10, against per-frame
EXPERIMENTS = ("vid_rfcn", "vid_dff_rfcn")


def accuracy_rows(models, videos, wnids, intervals, jit, true_flow):
    """Rows (method, interval, mAP overall and by speed), each method's parts, and the
    per-video detections of each (method, interval) for the bootstrap."""
    dff = streaming.KerasParts(models["vid_dff_rfcn"], jit)
    propagated = tuple(k for k in intervals if k > 1)
    cases = [("per-frame", streaming.KerasParts(models["vid_rfcn"], jit), (1,), None, None),
             ("DFF", dff, tuple(intervals), "dff", None),
             ("DFF + DIS", dff, propagated, "dis", None),
             ("DFF + true flow", dff, propagated, "dff", true_flow)]
    rows, found = [], {}
    for method, parts, ks, mode, given in cases:
        for k in ks:
            detections, _ = detection.detect_videos(parts, videos, k, mode, given)
            scores = detection.score_videos(detections, videos, len(wnids))
            found[method, k] = detections
            rows.append({"method": method, "interval": k, "mode": mode, "fps": float("nan"),
                         "timed": given is None,
                         **{"map" + ("" if s == "all" else "_" + s): float(scores[s]["mAP"])
                            for s in ("all", "slow", "medium", "fast")}})
            print(f"{method:15s} k={k:2d}: mAP {100 * rows[-1]['map']:.2f}", flush=True)
    return rows, {method: parts for method, parts, *_ in cases}, found


def drop_interval(found, videos, num_classes, samples, seed=0):
    """The paired bootstrap over the held-out videos (detection_eval.
    bootstrap_map_difference) of the drop per-frame - DFF at interval 10, in points:
    how much of the measured drop the choice of held-out videos alone can move."""
    r = detection_eval.bootstrap_map_difference(
        found["per-frame", 1], found["DFF", 10], [v.truth for v in videos],
        [v.motion for v in videos], num_classes, samples=samples, seed=seed)
    return {name: {key: 100 * r[name][key] for key in ("difference", "low", "high", "std")}
            for name in r}


def time_rows(rows, parts, videos, repeats, seed=0):
    """Frames/s of every timed row, measured interleaved: video by video, each method
    runs over the same video in a shuffled order, so that the host's drifting speed
    (a shared machine) falls on every method alike and the ratios hold. A row's
    frames/s is its frames over its seconds summed over the `repeats` passes; each
    pass's own figure is kept in "fps_passes"."""
    timed = [r for r in rows if r["timed"]]
    engines = []
    for r in timed:
        mode = "per_frame" if r["interval"] == 1 else r["mode"]
        engine = streaming.StreamingEngine(parts[r["method"]], mode, r["interval"],
                                           output="detections")
        engine.warmup()
        engines.append(engine)
    videos = [video.frames for video in videos]
    frames_total = sum(map(len, videos))
    rng = np.random.default_rng(seed)
    seconds = np.zeros((repeats, len(timed)))
    for rep in range(repeats):
        for frames in videos:
            for i in rng.permutation(len(timed)):
                seconds[rep, i] += sum(r.seconds for r in engines[i].run(frames))
        print(f"timing pass {rep + 1}/{repeats}: " + ", ".join(
            f"{r['method']} k={r['interval']} {frames_total / t:.1f}"
            for r, t in zip(timed, seconds[rep])) + " frames/s", flush=True)
    for r, column in zip(timed, seconds.T):
        r["fps"] = repeats * frames_total / float(column.sum())
        r["fps_passes"] = [frames_total / float(t) for t in column]
    return rows


def plot(rows, path):
    series, labels = {}, {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method and r["fps"] == r["fps"]]
        if not mine:
            continue  # the true-flow rows have no frames/s of their own
        series[method] = ([r["fps"] for r in mine], [100 * r["map"] for r in mine])
        labels[method] = [f"k={r['interval']}" for r in mine] if method != "per-frame" else []
    image = plots.tradeoff_plot(series, "frames/s (batch 1, CPU)", "VID mAP@0.5 %",
                                "DFF R-FCN: mAP vs frames/s, key intervals 1-20", labels)
    return plots.save_png(image, path)


def table(rows, cost, baseline):
    lines = ["| method | key interval | mAP (%) | slow | medium | fast | drop vs "
             "per-frame (points) | frames/s | speed-up (measured) | speed-up (FLOPs) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        theory = (flops.dff_speedup(cost, r["interval"]) if r["method"] == "DFF" else
                  1.0 if r["method"] == "per-frame" else float("nan"))
        lines.append(
            f"| {r['method']} | {r['interval']} | {100 * r['map']:.2f} | "
            f"{100 * r['map_slow']:.2f} | {100 * r['map_medium']:.2f} | "
            f"{100 * r['map_fast']:.2f} | {100 * (baseline['map'] - r['map']):+.2f} | "
            + (f"{r['fps']:.1f} | {r['fps'] / baseline['fps']:.2f}x | "
               if r["fps"] == r["fps"] else "- | - | ")
            + ("-" if theory != theory else f"{theory:.2f}x") + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default=os.path.join(ROOT, "runs", "dff_detection"))
    parser.add_argument("--intervals", default=",".join(map(str, INTERVALS)))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jit", type=int, default=1, help="XLA for the network steps "
                        "(both methods alike; the detection head's NMS runs as a graph)")
    parser.add_argument("--test_videos", type=int, default=50,
                        help="held-out videos to score and time, generated as the runs' "
                             "data (the same generator and seed: the training videos are "
                             "the same, and the runs' own held-out videos come first); 0: "
                             "the runs' own held-out set")
    parser.add_argument("--bootstrap", type=int, default=1000,
                        help="draws of the paired bootstrap over held-out videos behind "
                             "the interval of the mAP drop at interval 10 (0: none)")
    parser.add_argument("--out", default=HERE)
    parser.add_argument("--set", action="append", default=[],
                        help="a setting for both models, NAME=VALUE (see python -m "
                             "keras_video.train --help), e.g. --set epochs=2")
    args = parser.parse_args()
    overrides = dict(configs.parse_setting(item) for item in args.set)
    intervals = [int(k) for k in args.intervals.split(",")]

    dirs, train_times = trainer.train_per_frame_then_dff(
        "vid_rfcn", "vid_dff_rfcn", args.runs, overrides)
    models = {name: run_dir.RunDir(d).load_best_model() for name, d in dirs.items()}
    run = run_dir.RunDir(dirs["vid_dff_rfcn"]).read_config()
    train_cfg = run["train"]
    wnids = tuple(run["wnids"])
    root, test_set = run["data_root"], train_cfg["test_image_set"]
    if args.test_videos and args.test_videos != train_cfg["num_eval"]:
        config = configs.make_config("vid_dff_rfcn", {
            **overrides, "num_eval": args.test_videos, "quiet": True,
            "data_dir": os.path.join(args.runs, "data")})
        root = detection.load_splits(config, config.data.data_dir).root
    records = imagenet_vid.read_image_sets(root, test_set)
    frames = sum(r.num_frames for r in records)
    print(f"held-out: {len(records)} videos, {frames} frames, from {root}")

    metas = {r.video: generate.vid_meta(root, r.video) for r in records}

    def true_flow(record, t, key):
        return moving_shapes.flow_between(metas[record.video], t, key)

    bench_start = time.time()
    videos = detection.read_videos(records, wnids)
    rows, parts, found = accuracy_rows(models, videos, wnids, intervals, bool(args.jit),
                                       true_flow)
    rows = time_rows(rows, parts, videos, args.repeats)
    cost = flops.dff_frame_costs(models["vid_dff_rfcn"])
    baseline = rows[0]
    at10 = next((r for r in rows if r["method"] == "DFF" and r["interval"] == 10), None)
    verdict = {}
    if at10 is not None:
        speedup = at10["fps"] / baseline["fps"]
        drop = 100 * (baseline["map"] - at10["map"])
        verdict = {"speedup_k10": speedup, "map_drop_k10_points": drop,
                   "speedup_met": speedup >= TARGET_SPEEDUP, "drop_met": drop <= TARGET_DROP}
        if args.bootstrap:
            verdict["drop_bootstrap"] = drop_interval(found, videos, len(wnids),
                                                      args.bootstrap)
    os.makedirs(args.out, exist_ok=True)
    plot_path = plot(rows, os.path.join(args.out, "map_vs_fps.png"))
    text = table(rows, cost, baseline)
    size = train_cfg["resize"] or [train_cfg["size"]] * 2
    header = (
        f"Date {datetime.date.today().isoformat()}; {len(records)} held-out videos, "
        f"{frames} frames of {size[0]}x{size[1]}, {len(wnids)} classes; N_feat "
        f"{train_cfg['backbone']} width {train_cfg['width']} -> {train_cfg['feature_width']} "
        f"channels at stride {train_cfg['output_stride']}, flow net width "
        f"{train_cfg['flow_width']}; batch 1, XLA {'on' if args.jit else 'off'} for the "
        f"networks, frames/s over {args.repeats} interleaved passes.\n\n"
        f"FLOPs per frame (networks): key {cost['key_gflops']:.3f} G (N_feat "
        f"{cost['feat_gflops']:.3f} + N_task {cost['task_gflops']:.4f}), propagated "
        f"{cost['propagate_gflops']:.4f} G (flow {cost['flow_gflops']:.4f} + warp/scale "
        f"{cost['warp_gflops']:.4f} + N_task): {cost['frame_speedup']:.1f}x per propagated "
        "frame.\n")
    if "drop_bootstrap" in verdict:
        drops = "; ".join(
            f"{name} {b['difference']:+.2f} [{b['low']:+.2f}, {b['high']:+.2f}]"
            for name, b in verdict["drop_bootstrap"].items())
        text += (f"\n\nDrop per-frame - DFF at interval 10 in points, with its 95 % "
                 f"interval from a paired bootstrap over the {len(records)} held-out "
                 f"videos ({args.bootstrap} draws): {drops}.")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(header + "\n" + text + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"rows": rows, "flops": cost, "verdict": verdict,
                   "train_seconds": train_times, "bench_seconds": time.time() - bench_start,
                   "config": train_cfg}, f, indent=2)
    print(header)
    print(text)
    print(f"plot: {plot_path}")
    if verdict:
        print(f"interval 10: {verdict['speedup_k10']:.2f}x per-frame frames/s (target >= "
              f"{TARGET_SPEEDUP}x: {'met' if verdict['speedup_met'] else 'MISSED'}), mAP "
              f"drop {verdict['map_drop_k10_points']:+.2f} points (target <= {TARGET_DROP}: "
              f"{'met' if verdict['drop_met'] else 'MISSED'})")
    print(f"training {sum(train_times.values()):.0f} s, benchmark "
          f"{time.time() - bench_start:.0f} s")


if __name__ == "__main__":
    main()
