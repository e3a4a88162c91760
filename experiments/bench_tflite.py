"""TensorFlow Lite against the SavedModel, per model at its recipe size on this CPU:
latency of one clip (batch 1) and size on disk, in one run.

    PYTHONPATH=. python experiments/bench_tflite.py [--models motion_c3d,...] [--runs 20]

For each experiment (keras_video.training.configs), the model is built at the recipe's
size (untrained weights: latency and size do not depend on them), exported as the
training run exports it (keras_video.serving.export: uint8 frames in, preprocessing
inside) and converted to .tflite in float32, float16 and int8
(keras_video.serving.tflite; int8 calibrated on 8 random clips). Latency is the median
of --runs calls on one uint8 clip at the decode size after a warm-up, the SavedModel's
`serve` and the TFLite interpreter (its default threads) alike; ratios are against the
SavedModel of the same run.
"""

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from keras_video import runtime  # noqa: E402

runtime.start()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_video.models import build_model  # noqa: E402
from keras_video.serving import export, tflite  # noqa: E402
from keras_video.training import configs  # noqa: E402

EXPERIMENTS = ("oscillation_cnn_lstm", "motion_cnn_lstm", "motion_c3d", "motion_r3d18",
               "motion_r2plus1d18", "motion_frame_cnn")


def median_ms(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def folder_size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
               for f in files)


def bench(experiment, runs, folder):
    config = configs.make_config(experiment, {"mixed_precision": False})
    task = "regression" if config.data.source == "synthetic:oscillation" else "classification"
    config = config.replace(task=task)
    clip = config.data.clip_spec().for_eval()
    model = build_model(config.model.name, **config.model_config(num_classes=8))
    saved = os.path.join(folder, experiment)
    export.export_saved_model(model, clip, saved, task, None)
    loaded = tf.saved_model.load(saved)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (1, clip.num_frames, *clip.decode_size, 3), np.uint8)
    serve = loaded.signatures["serve"]
    rows = [{"format": "SavedModel", "ms": median_ms(
        lambda: serve(frames=tf.constant(frames))["predictions"].numpy(), runs),
        "bytes": folder_size(saved)}]
    calibration = [rng.integers(0, 256, frames.shape[1:], np.uint8) for _ in range(8)]
    for quantize in ("none", "float16", "int8"):
        path = os.path.join(folder, f"{experiment}_{quantize}.tflite")
        tflite.write(tflite.convert(model, quantize, calibration, clip=clip), path)
        interpreter = tflite.TFLiteModel(path)
        rows.append({"format": f"TFLite {'float32' if quantize == 'none' else quantize}",
                     "ms": median_ms(lambda: interpreter(frames), runs),
                     "bytes": os.path.getsize(path)})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(EXPERIMENTS))
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print("| experiment | format | latency (ms, batch 1) | vs SavedModel | size (MiB) |")
    print("|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for experiment in args.models.split(","):
            rows = bench(experiment, args.runs, folder)
            base = rows[0]["ms"]
            for row in rows:
                print(f"| {experiment} | {row['format']} | {row['ms']:.1f} | "
                      f"{base / row['ms']:.2f}x | {row['bytes'] / 2 ** 20:.2f} |", flush=True)


if __name__ == "__main__":
    main()
