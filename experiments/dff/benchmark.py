"""Deep Feature Flow benchmark: accuracy against speed on held-out synthetic videos.

    cd /work/main && PYTHONPATH=. python experiments/dff/benchmark.py

In one run: trains (or re-finds, when finished) the DFF model (experiment seg_dff) and
the per-frame baseline (seg_frame) under --runs, then segments the held-out test videos
frame by frame at batch 1 on the CPU with keras_video.serving.streaming, for

    per-frame    the seg_frame model, N_task(N_feat(frame)) on every frame
    DFF          the seg_dff model with its learned flow, key intervals 1, 2, 5, 10, 20
    DFF + DIS    the same N_feat / N_task with OpenCV DIS flow instead, same intervals

and writes experiments/dff/results.md (the table), results.json and
miou_vs_fps.png (mIoU against frames/s, one point per interval, drawn with matplotlib).
The theoretical speed-up is from FLOPs (keras_video.models.flops): a key frame costs
N_feat + N_task, any other frame flow + warp + scale + N_task.

Frames/s is the best of --repeats passes over the test videos (the machine is shared:
the least-disturbed pass is the closest to the engine's own cost); mIoU comes from the
first pass (every pass gives the same labels). Each engine step is XLA-compiled
(--jit, default on, for every method alike): on a CPU the flow net's ~40 small layers
cost more in per-op overhead than in arithmetic, which XLA fuses away.
"""

import argparse
import datetime
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from keras_video import runtime  # noqa: E402

runtime.start()  # TensorFlow's CPU kernels as the commands choose them

import numpy as np  # noqa: E402

from keras_video import plots, run_dir  # noqa: E402
from keras_video.training import configs
from keras_video.tasks import dff_training
from keras_video.models import flops
from keras_video.serving import streaming
from keras_video.training import trainer  # noqa: E402
from keras_video.data import moving_shapes  # noqa: E402
from keras_video.tasks.pictures import confusion_matrix  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
INTERVALS = (1, 2, 5, 10, 20)
TARGET_SPEEDUP, TARGET_DROP = 5.0, 1.0  # at interval 10, against per-frame


def true_flow_miou(model, frames, masks, metas, num_classes, interval):
    """mIoU of DFF's schedule with the ground-truth flow in place of the flow net (the
    engine's given-flow path: averaged onto the feature grid, no scale field): what
    better flow alone could give."""
    engine = streaming.StreamingEngine(model, "dff", interval, output="labels")
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for video, video_masks, meta in zip(frames, masks, metas):
        for t, (frame, mask) in enumerate(zip(video, video_masks)):
            flow = None if engine.is_key(t) else moving_shapes.flow_between(
                meta, t, t - t % interval)
            confusion += confusion_matrix(mask, engine.step(t, frame, flow).output,
                                          num_classes)
    return dff_training.mean_iou(confusion)


def run_all(models, frames, masks, num_classes, intervals, repeats, jit):
    cases = [("per-frame", models["seg_frame"], "per_frame", 1)]
    cases += [("DFF", models["seg_dff"], "dff", k) for k in intervals]
    cases += [("DFF + DIS", models["seg_dff"], "dis", k) for k in intervals]
    rows = [None] * len(cases)
    # One engine per case: each compiles its steps once, and every pass reuses them.
    engines = []
    for name, model, mode, k in cases:
        engine = streaming.StreamingEngine(model, mode, k, output="labels",
                                              jit_compile=jit)
        engine.warmup()
        engines.append(engine)
    for rep in range(repeats):
        # All cases in each pass, so a burst of load on the machine hits every case
        # about equally rather than one case's passes.
        for i, (name, model, mode, k) in enumerate(cases):
            scores = dff_training.evaluate_engine(engines[i], frames, masks, num_classes)
            if rows[i] is None:
                rows[i] = {"method": name, "mode": mode, "interval": k, **scores,
                           "fps_passes": []}
            rows[i]["fps_passes"].append(scores["fps"])
            rows[i]["fps"] = max(rows[i]["fps_passes"])
            print(f"pass {rep + 1}/{repeats} {name:9s} k={k:2d}: mIoU {scores['miou']:.4f} "
                  f"{scores['fps']:.1f} frames/s", flush=True)
    return rows


def plot(rows, path):
    """mIoU (%) against frames/s; one point per interval, a line per method."""
    series, labels = {}, {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        series[method] = ([r["fps"] for r in mine], [100 * r["miou"] for r in mine])
        labels[method] = [f"k={r['interval']}" for r in mine] if method != "per-frame" else []
    image = plots.tradeoff_plot(series, "frames/s (batch 1, CPU)", "mIoU %",
                                "Deep Feature Flow: mIoU vs frames/s, key intervals 1-20",
                                labels)
    return plots.save_png(image, path)


def table(rows, cost, baseline):
    lines = ["| method | key interval | mIoU (%) | drop vs per-frame (points) | frames/s | "
             "speed-up (measured) | speed-up (FLOPs) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        flops_speedup = (flops.dff_speedup(cost, r["interval"]) if r["mode"] == "dff"
                         else 1.0 if r["mode"] == "per_frame" else float("nan"))
        lines.append(f"| {r['method']} | {r['interval'] if r['mode'] != 'per_frame' else 1} | "
                     f"{100 * r['miou']:.2f} | {100 * (baseline['miou'] - r['miou']):+.2f} | "
                     f"{r['fps']:.1f} | {r['fps'] / baseline['fps']:.2f}x | "
                     + ("-" if np.isnan(flops_speedup) else f"{flops_speedup:.2f}x") + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default=os.path.join(ROOT, "runs", "dff_benchmark"))
    parser.add_argument("--intervals", default=",".join(map(str, INTERVALS)))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jit", type=int, default=1)
    parser.add_argument("--out", default=HERE)
    parser.add_argument("--set", action="append", default=[],
                        help="TrainConfig override for both models, NAME=VALUE (ints, "
                             "floats or strings), e.g. --set epochs=2")
    args = parser.parse_args()
    overrides = dict(configs.parse_setting(item) for item in args.set)
    intervals = [int(k) for k in args.intervals.split(",")]

    dirs, train_times = trainer.train_per_frame_then_dff(
        "seg_frame", "seg_dff", args.runs, overrides)
    train_seconds = sum(train_times.values())
    models = {name: run_dir.RunDir(d).load_best_model()
              for name, d in dirs.items()}
    with open(run_dir.RunDir(dirs["seg_dff"]).config_path) as f:
        run_config = json.load(f)
    num_classes = run_config["model_config"]["num_classes"]
    frames, masks, metas = dff_training.load_clips(run_config["eval_data"], num_classes)
    print(f"held-out: {len(frames)} videos x {frames.shape[1]} frames of "
          f"{frames.shape[2]}x{frames.shape[3]} from {run_config['eval_data']}")

    bench_start = time.time()
    rows = run_all(models, frames, masks, num_classes, intervals, args.repeats,
                   bool(args.jit))
    cost = flops.dff_frame_costs(models["seg_dff"])
    baseline = rows[0]
    # Where the mIoU drop comes from: the same schedule with the true flow.
    true_flow = {k: true_flow_miou(models["seg_dff"], frames, masks, metas, num_classes, k)
                 for k in intervals}
    at10 = next((r for r in rows if r["mode"] == "dff" and r["interval"] == 10), None)
    verdict = {}
    if at10 is not None:
        speedup = at10["fps"] / baseline["fps"]
        drop = 100 * (baseline["miou"] - at10["miou"])
        verdict = {"speedup_k10": speedup, "miou_drop_k10_points": drop,
                   "speedup_met": speedup >= TARGET_SPEEDUP, "drop_met": drop <= TARGET_DROP}
    os.makedirs(args.out, exist_ok=True)
    plot_path = plot(rows, os.path.join(args.out, "miou_vs_fps.png"))
    text = table(rows, cost, baseline)
    train_cfg = run_config["train"]
    header = (
        f"Date {datetime.date.today().isoformat()}; {len(frames)} held-out videos x "
        f"{frames.shape[1]} frames, {frames.shape[2]}x{frames.shape[3]}, {num_classes} "
        f"classes; N_feat {train_cfg['backbone']} width {train_cfg['width']} -> "
        f"{train_cfg['feature_width']} channels, flow net width {train_cfg['flow_width']}; "
        f"batch 1, XLA {'on' if args.jit else 'off'}, frames/s best of {args.repeats} "
        f"passes.\n\nFLOPs per frame: key {cost['key_gflops']:.3f} G (N_feat "
        f"{cost['feat_gflops']:.3f} + N_task {cost['task_gflops']:.4f}), propagated "
        f"{cost['propagate_gflops']:.4f} G (flow {cost['flow_gflops']:.4f} + warp/scale "
        f"{cost['warp_gflops']:.4f} + N_task): {cost['frame_speedup']:.1f}x per "
        "propagated frame.\n")
    true_flow_line = ("DFF with the ground-truth flow in place of the flow net (no scale "
                      "field), mIoU %: " + ", ".join(f"k={k} {100 * v:.2f}"
                                                     for k, v in true_flow.items()))
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(header + "\n" + text + "\n\n" + true_flow_line + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"rows": rows, "flops": cost, "verdict": verdict,
                   "true_flow_miou": true_flow, "train_seconds": train_times,
                   "bench_seconds": time.time() - bench_start, "config": train_cfg}, f,
                  indent=2)
    print(header)
    print(text)
    print(true_flow_line)
    print(f"plot: {plot_path}")
    if verdict:
        print(f"interval 10: {verdict['speedup_k10']:.2f}x per-frame frames/s (target >= "
              f"{TARGET_SPEEDUP}x: {'met' if verdict['speedup_met'] else 'MISSED'}), mIoU "
              f"drop {verdict['miou_drop_k10_points']:+.2f} points (target <= {TARGET_DROP}: "
              f"{'met' if verdict['drop_met'] else 'MISSED'})")
    print(f"training {train_seconds:.0f} s, benchmark {time.time() - bench_start:.0f} s")


if __name__ == "__main__":
    main()
