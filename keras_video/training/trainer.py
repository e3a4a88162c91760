"""One trainer for every task (keras_video.tasks): everything a run does whatever it
trains.

    run directory    --model_dir (default runs/EXPERIMENT), keras_video.run_dir; a
                     finished run (metrics.json) is not trained again without
                     --overwrite
    seed, precision  keras.utils.set_random_seed; --mixed_precision (float16 on a GPU,
                     bfloat16 on a CPU); the caller's dtype policy is restored after
    strategy         --strategy (keras_video.training.distribute); in a multi-worker job only
                     the chief writes into the run directory, the others into a
                     throw-away folder
    resume           distribute.BackupAndRestore: a killed run resumes at its last
                     finished epoch
    checkpoint       BestModelCheckpoint: best.keras by validation loss, atomically
    logs             TensorBoard curves, and the task's pictures
    results          the task's held-out metrics and picture, its export, metrics.json
                     and the summary
"""

import math
import os
import shutil
import time

import keras
import tensorflow as tf
from absl import logging

from keras_video import hardware, optimizers, run_dir
from keras_video.training import configs, distribute
from keras_video import tasks as tasks_lib


class BestModelCheckpoint(keras.callbacks.Callback):
    """Saves `model_to_save` when `monitor` improves; remembers the best across resumes
    (keras.callbacks.ModelCheckpoint forgets it, and would overwrite a better model).
    The model and its score file are each written atomically (keras_video.run_dir)."""

    def __init__(self, path, model_to_save, monitor="val_loss"):
        super().__init__()
        self.path, self.model_to_save, self.monitor = path, model_to_save, monitor
        self.state_path = path + ".json"
        self.best = math.inf
        if os.path.isfile(self.state_path) and os.path.isfile(path):
            self.best = run_dir.read_json(self.state_path)["best"]

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not value < self.best:
            return
        self.best = float(value)
        run_dir.save_model(self.model_to_save, self.path)
        run_dir.write_json(self.state_path, {"best": self.best, "epoch": epoch + 1,
                                             "monitor": self.monitor})


def set_mixed_precision():
    """float16 on a GPU; on a CPU TensorFlow has no float16 3D max-pool kernel, and
    bfloat16 is the type CPUs compute in fast (AVX512-BF16 / AMX)."""
    gpus = tf.config.list_physical_devices("GPU")
    keras.mixed_precision.set_global_policy("mixed_float16" if gpus else "mixed_bfloat16")
    if not gpus and hardware.cpu_has_bfloat16() is False:
        logging.warning(
            "--mixed_precision on a CPU without bfloat16 instructions (AMX, AVX512-BF16): "
            "bfloat16 is emulated there, 9-20x slower a training step "
            "(experiments/RESULTS.md); pass --nomixed_precision")


def finished_metrics(model_dir, overwrite):
    """The metrics of a finished run in model_dir (said so), or None to train."""
    done = None if overwrite else run_dir.RunDir(model_dir).finished_metrics()
    if done is None:
        return None
    print(f"{model_dir} already holds a finished run (metrics: {done['metrics']}); "
          "pass --overwrite to train again, or another --model_dir.")
    return done["metrics"]


def train(config, overwrite=False):
    """Runs the whole job for a TrainConfig; returns the held-out metrics. The Keras
    dtype policy (--mixed_precision) is the caller's again afterwards."""
    policy = keras.mixed_precision.global_policy()
    try:
        return _train(config, overwrite)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def train_per_frame_then_dff(per_frame, dff, runs, overrides=None):
    """Trains experiment `per_frame` (e.g. vid_rfcn) into runs/<per_frame>, then `dff`
    (e.g. vid_dff_rfcn) into runs/<dff> starting from its N_feat and N_task
    (--feature_init), both on one data folder runs/data, as the DFF benchmarks do; a
    finished run is found, not trained again. `overrides`: flat settings for both
    (make_config's). Returns ({experiment: model_dir}, {experiment: seconds})."""
    dirs, seconds = {}, {}
    for experiment in (per_frame, dff):
        model_dir = os.path.join(runs, experiment)
        values = {**(overrides or {}), "model_dir": model_dir,
                  "data_dir": os.path.join(runs, "data"), "quiet": True}
        if experiment == dff:
            values.setdefault("feature_init", dirs[per_frame])
        start = time.time()
        train(configs.make_config(experiment, values))
        seconds[experiment] = time.time() - start
        print(f"{experiment}: {seconds[experiment]:.0f} s (0 if it was already trained)")
        dirs[experiment] = model_dir
    return dirs, seconds


def _train(config, overwrite):
    model_dir = config.runtime.model_dir or run_dir.default_path(config.experiment,
                                                                 config.model.name)
    config = config.replace(model_dir=model_dir)
    os.makedirs(model_dir, exist_ok=True)
    done = finished_metrics(model_dir, overwrite)
    if done is not None:
        return done
    start = time.time()
    keras.utils.set_random_seed(config.runtime.seed)
    if config.runtime.mixed_precision:
        set_mixed_precision()
    strategy = distribute.get_strategy(config.runtime.strategy)
    # Only the chief writes into model_dir; the other workers of a multi-worker job
    # write the same files into a directory of their own and delete it at the end.
    out_dir = distribute.output_dir(model_dir, strategy)
    run, out = run_dir.RunDir(model_dir), run_dir.RunDir(out_dir).create()
    task = tasks_lib.make_task(config, strategy, config.data.data_dir or out.data_dir,
                               out_dir)
    config = task.config
    out.write_config({"train": {k: v for k, v in config.settings().items()
                                if k != "quiet"}, **task.record()})
    steps_per_epoch = task.steps_per_epoch()
    with strategy.scope():
        model = task.build_model()
        fitted = task.compile(model, steps_per_epoch)
    if not config.runtime.quiet:
        fitted.summary()
    resumed = distribute.resumed_epoch(run.backup_dir)
    if resumed:
        print(f"Resuming from the backup in {run.backup_dir}: epoch {resumed} of "
              f"{config.optimization.epochs} done")
    callbacks = [
        distribute.BackupAndRestore(run.backup_dir, out.backup_dir, strategy),
        BestModelCheckpoint(out.best_model_path, model),
        keras.callbacks.TensorBoard(out.logs_dir, write_graph=False),
        *task.callbacks(out.logs_dir, model),
        *optimizers.schedule_callbacks(config.optimization)]
    task.fit(fitted, callbacks, steps_per_epoch)
    train_time = time.time() - start
    if out_dir != model_dir:
        # Evaluation and export below run on a model loaded outside the strategy, with
        # no collective op to join: they are the chief's alone.
        shutil.rmtree(out_dir, ignore_errors=True)
        print(f"Worker done after {train_time:.0f} s; the chief writes the results to "
              f"{model_dir}")
        distribute.barrier(strategy)
        return {}

    best = out.load_best_model()
    results, picture = task.evaluate(best)
    picture_path = task.write_picture(picture, model_dir) if picture is not None else None
    run_dir.replace_folder(lambda folder: task.export(best, folder), out.export_dir)
    out.write_metrics({"metrics": results, "train_seconds": train_time,
                       "total_seconds": time.time() - start,
                       "eval_data": task.record().get("eval_data")})
    distribute.barrier(strategy)  # the other workers waited for the results
    lines = [f"model directory : {model_dir}", f"best model      : {out.best_model_path}",
             f"SavedModel      : {out.export_dir}",
             f"TensorBoard     : tensorboard --logdir {out.logs_dir}"]
    if picture_path:
        lines.append(f"test picture    : {picture_path}")
    lines += task.summary()
    lines += [f"time            : {time.time() - start:.0f} s",
              "final metrics   : " + ", ".join(
                  f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                  for k, v in results.items())]
    print("\n" + "\n".join(lines))
    return results
