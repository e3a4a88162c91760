"""Evaluate a trained model:

    python -m keras_video.evaluate --model_dir D [--data ...] [--protocol=clip|video]
                                   [--three_crop]

Regression: RMSE and MAE. Classification: top-1 and top-5. --protocol=clip (default)
scores the one clip a video the run's evaluation ClipSpec samples; --protocol=video
averages the scores of every non-overlapping clip of each video (the published
UCF101 / HMDB51 video accuracy); --three_crop adds the crops at both ends of the
frame's long side (keras_video.tasks.evaluation). Without --data, the held-out clips the
training run recorded are used (for ucf101:PATH / hmdb51:PATH runs, the official test
list). The picture (scatter plot or per-video confusion matrix) is written beside the
metrics.

Segmentation (dff, frame_seg): held-out mIoU and frames/s at --key_intervals.
Detection (rfcn, dff_rfcn): ImageNet VID mAP at IoU 0.5, per class and for slow,
medium and fast objects (FGFA's motion IoU), and frames/s at --key_intervals, on the
run's --test_image_set videos (or --data=imagenet_vid:ROOT --test_image_set=NAME); the
picture shows detections on held-out frames.
"""

import json
import os

from keras_video.commands import cli

from absl import flags

from keras_video import plots, run_dir
from keras_video.tasks import evaluation
from keras_video.data import sources
from keras_video.data.pipeline import ClipSpec


def define_flags():
    """The command's flags (defined when it runs, so that importing this module into a
    process with other commands defines nothing)."""
    flags.DEFINE_string("model_dir", None, "directory of a training run", required=True)
    flags.DEFINE_string("data", None, "data to evaluate on (any --data layout); default: "
                        "the run's held-out clips")
    flags.DEFINE_integer("batch_size", 16, "clips per batch")
    flags.DEFINE_enum("on_bad_sample", "error", ["error", "skip"], "what a bad file does")
    flags.DEFINE_enum("protocol", "clip", list(evaluation.PROTOCOLS),
                      "clip: one clip a video; video: every non-overlapping clip, averaged")
    flags.DEFINE_boolean("three_crop", False, "also average the crops at both ends of "
                         "the frame's long side")
    flags.DEFINE_string("output", None, "metrics JSON; default model_dir/eval_metrics.json")
    flags.DEFINE_list("key_intervals", None, "segmentation and detection: key intervals "
                      "of the streaming engine; default: the run's --eval_key_intervals")
    flags.DEFINE_string("test_image_set", None, "detection: the videos to score (a list "
                        "of ROOT/ImageSets); default: the run's --test_image_set")


def load_run(model_dir, data=None, on_bad_sample="error"):
    """(best model, samples of `data` or the run's held-out clips, ClipSpec, the run's
    config.json) of a training run."""
    directory = run_dir.RunDir(model_dir)
    run = directory.read_config()
    data = data or run["eval_data"]
    if " (held-out" in data:
        raise ValueError("this run's test clips were split off its --data; pass --data "
                         "with the clips to evaluate on")
    samples = sources.from_spec(data, on_bad_sample)
    model = directory.load_best_model(compile=True)
    return model, samples, ClipSpec(**run["clip"]), run


def evaluate_run(model_dir, data=None, batch_size=16, on_bad_sample="error",
                 protocol="clip", three_crop=False, key_intervals=None):
    """(metrics, picture or None) of the run's best model on `data` or its held-out
    clips; a segmentation run (dff / frame_seg) is scored with the streaming engine at
    `key_intervals` (default: the run's), and has no picture."""
    run = run_dir.RunDir(model_dir).read_config()
    if run["train"]["task"] == "segmentation":
        return evaluate_segmentation_run(model_dir, run, data, key_intervals), None
    if run["train"]["task"] == "detection":
        return evaluate_detection_run(model_dir, run, data, key_intervals)
    model, samples, clip, run = load_run(model_dir, data, on_bad_sample)
    return evaluation.evaluate_videos(
        model, samples, clip, run["train"]["task"], run["class_names"], protocol,
        three_crop, batch_size, on_bad_sample)


def evaluate_segmentation_run(model_dir, run, data=None, key_intervals=None):
    """Held-out mIoU and frames/s of a dff / frame_seg run on `data` (a folder written
    by `generate segmentation`) or its own test videos."""
    from keras_video.tasks import dff_training

    model = run_dir.RunDir(model_dir).load_best_model()
    num_classes = len(run["class_names"])
    frames, masks, _ = dff_training.load_clips(data or run["eval_data"], num_classes)
    intervals = key_intervals or run["train"]["eval_key_intervals"]
    return dff_training.heldout_metrics(model, run["train"]["model"], frames, masks,
                                        num_classes, intervals)


def evaluate_detection_run(model_dir, run, data=None, key_intervals=None,
                           test_image_set=None):
    """(metrics, picture) of an rfcn / dff_rfcn run on the videos of `test_image_set`
    under `data` (imagenet_vid:ROOT) or the run's own: ImageNet VID mAP by motion speed
    and frames/s at each key interval; prints the per-class table of each."""
    from keras_video.data import imagenet_vid
    from keras_video.tasks import detection, detection_eval

    train = run["train"]
    root = (data or run["eval_data"])
    root = root[len(detection.PREFIX):] if root.startswith(detection.PREFIX) else root
    records = imagenet_vid.read_image_sets(root, test_image_set or train["test_image_set"])
    model = run_dir.RunDir(model_dir).load_best_model()
    intervals = key_intervals or ([1] if train["model"] == "rfcn"
                                  else train["eval_key_intervals"])
    results, by_motion = detection.evaluate_videos(model, records, tuple(run["wnids"]),
                                                   intervals)
    for interval, scores in by_motion.items():
        print(f"key interval {interval}:")
        print(detection_eval.format_table(scores, run["class_names"]))
    picture = detection.detection_picture(model, records, run["class_names"])
    return results, picture


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    intervals = [int(k) for k in FLAGS.key_intervals] if FLAGS.key_intervals else None
    run = run_dir.RunDir(FLAGS.model_dir).read_config()
    if run["train"]["task"] == "detection":
        results, picture = evaluate_detection_run(FLAGS.model_dir, run, FLAGS.data,
                                                  intervals, FLAGS.test_image_set)
    else:
        results, picture = evaluate_run(FLAGS.model_dir, FLAGS.data, FLAGS.batch_size,
                                        FLAGS.on_bad_sample, FLAGS.protocol,
                                        FLAGS.three_crop, intervals)
    output = FLAGS.output or os.path.join(FLAGS.model_dir, "eval_metrics.json")
    run_dir.write_json(output, results)
    print(json.dumps(results))
    print(f"metrics: {output}")
    if picture is not None:
        print(f"picture: {plots.save_png(picture, os.path.splitext(output)[0] + '.png')}")


def run():
    """The command line: flags, then main (a bad input is one line, not a traceback)."""
    define_flags()
    cli.run(main)
