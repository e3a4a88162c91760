"""Evaluate a trained model:

    python -m keras_video.evaluate --model_dir D [--data ...] [--protocol=clip|video]
                                   [--three_crop]

Regression: RMSE and MAE. Classification: top-1 and top-5. --protocol=clip (default)
scores the one clip a video the run's evaluation ClipSpec samples; --protocol=video
averages the scores of every non-overlapping clip of each video (the published
UCF101 / HMDB51 video accuracy); --three_crop adds the crops at both ends of the
frame's long side (keras_video.evaluation). Without --data, the held-out clips the
training run recorded are used (for ucf101:PATH / hmdb51:PATH runs, the official test
list). The picture (scatter plot or per-video confusion matrix) is written beside the
metrics.
"""

import json
import os

from keras_video import cli

import cv2  # noqa: E402
import keras  # noqa: E402
from absl import flags  # noqa: E402

from keras_video import evaluation, train  # noqa: E402
from keras_video.data import sources  # noqa: E402
from keras_video.data.pipeline import ClipSpec  # noqa: E402

flags.DEFINE_string("model_dir", None, "directory of a training run", required=True)
flags.DEFINE_string("data", None, "data to evaluate on (any --data layout); default: "
                    "the run's held-out clips")
flags.DEFINE_integer("batch_size", 16, "clips per batch")
flags.DEFINE_enum("on_bad_sample", "error", ["error", "skip"], "what a bad file does")
flags.DEFINE_enum("protocol", "clip", list(evaluation.PROTOCOLS),
                  "clip: one clip a video; video: every non-overlapping clip, averaged")
flags.DEFINE_boolean("three_crop", False, "also average the crops at both ends of the "
                     "frame's long side")
flags.DEFINE_string("output", None, "metrics JSON; default model_dir/eval_metrics.json")


def load_run(model_dir, data=None, on_bad_sample="error"):
    """(best model, samples of `data` or the run's held-out clips, ClipSpec, the run's
    config.json) of a training run."""
    config_path = os.path.join(model_dir, train.CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"{config_path}: missing; is {model_dir} a training run?")
    with open(config_path) as f:
        run = json.load(f)
    data = data or run["eval_data"]
    if " (held-out" in data:
        raise ValueError("this run's test clips were split off its --data; pass --data "
                         "with the clips to evaluate on")
    samples = sources.from_spec(data, on_bad_sample)
    model = keras.saving.load_model(os.path.join(model_dir, train.BEST_MODEL))
    return model, samples, ClipSpec(**run["clip"]), run


def evaluate_run(model_dir, data=None, batch_size=16, on_bad_sample="error",
                 protocol="clip", three_crop=False):
    """(metrics, picture) of the run's best model on `data` or its held-out clips."""
    model, samples, clip, run = load_run(model_dir, data, on_bad_sample)
    return evaluation.evaluate_videos(
        model, samples, clip, run["train"]["task"], run["class_names"], protocol,
        three_crop, batch_size, on_bad_sample)


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    results, picture = evaluate_run(FLAGS.model_dir, FLAGS.data, FLAGS.batch_size,
                                    FLAGS.on_bad_sample, FLAGS.protocol, FLAGS.three_crop)
    output = FLAGS.output or os.path.join(FLAGS.model_dir, "eval_metrics.json")
    with open(output, "w") as f:
        json.dump(results, f, indent=2)
    picture_path = os.path.splitext(output)[0] + ".png"
    cv2.imwrite(picture_path, picture[..., ::-1])
    print(json.dumps(results))
    print(f"metrics: {output}\npicture: {picture_path}")


if __name__ == "__main__":
    cli.run(main)
