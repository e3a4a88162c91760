"""Export a trained run for serving:

    python -m keras_video.export --model_dir D --format=tflite [--quantize=none|float16|int8]
                                 [--calibration_clips=N] [--output=PATH]
    python -m keras_video.export --model_dir D --format=saved_model

Reads the run's best model (D/best.keras, keras_video.run_dir) and its config.json (the
clip recipe, the task, the class names, the held-out data).

--format=tflite writes D/export/model.tflite (or --output), keras_video.serving.tflite:
uint8 frames at the clip's decode size in, the SavedModel's preprocessing inside,
scores out. A dff / frame_seg run writes one file per part, model_feature.tflite,
model_per_frame.tflite and (dff) model_propagate.tflite (the SavedModel's signatures).
Files are written atomically; the size on disk of each is printed. --quantize=int8
calibrates activation ranges on --calibration_clips clips of the run's held-out data
(its config.json's eval_data, read as `predict` reads a clip; a segmentation run: the
frames of its held-out videos). The training pipeline's clips are not used: they are
cropped (and augmented) to the model's size, while the .tflite file takes whole frames
at the decode size, as the held-out clips are read. Only the clips' pixels are read
(no label): calibration fits value ranges, and the held-out metrics of an int8 model
are its accuracy experiment.

--format=saved_model writes D/export again (keras_video.serving.export), as training
does at its end; .tflite files already in D/export are kept.
"""

import os
import shutil
import warnings

from absl import flags

from keras_video import run_dir
from keras_video.commands import cli
from keras_video.data import decode, pipeline, sources
from keras_video.data.pipeline import ClipSpec
from keras_video.serving import export, tflite

FORMATS = ("tflite", "saved_model")
TFLITE_NAME = "model.tflite"


def define_flags():
    """The command's flags (defined when it runs, so that importing this module into a
    process with other commands defines nothing)."""
    flags.DEFINE_string("model_dir", None, "directory of a training run", required=True)
    flags.DEFINE_enum("format", "tflite", list(FORMATS), "tflite: a TensorFlow Lite "
                      "file; saved_model: the run's export/ SavedModel again")
    flags.DEFINE_enum("quantize", "none", list(tflite.QUANTIZE),
                      "tflite: float16 weights, or int8 post-training quantization")
    flags.DEFINE_integer("calibration_clips", 16, "tflite int8: held-out clips "
                         "(segmentation: frames) that calibrate activation ranges")
    flags.DEFINE_string("output", None, "tflite: the file to write (dff: the parts go "
                        "beside it, NAME_<part>.tflite); default model_dir/export/"
                        + TFLITE_NAME)


def read_for_serving(clip, path):
    """The clip `predict` hands the SavedModel: uint8 RGB frames at the decode size (a
    flow model: its quantized flow)."""
    if clip.modality == "flow":
        return pipeline.clip_reader(clip)(path.encode(), None)
    return decode.read_clip(path, clip.num_frames, clip.sampling, clip.stride, None,
                            clip.decode_size)


def calibration_clips(model_dir, count, segmentation=False):
    """Up to `count` uint8 examples of the run's held-out data as its .tflite file takes
    them (see the module docstring): clips, or frames of a segmentation run."""
    run = run_dir.RunDir(model_dir).read_config()
    data = run["eval_data"]
    if segmentation:
        from keras_video.tasks import dff_training

        frames = dff_training.load_clips(data)[0]
        return list(frames.reshape(-1, *frames.shape[2:])[:count])
    if " (held-out" in data:  # split off the training data; its source holds them
        data = data.split(" (held-out")[0]
    samples = sources.from_spec(data, on_bad_sample="skip")
    if not hasattr(samples, "paths"):
        raise ValueError(f"{data}: int8 calibration reads clips from files; this data "
                         "has none (use --quantize=none or float16)")
    clip = ClipSpec(**run["clip"]).for_eval()
    clips = []
    for path in samples.paths:
        try:
            clips.append(read_for_serving(clip, path))
        except decode.BadSampleError:
            continue
        if len(clips) == count:
            break
    if not clips:
        raise ValueError(f"{data}: no clip could be read for int8 calibration")
    return clips


def tflite_paths(output, parts=None):
    """{part or None: path} of the files an export writes at `output`."""
    if not parts:
        return {None: output}
    stem, ending = os.path.splitext(output)
    return {part: f"{stem}_{part}{ending or '.tflite'}" for part in parts}


def export_tflite(model_dir, quantize="none", num_calibration=16, output=None):
    """Writes the run's .tflite file(s); returns {path: size on disk in bytes}."""
    directory = run_dir.RunDir(model_dir)
    run = directory.read_config()
    model = directory.load_best_model(compile=False)
    output = output or os.path.join(directory.export_dir, TFLITE_NAME)
    dff = tflite.is_dff(model)
    calibration = (calibration_clips(model_dir, num_calibration, segmentation=dff)
                   if quantize == "int8" else None)
    sizes = {}
    if dff:
        for part, path in tflite_paths(output, tflite.parts_of(model)).items():
            content = tflite.convert(model, quantize, calibration, part=part)
            sizes[path] = tflite.write(content, path)
    else:
        content = tflite.convert(model, quantize, calibration, clip=ClipSpec(**run["clip"]))
        sizes[output] = tflite.write(content, output)
    return sizes


def export_saved_model(model_dir):
    """Writes the run's SavedModel export (D/export) again from its best model, in
    place of the old one (run_dir.replace_folder); keeps its .tflite files."""
    directory = run_dir.RunDir(model_dir)
    run = directory.read_config()
    model = directory.load_best_model(compile=False)
    train = run["train"]  # the run's flat settings (keras_video.training.configs)
    extra = {"model": train["model"], "experiment": train["experiment"]}
    old = directory.export_dir

    def write(folder):
        if tflite.is_dff(model):
            export.export_dff(model, folder, run["class_names"], extra=extra)
        else:
            export.export_saved_model(model, ClipSpec(**run["clip"]), folder,
                                      train["task"], run["class_names"], extra)
        if os.path.isdir(old):
            for name in os.listdir(old):
                if name.endswith(".tflite"):
                    shutil.copy2(os.path.join(old, name), os.path.join(folder, name))

    return run_dir.replace_folder(write, old)


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    # int8 calibration runs TensorFlow's (deprecated, still working) tf.lite.Interpreter,
    # which says so once per interpreter: noise around the command's output.
    warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
    if FLAGS.format == "saved_model":
        if FLAGS.quantize != "none" or FLAGS.output:
            raise ValueError("--quantize and --output are for --format=tflite; the "
                             "SavedModel is written to the run's export/")
        print(f"SavedModel: {export_saved_model(FLAGS.model_dir)}")
        return
    sizes = export_tflite(FLAGS.model_dir, FLAGS.quantize, FLAGS.calibration_clips,
                          FLAGS.output)
    for path, size in sizes.items():
        print(f"{path}: {size:,} bytes ({size / 2 ** 20:.2f} MiB, {FLAGS.quantize})")


def run():
    """The command line: flags, then main (a bad input is one line, not a traceback)."""
    define_flags()
    cli.run(main)
