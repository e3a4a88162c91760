"""Video segmentation: Deep Feature Flow (`dff`) and its per-frame baseline (`frame_seg`).

Inputs: --data=synthetic:segmentation, moving-shapes videos with masks and exact flow
generated under the data folder (keras_video.data.moving_shapes), read into memory;
training pairs {"current": frame t, "key": frame t - randint(0, key_range)} labelled
with frame t's mask (keras_video.tasks.dff_training.pair_dataset). Stages of `fit`: with
--freeze_feature, N_feat's features of every frame are computed once and only the flow
net and scale field train (through warp and N_task); --flow_pretrain_steps first train
the flow net alone on ground-truth flow. Evaluation: held-out mIoU and frames/s of the
streaming engine at --eval_key_intervals (dff) or per frame. Export: the parts as
signatures (feature / propagate / per_frame, export.export_dff).
"""

import os
import time

import keras

from keras_video.data import moving_shapes
from keras_video.tasks import dff_training
from keras_video.tasks.dff_training import (OverlaySummaries, frame_features, load_clips,
                                      pair_dataset)
from keras_video.models import build_model
from keras_video.models.dff import dff_parts, propagation_model
from keras_video.tasks.base import Task, compile_model
from keras_video.serving import export


class VideoSegmentation(Task):
    name = "segmentation"
    models = ("dff", "frame_seg")

    def __init__(self, config, strategy, data_dir, output_dir):
        super().__init__(config.replace(task="segmentation"), strategy, data_dir, output_dir)
        config, dff = self.config, self.config.dff
        if dff.key_range < 0:
            raise ValueError(f"--key_range must be >= 0, got {dff.key_range}")
        if dff.freeze_feature and not (config.model.name == "dff" and dff.feature_init):
            raise ValueError("--freeze_feature keeps N_feat and N_task as --feature_init "
                             "gives them: it needs --model=dff and --feature_init")
        self.parts = dff_training.generate_splits(config, data_dir)
        self.num_classes = dff.seg_classes
        self.class_names = list(moving_shapes.class_names(self.num_classes))
        self.train_frames, self.train_masks, _ = load_clips(self.parts["train"],
                                                            self.num_classes)
        self.val_frames, self.val_masks, self.val_metas = load_clips(self.parts["val"],
                                                                     self.num_classes)
        self.model_config = dff_training.model_config(config, self.num_classes)

    def record(self):
        return {"model_config": self.model_config, "class_names": self.class_names,
                "eval_data": self.parts["test"]}

    def steps_per_epoch(self):
        frames = self.train_frames.shape[0] * self.train_frames.shape[1]
        opt = self.config.optimization
        return opt.steps_per_epoch or max(1, frames // opt.batch_size)

    def build_model(self):
        self.model = build_model(self.config.model.name, **self.model_config)
        if self.config.model.name == "dff" and self.config.dff.feature_init:
            print(dff_training.load_feature_task(self.model, self.config.dff.feature_init))
        return self.model

    def compile(self, model, steps_per_epoch):
        fitted = model
        self.train_features = self.val_features = None
        if self.config.dff.freeze_feature:
            # Key frames then stay exactly the per-frame model's. N_feat being fixed, its
            # features of every frame are computed once, and the end-to-end stage trains
            # the flow net and the scale field through warp and N_task on them.
            n_feat, _, n_task = dff_parts(model)
            n_feat.trainable = n_task.trainable = False
            start = time.time()
            self.train_features = frame_features(n_feat, self.train_frames)
            self.val_features = frame_features(n_feat, self.val_frames)
            print(f"N_feat and N_task fixed; features of {self.train_frames.shape[0]} + "
                  f"{self.val_frames.shape[0]} videos computed in "
                  f"{time.time() - start:.0f} s")
            fitted = propagation_model(model)
        metrics = [keras.metrics.MeanIoU(self.num_classes, name="miou",
                                         sparse_y_pred=False),
                   keras.metrics.SparseCategoricalAccuracy(name="pixel_acc")]
        return compile_model(self, fitted, steps_per_epoch,
                             keras.losses.SparseCategoricalCrossentropy(), metrics)

    def callbacks(self, logs_dir, model):
        # Pictures of a few validation pairs at the farthest key offset of the schedule.
        num_frames, key_range = self.val_frames.shape[1], self.config.dff.key_range
        picks = [i * num_frames + min(num_frames - 1, key_range)
                 for i in range(min(3, len(self.val_frames)))]
        sample_x, sample_y = next(iter(pair_dataset(
            self.val_frames, self.val_masks, num_frames * len(self.val_frames), key_range,
            training=False)))
        sample_x = {k: v.numpy()[picks] for k, v in sample_x.items()}
        return [OverlaySummaries(os.path.join(logs_dir, "images"), sample_x,
                                 sample_y.numpy()[picks], self.num_classes, model)]

    def fit(self, fitted, callbacks, steps_per_epoch):
        config = self.config
        self.flow_stats = None
        if config.model.name == "dff" and config.dff.flow_pretrain_steps > 0:
            spec = moving_shapes.SegmentationSpec(
                height=config.data.size, width=config.data.size,
                num_frames=config.data.frames, num_classes=config.dff.seg_classes)
            # Held out: the validation videos at the schedule of interval key_range + 1.
            self.flow_stats = dff_training.pretrain_flow(
                config, self.model,
                os.path.join(self.output_dir, dff_training.FLOW_PRETRAIN_WEIGHTS),
                moving_shapes.sample_metas(config.dff.flow_pretrain_clips,
                                           config.runtime.seed + 3, spec),
                lambda grid, stride: dff_training.schedule_flow_set(
                    self.val_frames, self.val_metas, config.dff.key_range + 1, grid, stride))
        batch_size, key_range = config.optimization.batch_size, config.dff.key_range
        train_ds = pair_dataset(self.train_frames, self.train_masks, batch_size, key_range,
                                training=True, seed=config.runtime.seed,
                                features=self.train_features)
        val_ds = pair_dataset(self.val_frames, self.val_masks, batch_size, key_range,
                              training=False, features=self.val_features)
        return fitted.fit(train_ds, validation_data=val_ds, epochs=config.optimization.epochs,
                          steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                          verbose=self.verbose())

    def evaluate(self, best):
        self.test_frames, test_masks, _ = load_clips(self.parts["test"], self.num_classes)
        results = dff_training.heldout_metrics(best, self.config.model.name,
                                               self.test_frames,
                                               test_masks, self.num_classes,
                                               self.config.dff.eval_key_intervals)
        if self.flow_stats:
            results.update(self.flow_stats)
        return results, None

    def export(self, best, folder):
        return export.export_dff(
            best, folder, self.class_names,
            extra={"model": self.config.model.name, "experiment": self.config.experiment})

    def summary(self):
        signatures = ("feature, propagate, per_frame" if self.config.model.name == "dff"
                      else "feature, per_frame")
        frames = self.test_frames
        return [f"signatures      : {signatures}; uint8 RGB frames",
                f"held-out data   : {self.parts['test']} ({len(frames)} videos, "
                f"{frames.shape[0] * frames.shape[1]} frames)"]
