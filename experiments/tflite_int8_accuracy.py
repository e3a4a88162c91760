"""int8 TensorFlow Lite against float on a trained run's held-out clips: top-1 accuracy.

    PYTHONPATH=. python experiments/tflite_int8_accuracy.py --model_dir runs/motion_cnn_lstm \
        [--calibration_clips 16] [--out experiments/tflite_int8_accuracy.json]

For a trained classification run (e.g. a motion benchmark recipe), in one run: writes
the run's .tflite file in float32 and in int8 (keras_video.commands.export.export_tflite,
as `python -m keras_video.export --format=tflite [--quantize=int8]` writes them; int8
calibrated on the first --calibration_clips clips of the run's held-out data), then
scores every held-out clip after those (the calibration clips are left out of the
score), read as `predict` reads a clip, with both files, and prints top-1 accuracy of
each and the int8 - float difference in points. The float32 file equals the Keras model
within 1e-4 (tests/serving/test_tflite.py), so "float" is the run's own model.

Target (issue 23): int8 accuracy within 1 point of float. The figures go to
experiments/RESULTS.md, section "TFLite export".
"""

import argparse
import datetime
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from keras_video import runtime  # noqa: E402

runtime.start()

import numpy as np  # noqa: E402

from keras_video import run_dir  # noqa: E402
from keras_video.commands.export import export_tflite, read_for_serving  # noqa: E402
from keras_video.data import decode, sources  # noqa: E402
from keras_video.data.pipeline import ClipSpec  # noqa: E402
from keras_video.serving import tflite  # noqa: E402

TARGET_POINTS = 1.0


def held_out_clips(model_dir):
    """(uint8 clips as the .tflite file takes them, class ids) of the run's held-out data,
    in its order (the order export's calibration reads them in)."""
    run = run_dir.RunDir(model_dir).read_config()
    data = run["eval_data"].split(" (held-out")[0]
    samples = sources.from_spec(data, on_bad_sample="skip")
    clip = ClipSpec(**run["clip"]).for_eval()
    clips, labels = [], []
    for path, label in zip(samples.paths, samples.labels):
        try:
            clips.append(read_for_serving(clip, path))
        except decode.BadSampleError:
            continue
        labels.append(int(label))
    return clips, np.array(labels), run


def accuracy(model, clips, labels):
    predicted = [int(np.argmax(model(clip[None])["predictions"][0])) for clip in clips]
    return float(np.mean(np.array(predicted) == labels))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model_dir", required=True, help="a trained classification run")
    parser.add_argument("--calibration_clips", type=int, default=16)
    parser.add_argument("--out", default=os.path.join(ROOT, "experiments",
                                                      "tflite_int8_accuracy.json"))
    args = parser.parse_args()

    clips, labels, run = held_out_clips(args.model_dir)
    if run["train"]["task"] != "classification":
        sys.exit(f"{args.model_dir}: a {run['train']['task']} run; this experiment scores "
                 "classification runs")
    scored = slice(args.calibration_clips, None)  # the calibration clips are left out
    if len(clips) <= args.calibration_clips:
        sys.exit(f"{args.model_dir}: {len(clips)} held-out clips, none left after the "
                 f"{args.calibration_clips} calibration clips")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for quantize in ("none", "int8"):
            path = os.path.join(folder, f"model_{quantize}.tflite")
            start = time.time()
            size = export_tflite(args.model_dir, quantize, args.calibration_clips, path)[path]
            model = tflite.TFLiteModel(path)
            results[quantize] = {
                "accuracy": accuracy(model, clips[scored], labels[scored]),
                "size_mib": size / 2 ** 20, "seconds": time.time() - start}
            print(f"{quantize:5s}: accuracy {results[quantize]['accuracy']:.4f} on "
                  f"{len(labels[scored])} clips, {results[quantize]['size_mib']:.2f} MiB",
                  flush=True)
    drop = 100 * (results["none"]["accuracy"] - results["int8"]["accuracy"])
    verdict = {"drop_points": drop, "met": drop <= TARGET_POINTS}
    record = {"date": datetime.date.today().isoformat(), "model_dir": args.model_dir,
              "experiment": run["train"]["experiment"], "model": run["train"]["model"],
              "calibration_clips": args.calibration_clips, "scored_clips": int(len(
                  labels[scored])), "results": results, "verdict": verdict,
              "trained_metrics": run_dir.RunDir(args.model_dir).finished_metrics()}
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2)
    print(f"int8 - float: {-drop:+.2f} points (target: within {TARGET_POINTS}: "
          f"{'met' if verdict['met'] else 'MISSED'}); written to {args.out}")


if __name__ == "__main__":
    main()
