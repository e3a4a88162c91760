"""Evaluate a trained model: python -m keras_video.evaluate --model_dir D [--data ...].

Regression: RMSE and MAE. Classification: clip top-1 and top-5. Without --data, the
held-out clips the training run recorded are used. The picture (scatter plot or
confusion matrix) is written beside the metrics.
"""

import json
import os

from keras_video import cli

import cv2  # noqa: E402
import keras  # noqa: E402
from absl import flags  # noqa: E402

from keras_video import evaluation, train  # noqa: E402
from keras_video.data import sources  # noqa: E402
from keras_video.data.pipeline import ClipSpec, make_dataset  # noqa: E402

flags.DEFINE_string("model_dir", None, "directory of a training run", required=True)
flags.DEFINE_string("data", None, "data to evaluate on (any --data layout); default: "
                    "the run's held-out clips")
flags.DEFINE_integer("batch_size", 16, "clips per batch")
flags.DEFINE_enum("on_bad_sample", "error", ["error", "skip"], "what a bad file does")
flags.DEFINE_string("output", None, "metrics JSON; default model_dir/eval_metrics.json")


def evaluate_run(model_dir, data=None, batch_size=16, on_bad_sample="error"):
    """(metrics, picture) of the run's best model on `data` or its held-out clips."""
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
    clip = ClipSpec(**run["clip"]).for_eval()
    model = keras.saving.load_model(os.path.join(model_dir, train.BEST_MODEL))
    ds = make_dataset(samples, clip, batch_size, training=False,
                      on_bad_sample=on_bad_sample)
    return evaluation.evaluate(model, ds, run["train"]["task"], run["class_names"])


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    results, picture = evaluate_run(FLAGS.model_dir, FLAGS.data, FLAGS.batch_size,
                                    FLAGS.on_bad_sample)
    output = FLAGS.output or os.path.join(FLAGS.model_dir, "eval_metrics.json")
    with open(output, "w") as f:
        json.dump(results, f, indent=2)
    picture_path = os.path.splitext(output)[0] + ".png"
    cv2.imwrite(picture_path, picture[..., ::-1])
    print(json.dumps(results))
    print(f"metrics: {output}\npicture: {picture_path}")


if __name__ == "__main__":
    cli.run(main)
