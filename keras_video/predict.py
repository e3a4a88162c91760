"""Predict with an exported model: python -m keras_video.predict --model_dir D PATH...

PATH: video files or frame folders. Prints one JSON line per input,
{"path": ..., "prediction": ...}: a number for regression, the top classes with their
scores for classification. Only the SavedModel in D/export and its meta.json are read,
so no model code is needed.
"""

import json
import os
import sys

from keras_video import cli

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from keras_video import export  # noqa: E402
from keras_video.data import decode  # noqa: E402
from keras_video.data.pipeline import ClipSpec  # noqa: E402

flags.DEFINE_string("model_dir", None, "training run directory (or its export/ folder)",
                    required=True)
flags.DEFINE_integer("top_k", 5, "classes listed per input (classification)")
flags.DEFINE_enum("on_bad_sample", "error", ["error", "skip"],
                  "skip: print an error line for a bad input and go on")


class Predictor:
    """Runs the exported `serve` signature on decoded clips."""

    def __init__(self, model_dir):
        export_dir = os.path.join(model_dir, "export")
        export_dir = export_dir if os.path.isdir(export_dir) else model_dir
        self.meta = export.load_meta(export_dir)
        self.clip = ClipSpec(**self.meta["clip"]).for_eval()
        self.serve = tf.saved_model.load(export_dir).signatures["serve"]

    def __call__(self, path, top_k=5):
        frames = decode.read_clip(path, self.clip.num_frames, self.clip.sampling,
                                  self.clip.stride, None, self.clip.size)
        out = self.serve(frames=tf.constant(frames[None]))["predictions"].numpy()[0]
        if self.meta["task"] == "regression":
            return float(out[0])
        names = self.meta["class_names"]
        best = np.argsort(-out)[:top_k]
        return [{"class": names[i], "score": float(out[i])} for i in best]


def main(argv):
    paths = argv[1:]
    if not paths:
        raise ValueError("give one or more video files or frame folders to predict")
    predictor = Predictor(flags.FLAGS.model_dir)
    failed = 0
    for path in paths:
        try:
            line = {"path": path, "prediction": predictor(path, flags.FLAGS.top_k)}
        except decode.BadSampleError as e:
            if flags.FLAGS.on_bad_sample == "error":
                raise
            failed += 1
            line = {"path": path, "error": e.problem}
        print(json.dumps(line), flush=True)
    if failed:
        print(f"{failed} of {len(paths)} inputs could not be read", file=sys.stderr)


if __name__ == "__main__":
    cli.run(main)
