"""Clip classification and clip regression: a clip of frames in, one label out.

Inputs: --data through keras_video.data.datasets (train / validation / test splits)
and the OpenCV + tf.data pipeline (keras_video.data.pipeline), sharded by file over the
workers of a multi-worker job. Evaluation: the centre clip of every held-out video
(clip metrics); classification adds the published video protocol (the scores of all
non-overlapping clips of a video averaged, keras_video.tasks.evaluation). Export: the
SavedModel `serve` signature on uint8 frames (keras_video.serving.export). A cnn_lstm with a
frozen backbone trains its head on per-frame features computed once (its `fit` stage).
"""

import math
import os

import keras
import numpy as np
import tensorflow as tf

from keras_video.tasks import evaluation
from keras_video.serving import export
from keras_video.tasks import feature_cache
from keras_video.models import pretrained
from keras_video.data import datasets
from keras_video.data.pipeline import make_dataset
from keras_video.losses import RootMeanSquaredError
from keras_video.models import build_model
from keras_video.tasks.pictures import ImageSummaries
from keras_video.tasks.base import Task, compile_model
from keras_video.data import sharding

# Held-out clips a picture of the validation predictions reads every epoch.
PICTURE_CLIPS = 256


def _first_examples(dataset, limit):
    clips, labels = [], []
    for x, y in dataset:
        clips.append(x.numpy())
        labels.append(y.numpy())
        if sum(len(c) for c in clips) >= limit:
            break
    return np.concatenate(clips)[:limit], np.concatenate(labels)[:limit]


class ClipTask(Task):
    """What clip classification and regression share (see the module docstring)."""

    def __init__(self, config, strategy, data_dir, output_dir, splits):
        super().__init__(config.replace(task=splits.task), strategy, data_dir, output_dir)
        self.splits = splits
        self.clip = self.config.data.clip_spec()
        self.model_config = self.config.model_config(splits.num_classes)
        model = self.config.model
        self.feature_cache = model.name == "cnn_lstm" and model.freeze_backbone
        # Clips read once for the feature cache need no cache of their own.
        self.cache = None if self.feature_cache else (self.config.data.cache or None)

    def record(self):
        return {"model_config": self.model_config, "clip": self.clip.to_dict(),
                "class_names": self.splits.class_names, "eval_data": self.splits.test_spec}

    def steps_per_epoch(self):
        return self.config.optimization.steps_per_epoch or max(
            1, math.ceil(len(self.splits.train) / self.config.optimization.batch_size))

    # --- inputs ----------------------------------------------------------------------

    def _train_input(self, source, batch_size):
        config = self.config
        ds = make_dataset(source, self.clip, batch_size, training=True,
                          seed=config.runtime.seed, cache=self.cache,
                          on_bad_sample=config.data.on_bad_sample)
        # A fixed number of steps per epoch reads the training set round and round.
        return ds.repeat() if config.optimization.steps_per_epoch else ds

    def _val_input(self, source, batch_size, cache=True):
        return make_dataset(source, self.clip.for_eval(), batch_size, training=False,
                            cache=self.cache if cache else None,
                            on_bad_sample=self.config.data.on_bad_sample)

    # --- model -----------------------------------------------------------------------

    def build_model(self):
        config = self.config
        model = build_model(config.model.name, **self.model_config)
        if config.model.pretrained:
            print(pretrained.load_pretrained(model, config.model.pretrained,
                                             config.model.name, self.model_config))
        if config.model.freeze_until:
            frozen = pretrained.freeze_until(model, config.model.freeze_until)
            weights = sum(int(np.prod(w.shape)) for layer in frozen for w in layer.weights)
            print(f"Frozen: {len(frozen)} layers before {config.model.freeze_until!r} "
                  f"({weights:,} weights)")
        return model

    def compile(self, model, steps_per_epoch):
        return compile_model(self, model, steps_per_epoch, self.loss(), self.metrics())

    def callbacks(self, logs_dir, model):
        self.val_clips, self.val_labels = _first_examples(
            self._val_input(self.splits.val, self.config.optimization.batch_size,
                            cache=False),
            PICTURE_CLIPS)
        predict_fn = None
        if self.feature_cache:
            feature_model, head = feature_cache.split_model(model)
            val_features = np.asarray(feature_model.predict(self.val_clips, verbose=0))
            predict_fn = lambda _: head.predict(val_features, verbose=0)  # noqa: E731
        return [ImageSummaries(os.path.join(logs_dir, "images"), self.config.task,
                               self.val_clips[0], self.val_clips, self.val_labels,
                               self.splits.class_names, predict_fn)]

    # --- training --------------------------------------------------------------------

    def fit(self, fitted, callbacks, steps_per_epoch):
        splits, strategy = self.splits, self.strategy
        opt, seed = self.config.optimization, self.config.runtime.seed
        if self.cache:
            print(f"The first epoch decodes all {len(splits.train)} training clips into "
                  f"the {self.cache} cache before its first step; later epochs read it.")
        if not self.feature_cache:
            train_ds = sharding.distribute_dataset(strategy, splits.train,
                                                   self._train_input, opt.batch_size)
            val_ds = sharding.distribute_dataset(strategy, splits.val, self._val_input,
                                                 opt.batch_size)
            return fitted.fit(train_ds, validation_data=val_ds, epochs=opt.epochs,
                              steps_per_epoch=opt.steps_per_epoch or None,
                              shuffle=False,  # the pipeline shuffles
                              callbacks=callbacks, verbose=self.verbose())
        # Every worker computes the features of every clip; Keras then shards the
        # in-memory features by data.
        cache_dir = os.path.join(self.output_dir, "feature_cache")
        feature_model, head = feature_cache.split_model(fitted)
        print(f"Computing per-frame features of the frozen backbone once (cached in "
              f"{cache_dir})")
        train_ds = make_dataset(splits.train, self.clip, opt.batch_size, training=True,
                                seed=seed, on_bad_sample=self.config.data.on_bad_sample)
        x_train, y_train = feature_cache.cached_features(
            feature_model, train_ds, os.path.join(cache_dir, "train.npz"), len(splits.train))
        x_val, y_val = feature_cache.cached_features(
            feature_model, self._val_input(splits.val, opt.batch_size),
            os.path.join(cache_dir, "val.npz"), len(splits.val))
        with strategy.scope():
            compile_model(self, head, steps_per_epoch, self.loss(), self.metrics())
        train = (tf.data.Dataset.from_tensor_slices((x_train, y_train))
                 .shuffle(len(y_train), seed=seed).batch(opt.batch_size))
        val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(opt.batch_size)
        return head.fit(train, validation_data=val, epochs=opt.epochs,
                        callbacks=callbacks, shuffle=False, verbose=self.verbose())

    # --- evaluation and export -------------------------------------------------------

    def evaluate(self, best):
        test_ds = self._val_input(self.splits.test, self.config.optimization.batch_size,
                                  cache=False)
        results, picture = evaluation.evaluate(best, test_ds, self.config.task,
                                               self.splits.class_names)
        return results, picture

    def export(self, best, folder):
        config = self.config
        return export.export_saved_model(
            best, self.clip, folder, config.task, self.splits.class_names,
            extra={"model": config.model.name, "experiment": config.experiment})

    def summary(self):
        inputs = "uint8 quantized flow" if self.clip.modality == "flow" else "uint8 RGB frames"
        return [f"signature       : 'serve', {inputs}",
                f"held-out data   : {self.splits.test_spec} ({len(self.splits.test)} clips)"]


class ClipRegression(ClipTask):
    """A number per clip (the oscillation frequency): RMSE and MAE, a scatter plot."""

    name = "regression"
    picture_name = "test_scatter.png"

    def loss(self):
        return {"rmse": RootMeanSquaredError(),
                "mse": keras.losses.MeanSquaredError()}[self.config.optimization.loss]

    def metrics(self):
        return [keras.metrics.RootMeanSquaredError(name="rmse"),
                keras.metrics.MeanAbsoluteError(name="mae")]


class ClipClassification(ClipTask):
    """A class per clip: top-1 / top-5 of the centre clip and of the whole video (the
    published protocol), a per-video confusion matrix."""

    name = "classification"
    picture_name = "test_confusion.png"

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="top1"),
                keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5")]

    def evaluate(self, best):
        clip_results, _ = super().evaluate(best)
        # The published protocol: scores of all non-overlapping clips of each video
        # averaged; the clip metrics read the centre clip only.
        video, picture = evaluation.evaluate_videos(
            best, self.splits.test, self.clip, self.config.task, self.splits.class_names,
            protocol="video", batch_size=self.config.optimization.batch_size,
            on_bad_sample=self.config.data.on_bad_sample)
        return ({**{f"clip_{k}": v for k, v in clip_results.items()},
                 **{f"video_{k}": v for k, v in video.items() if k != "protocol"}}, picture)


def clip_task(config, strategy, data_dir, output_dir):
    """The clip task --data calls for: classification or regression, by its labels."""
    splits = datasets.load_splits(config.data, config.runtime.seed, data_dir)
    return {"classification": ClipClassification, "regression": ClipRegression}[
        splits.task](config, strategy, data_dir, output_dir, splits)
