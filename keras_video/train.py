"""Train a model: python -m keras_video.train --model=cnn_lstm [--flags].

With no flag but --model it generates the default data set, trains, evaluates on the
held-out clips, exports a SavedModel and writes TensorBoard logs under --model_dir.
A killed run started again with the same --model_dir resumes where it stopped.
"""

import dataclasses
import math
import os
import shutil
import sys
import time
import typing

from keras_video import runtime

if __name__ == "__main__":  # a command: choose TensorFlow's CPU kernels, then import it
    runtime.start()

from keras_video import cli  # noqa: E402

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags, logging  # noqa: E402

from keras_video import (configs, distribute, evaluation, export, features,  # noqa: E402
                         finetune, hardware, optimizers, run_dir)
from keras_video.data import datasets  # noqa: E402
from keras_video.data.pipeline import make_dataset  # noqa: E402
from keras_video.losses import RootMeanSquaredError  # noqa: E402
from keras_video.models import build_model  # noqa: E402
from keras_video.summaries import ImageSummaries  # noqa: E402

CONFIG_FILE = run_dir.CONFIG
BEST_MODEL = run_dir.BEST_MODEL
METRICS_FILE = run_dir.METRICS


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


def _loss(config):
    if config.task == "classification":
        return keras.losses.SparseCategoricalCrossentropy()
    return {"rmse": RootMeanSquaredError(), "mse": keras.losses.MeanSquaredError()}[
        config.loss]


def _metrics(config):
    if config.task == "classification":
        return [keras.metrics.SparseCategoricalAccuracy(name="top1"),
                keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5")]
    return [keras.metrics.RootMeanSquaredError(name="rmse"),
            keras.metrics.MeanAbsoluteError(name="mae")]


def _optimizer(config, steps_per_epoch, model):
    multipliers = None
    if config.head_lr_multiplier != 1.0:
        head = finetune.head_layer(model)
        multipliers = {v.path: config.head_lr_multiplier for v in head.trainable_weights}
    return optimizers.make_optimizer(config, steps_per_epoch, multipliers)


def _first_examples(dataset, limit):
    clips, labels = [], []
    for x, y in dataset:
        clips.append(x.numpy())
        labels.append(y.numpy())
        if sum(len(c) for c in clips) >= limit:
            break
    return np.concatenate(clips)[:limit], np.concatenate(labels)[:limit]


def _uses_feature_cache(config):
    return config.model == "cnn_lstm" and config.freeze_backbone


def _fit(config, strategy, model, train_ds, val_ds, steps_per_epoch, callbacks, paths):
    """Trains end to end, or only the head on cached features of a frozen backbone."""
    if not _uses_feature_cache(config):
        return model.fit(train_ds, validation_data=val_ds, epochs=config.epochs,
                         steps_per_epoch=config.steps_per_epoch or None,
                         shuffle=False,  # the pipeline shuffles
                         callbacks=callbacks, verbose=2 if config.quiet else 1)
    feature_model, head = features.split_model(model)
    print("Computing per-frame features of the frozen backbone once (cached in "
          f"{paths['feature_cache']})")
    x_train, y_train = features.cached_features(
        feature_model, train_ds, os.path.join(paths["feature_cache"], "train.npz"),
        paths["num_train"])
    x_val, y_val = features.cached_features(
        feature_model, val_ds, os.path.join(paths["feature_cache"], "val.npz"),
        paths["num_val"])
    with strategy.scope():
        head.compile(optimizer=_optimizer(config, steps_per_epoch, head), loss=_loss(config),
                     metrics=_metrics(config), jit_compile=_jit_compile(config))
    train = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
             .shuffle(len(y_train), seed=config.seed).batch(config.batch_size))
    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(config.batch_size)
    return head.fit(train, validation_data=val, epochs=config.epochs, callbacks=callbacks,
                    shuffle=False, verbose=2 if config.quiet else 1)


def _jit_compile(config):
    """Keras's compile(jit_compile=...): None leaves it to Keras ("auto": XLA with a GPU,
    none on a CPU)."""
    return "auto" if config.jit_compile is None else config.jit_compile


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
        if config.model in ("dff", "frame_seg"):
            from keras_video import dff_training
            return dff_training.train_dff(config, overwrite)
        return _train(config, overwrite)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _train(config, overwrite):
    model_dir = config.model_dir or run_dir.default_path(config.experiment, config.model)
    config = dataclasses.replace(config, model_dir=model_dir)
    os.makedirs(model_dir, exist_ok=True)
    done = finished_metrics(model_dir, overwrite)
    if done is not None:
        return done
    start = time.time()
    keras.utils.set_random_seed(config.seed)
    if config.mixed_precision:
        set_mixed_precision()
    strategy = distribute.get_strategy(config.strategy)
    # Only the chief writes into model_dir; the other workers of a multi-worker job
    # write the same files into a directory of their own and delete it at the end.
    out_dir = distribute.output_dir(model_dir, strategy)
    run, out = run_dir.RunDir(model_dir), run_dir.RunDir(out_dir).create()
    paths = {
        "logs": out.logs_dir,
        "backup": run.backup_dir,  # every worker restores from here
        "backup_write": out.backup_dir,
        "best": out.best_model_path,
        "export": out.export_dir,
        "feature_cache": out.file("feature_cache"),
    }
    splits = datasets.load_splits(config, data_dir=config.data_dir or out.data_dir)
    clip = config.clip_spec()
    task = splits.task
    config = dataclasses.replace(config, task=task)
    model_config = config.model_config(splits.num_classes)
    out.write_config({"train": {k: v for k, v in dataclasses.asdict(config).items()
                                if k != "quiet"},
                      "model_config": model_config,
                      "clip": clip.to_dict(), "class_names": splits.class_names,
                      "eval_data": splits.test_spec})

    global_batch = config.batch_size
    # Clips read once for the feature cache need no cache of their own.
    cache = None if _uses_feature_cache(config) else (config.cache or None)
    eval_clip = clip.for_eval()

    def train_input(source, batch_size):
        ds = make_dataset(source, clip, batch_size, training=True, seed=config.seed,
                          cache=cache, on_bad_sample=config.on_bad_sample)
        # A fixed number of steps per epoch reads the training set round and round.
        return ds.repeat() if config.steps_per_epoch else ds

    def val_input(source, batch_size):
        return make_dataset(source, eval_clip, batch_size, training=False, cache=cache,
                            on_bad_sample=config.on_bad_sample)

    if _uses_feature_cache(config):
        # Every worker computes the features of every clip; Keras then shards the
        # in-memory features by data.
        train_ds = make_dataset(splits.train, clip, global_batch, training=True,
                                seed=config.seed, on_bad_sample=config.on_bad_sample)
        val_ds = val_input(splits.val, global_batch)
    else:
        train_ds = distribute.distribute_dataset(strategy, splits.train, train_input,
                                                 global_batch)
        val_ds = distribute.distribute_dataset(strategy, splits.val, val_input,
                                               global_batch)
    steps_per_epoch = config.steps_per_epoch or max(
        1, math.ceil(len(splits.train) / global_batch))
    if cache:
        print(f"The first epoch decodes all {len(splits.train)} training clips into the "
              f"{cache} cache before its first step; later epochs read the cache.")

    with strategy.scope():
        model = build_model(config.model, **model_config)
        if config.pretrained:
            print(finetune.load_pretrained(model, config.pretrained, config.model,
                                           model_config))
        if config.freeze_until:
            frozen = finetune.freeze_until(model, config.freeze_until)
            print(f"Frozen: {len(frozen)} layers before {config.freeze_until!r} "
                  f"({sum(int(np.prod(w.shape)) for layer in frozen for w in layer.weights):,} "
                  "weights)")
        model.compile(optimizer=_optimizer(config, steps_per_epoch, model),
                      loss=_loss(config), metrics=_metrics(config),
                      jit_compile=_jit_compile(config))
    if not config.quiet:
        model.summary()

    val_clips, val_labels = _first_examples(
        make_dataset(splits.val, eval_clip, global_batch, training=False,
                     on_bad_sample=config.on_bad_sample), 256)
    resumed = distribute.resumed_epoch(paths["backup"])
    if resumed:
        print(f"Resuming from the backup in {paths['backup']}: epoch {resumed} of "
              f"{config.epochs} done")
    predict_fn = None
    if _uses_feature_cache(config):
        feature_model, head = features.split_model(model)
        val_feats = np.asarray(feature_model.predict(val_clips, verbose=0))
        predict_fn = lambda _: head.predict(val_feats, verbose=0)  # noqa: E731
    callbacks = [
        distribute.BackupAndRestore(paths["backup"], paths["backup_write"], strategy),
        BestModelCheckpoint(paths["best"], model),
        keras.callbacks.TensorBoard(paths["logs"], write_graph=False),
        ImageSummaries(os.path.join(paths["logs"], "images"), task, val_clips[0],
                       val_clips, val_labels, splits.class_names, predict_fn),
    ] + optimizers.schedule_callbacks(config)
    paths.update(num_train=len(splits.train), num_val=len(splits.val))
    _fit(config, strategy, model, train_ds, val_ds, steps_per_epoch, callbacks, paths)
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
    test_ds = make_dataset(splits.test, eval_clip, global_batch, training=False,
                           on_bad_sample=config.on_bad_sample)
    results, picture = evaluation.evaluate(best, test_ds, task, splits.class_names)
    if task == "classification":
        # The published protocol: scores of all non-overlapping clips of each video
        # averaged; the clip metrics above read the centre clip only.
        video, picture = evaluation.evaluate_videos(
            best, splits.test, clip, task, splits.class_names, protocol="video",
            batch_size=global_batch, on_bad_sample=config.on_bad_sample)
        results = {**{f"clip_{k}": v for k, v in results.items()},
                   **{f"video_{k}": v for k, v in video.items() if k != "protocol"}}
    picture_path = os.path.join(
        model_dir, "test_scatter.png" if task == "regression" else "test_confusion.png")
    cv2.imwrite(picture_path, picture[..., ::-1])
    run_dir.replace_folder(lambda folder: export.export_saved_model(
        best, clip, folder, task, splits.class_names,
        extra={"model": config.model, "experiment": config.experiment}), paths["export"])
    out.write_metrics({"metrics": results, "train_seconds": train_time,
                       "total_seconds": time.time() - start, "eval_data": splits.test_spec})
    distribute.barrier(strategy)  # the other workers waited for the results
    print(f"\nmodel directory : {model_dir}")
    print(f"best model      : {paths['best']}")
    print(f"SavedModel      : {paths['export']}  (signature 'serve', "
          f"{'uint8 quantized flow' if clip.modality == 'flow' else 'uint8 RGB frames'})")
    print(f"TensorBoard     : tensorboard --logdir {paths['logs']}")
    print(f"test picture    : {picture_path}")
    print(f"held-out data   : {splits.test_spec} ({len(splits.test)} clips)")
    print(f"time            : {time.time() - start:.0f} s")
    print("final metrics   : " + ", ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in results.items()))
    return results


def define_flags():
    """One absl flag per TrainConfig field; unset flags keep the experiment's value."""
    for field in dataclasses.fields(configs.TrainConfig):
        name, default = field.name, field.default
        help_text = f"{field.metadata['help']} (unset: the experiment's, else {default!r})"
        if isinstance(default, bool) or field.type == typing.Optional[bool]:
            flags.DEFINE_boolean(name, None, help_text)
        elif isinstance(default, int):
            flags.DEFINE_integer(name, None, help_text)
        elif isinstance(default, float):
            flags.DEFINE_float(name, None, help_text)
        elif isinstance(default, tuple):
            flags.DEFINE_list(name, None, help_text)
        else:
            flags.DEFINE_string(name, None, help_text)
    flags.DEFINE_boolean("overwrite", False, "train again even if model_dir holds a "
                         "finished run")


def config_from_flags(flag_values):
    overrides = {}
    for field in dataclasses.fields(configs.TrainConfig):
        value = flag_values[field.name].value
        if value is None or field.name == "experiment":
            continue
        if isinstance(field.default, tuple):
            value = tuple(int(v) for v in value)
        overrides[field.name] = value
    return configs.make_config(flag_values["experiment"].value or "", overrides)


def main(argv):
    del argv
    train(config_from_flags(flags.FLAGS), overwrite=flags.FLAGS.overwrite)


HELP_FLAGS = ("--help", "-h", "-?", "--helpshort")


if __name__ == "__main__":
    if HELP_FLAGS[0] in sys.argv[1:] or set(HELP_FLAGS[1:]) & set(sys.argv[1:]):
        # Grouped, with the models each setting applies to (absl lists them flat).
        print(__doc__ + "\nusage: python -m keras_video.train [--setting=value ...]\n"
              + configs.help_text() + "\n\n--overwrite  train again even if --model_dir "
              "holds a finished run\n--helpfull  every flag, absl's own included")
        sys.exit(0)
    define_flags()
    cli.run(main)
