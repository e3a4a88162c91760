"""The table of experiments/motion/flag_seeds.sh: one row per (seed, flag on / off).

    python experiments/motion/flag_report.py [--experiment motion_c3d]
        [--flag mixed_precision] [--seeds 10 20] [--runs runs]

Each row: video top-1 and clip top-1 on the run's held-out videos (metrics.json),
training minutes, and validation top-1 after every epoch (the TensorBoard log's
epoch_top1, the curve that shows when the run left its plateau).
"""

import argparse
import glob
import json
import os

import tensorflow as tf


def validation_curve(run_dir):
    """[val top-1 of epoch 1, 2, ...] from the run's TensorBoard validation events."""
    curve = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "logs", "validation", "events.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "epoch_top1":
                    curve[event.step] = float(tf.make_ndarray(value.tensor))
    return [curve[step] for step in sorted(curve)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="motion_c3d")
    parser.add_argument("--flag", default="mixed_precision")
    parser.add_argument("--seeds", nargs="+", type=int, default=[10, 20])
    parser.add_argument("--runs", default="runs")
    args = parser.parse_args()
    print(f"| seed | {args.flag} | video top-1 | clip top-1 | training | "
          "validation top-1 by epoch |")
    print("|---:|---|---:|---:|---:|---|")
    for seed in args.seeds:
        for setting in (args.flag, "no" + args.flag):
            run_dir = os.path.join(args.runs, f"{args.experiment}_seed{seed}_{setting}")
            state = "on" if setting == args.flag else "off"
            metrics_path = os.path.join(run_dir, "metrics.json")
            if not os.path.exists(metrics_path):
                print(f"| {seed} | {state} | not finished ({run_dir}) | | | |")
                continue
            with open(metrics_path) as f:
                done = json.load(f)
            m = done["metrics"]
            curve = " ".join(f"{v:.2f}" for v in validation_curve(run_dir))
            print(f"| {seed} | {state} | **{m['video_top1']:.4f}** | "
                  f"{m['clip_top1']:.4f} | {done['train_seconds'] / 60:.1f} min | {curve} |")


if __name__ == "__main__":
    main()
