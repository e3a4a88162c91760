"""Video object detection: the per-frame R-FCN (`rfcn`) and Deep Feature Flow on it
(`dff_rfcn`), trained and evaluated as the reference (msracver/Deep-Feature-Flow,
experiments/dff_rfcn) on data in the ILSVRC2015 VID layout.

    --data=imagenet_vid:ROOT   ROOT holds ImageSets/, Data/, Annotations/ (the real
                               ILSVRC2015, or a user's own videos in that layout)
    --data=synthetic:vid       the same layout generated under --data_dir
                               (keras_video.data.generate vid: --num_train videos,
                               --num_eval held-out videos, --frames, --size,
                               --object_classes)

Training examples are the records of --image_set (DFF's
DET_train_30classes+VID_train_15frames): a DET image is its own key frame; a VID frame's
key frame is up to --key_range frames before it (imagenet_vid.training_pairs). Records
whose frame has no object of the classes are skipped, as the reference's filter_roidb
does; --holdout_fraction of the training videos (whole videos) are held out for the
validation loss; --classes=FILE replaces the classes. Frames are resized to the model's
input, --resize=HEIGHT,WIDTH (else --size x --size), boxes with them, and mirrored at
random (TRAIN.FLIP). Losses (keras_video.layers.
detection_targets): the RPN's (256 anchors, half foreground, IoU 0.7 / 0.3) and
R-FCN's with OHEM (the 128 hardest RoIs; --noohem: all), summed over the batch's
images as the reference sums its GPUs' gradients.

Evaluation (`evaluate_videos`) runs the streaming engine (keras_video.serving.
streaming) over the --test_image_set videos at each key interval and reports ImageNet
VID mAP at IoU 0.5 overall and by motion speed (FGFA's slow / medium / fast,
keras_video.tasks.detection_eval), and frames/s.
"""

import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_video.data import decode, generate, imagenet_vid, vid_synthetic
from keras_video.layers import RPNProposals, box_ops
from keras_video.layers import detection_targets as targets
from keras_video.models import build_model, rfcn
from keras_video.models.dff import dff_parts
from keras_video.serving import export, streaming
from keras_video.tasks import detection_eval, dff_training, pictures
from keras_video.tasks.base import Task

DATA = "synthetic:vid"
PREFIX = "imagenet_vid:"
MAX_BOXES = 64  # ground-truth boxes an example carries (padded); more are dropped
PICTURE_FRAMES = 4


def class_names_of(wnids):
    """The VID class name of each WordNet id, or the id itself for other synsets."""
    names = dict(zip(imagenet_vid.WNIDS, imagenet_vid.CLASS_NAMES))
    return [names.get(w, w) for w in wnids]


@dataclasses.dataclass
class VidSplits:
    root: str
    wnids: tuple
    train: list  # VidRecord: DET images and VID frames with at least one object
    val: list  # the frames of the held-out training videos
    test: list  # one record a video (VID_val_videos)


def _with_objects(records, wnids):
    return [r for r in records
            if len(imagenet_vid.read_annotation(r.annotation_path(), wnids)["boxes"])]


def load_splits(config, data_dir):
    """The data of a detection run: generated (synthetic:vid) or read
    (imagenet_vid:ROOT), its classes, the training records split by whole videos."""
    data, det, seed = config.data, config.detection, config.runtime.seed
    if data.source == DATA:
        root = os.path.join(data_dir, f"vid_{data.num_train}v_{data.num_eval}val_{data.size}px_"
                                      f"{data.frames}f_{det.object_classes}c_seed{seed}")
        generate.write_vid(root, data.num_train, data.num_eval, seed, frames=data.frames,
                           size=data.size, classes=det.object_classes,
                           num_det_images=None if det.det_images < 0 else det.det_images,
                           progress=not config.runtime.quiet)
    elif data.source.startswith(PREFIX):
        root = data.source[len(PREFIX):]
        if not os.path.isdir(root):
            raise FileNotFoundError(f"{root}: folder does not exist (--data={data.source})")
    else:
        raise ValueError(f"--model={config.model.name} reads --data={DATA} or "
                         f"{PREFIX}ROOT, not {data.source!r}")
    classes_file = det.classes or os.path.join(root, "classes.txt")
    wnids = (imagenet_vid.read_classes(classes_file) if det.classes or
             os.path.isfile(classes_file) else imagenet_vid.WNIDS)
    records = _with_objects(imagenet_vid.read_image_sets(root, det.image_set), wnids)
    videos = sorted({r.video for r in records if r.is_video})
    held_out = max(1, round(len(videos) * data.holdout_fraction)) if len(videos) > 1 else 0
    val_videos = set(np.random.default_rng(seed).choice(videos, held_out, replace=False)
                     if held_out else [])
    train = [r for r in records if r.video not in val_videos]
    val = [r for r in records if r.video in val_videos]
    test = imagenet_vid.read_image_sets(root, det.test_image_set)
    if not train:
        raise ValueError(f"{root}: no training frame of {det.image_set} holds an object of "
                         f"the {len(wnids)} classes")
    return VidSplits(root, tuple(wnids), train, val, test)


def read_frame(path):
    """An RGB uint8 frame; a missing or unreadable file is a BadSampleError naming it."""
    if not os.path.isfile(path):
        raise decode.BadSampleError(path, "file does not exist")
    return decode.read_image(path)[..., ::-1]


def resize_boxes(boxes, from_size, to_size):
    """Pixel boxes [N, 4] of a from_size (H, W) frame in the pixels of a to_size frame."""
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    return np.asarray(boxes, np.float32) * np.float32([sx, sy, sx, sy])


class ExampleReader:
    """One training example of a record: (current, key) frames resized to `size`, the
    current frame's boxes and labels padded to MAX_BOXES, and their count. The key frame
    and the mirror are drawn from `seed` (one per example, from tf.data)."""

    def __init__(self, records, wnids, size, key_range, pairs, flip):
        self.records, self.wnids, self.size = records, wnids, tuple(size)
        self.key_range, self.pairs, self.flip = key_range, pairs, flip

    def __call__(self, index, seed):
        record = self.records[int(index)]
        rng = np.random.default_rng(int(seed))
        current, key = (imagenet_vid.training_pairs(record, rng, self.key_range)
                        if self.pairs else (record.frame_index, record.frame_index))
        annotation = imagenet_vid.read_annotation(record.annotation_path(current), self.wnids)
        frame = read_frame(record.image_path(current))
        key_frame = frame if key == current else read_frame(record.image_path(key))
        boxes = resize_boxes(annotation["boxes"], frame.shape[:2], self.size)
        frame, key_frame = (decode.resize_frame(f, self.size) for f in (frame, key_frame))
        if self.flip and rng.random() < 0.5:  # the reference's flipped roidb entries
            frame, key_frame = frame[:, ::-1], key_frame[:, ::-1]
            width = self.size[1]
            boxes = np.stack([width - boxes[:, 2] - 1, boxes[:, 1],
                              width - boxes[:, 0] - 1, boxes[:, 3]], axis=1)
        count = min(len(boxes), MAX_BOXES)
        padded = np.zeros((MAX_BOXES, 4), np.float32)
        labels = np.zeros(MAX_BOXES, np.int32)
        padded[:count] = boxes[:count]
        labels[:count] = annotation["labels"][:count]
        return (np.ascontiguousarray(frame), np.ascontiguousarray(key_frame), padded, labels,
                np.int32(count))


def make_dataset(records, wnids, size, batch_size, key_range, pairs, training, seed):
    """tf.data of ({"current", "key"} float32 frames, {"boxes", "labels", "count"})
    batches; training: shuffled, repeated, random keys and mirrors; else each record once
    with fixed draws."""
    reader = ExampleReader(records, wnids, size, key_range, pairs, flip=training)
    indices = tf.data.Dataset.range(len(records))
    if training:
        indices = indices.shuffle(len(records), seed=seed).repeat()
        seeds = tf.data.Dataset.random(seed=seed)
    else:
        seeds = tf.data.Dataset.range(len(records))
    height, width = size

    def load(index, example_seed):
        frame, key, boxes, labels, count = tf.numpy_function(
            reader, [index, example_seed], [tf.uint8, tf.uint8, tf.float32, tf.int32, tf.int32])
        frame.set_shape((height, width, 3))
        key.set_shape((height, width, 3))
        boxes.set_shape((MAX_BOXES, 4))
        labels.set_shape((MAX_BOXES,))
        count.set_shape(())
        return ({"current": tf.cast(frame, tf.float32), "key": tf.cast(key, tf.float32)},
                {"boxes": boxes, "labels": labels, "count": count})

    return (tf.data.Dataset.zip((indices, seeds))
            .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


class DetectionTraining(keras.Model):
    """Trains a `rfcn` / `dff_rfcn` model with the reference's losses. Its call is the
    detector's (the maps); train_step and test_step add the targets: anchor targets and
    the RPN losses, the training proposals (6000 / 300, NMS 0.7; no gradient), the
    proposal targets, PSRoI pooling of both map sets over them, R-FCN's losses with
    OHEM. Metrics: loss and its four parts."""

    LOSSES = ("rpn_cls_loss", "rpn_bbox_loss", "rcnn_cls_loss", "rcnn_bbox_loss")

    def __init__(self, detector, ohem=True, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.detector = detector
        n_feat, _, n_task = dff_parts(detector)
        rpn = n_task.get_layer("rpn")
        self.image_size = tuple(n_feat.input.shape[1:3])
        grid = tuple(n_feat.output.shape[1:3])
        self.anchors = tf.constant(box_ops.shifted_anchors(*grid, rpn.feature_stride,
                                                           rpn.anchors()), tf.float32)
        self.num_classes = n_task.output["rfcn_cls"].shape[-1] // rfcn.GROUP_SIZE ** 2 - 1
        self.proposals = RPNProposals(feature_stride=rpn.feature_stride,
                                      anchor_scales=rpn.anchor_scales,
                                      anchor_ratios=rpn.anchor_ratios)
        self.psroi = rfcn.ps_roi_pooling(self.num_classes, rpn.feature_stride)
        self.ohem, self.seed = bool(ohem), int(seed)
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("loss",) + self.LOSSES}
        self.is_dff = len(detector.inputs) == 2  # dff_rfcn: current and key
        self.built = True  # every weight is the detector's, built already

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        return self.detector(self._inputs(inputs), training=training)

    def _inputs(self, x):
        return x if self.is_dff else {"current": x["current"]}

    def losses_of(self, x, y, training, step):
        """The four losses, each summed over the batch's images."""
        return self.losses_from_maps(self.detector(self._inputs(x), training=training), y,
                                     step)

    def losses_from_maps(self, maps, y, step):
        """The four losses of the detector's maps (dict of `detection_net`) against the
        ground truth y {"boxes", "labels", "count"}; `step` seeds the anchor sampling."""
        batch = maps["rpn_cls_score"].shape[0]
        height, width = self.image_size
        info = tf.constant([[height, width, 1.0]] * batch, tf.float32)
        rois, _ = self.proposals([maps["rpn_cls_prob"], maps["rpn_bbox_pred"], info],
                                 training=True)
        rois = tf.reshape(rois, (batch, -1, 5))
        totals = dict.fromkeys(self.LOSSES, 0.0)
        sampled, sampled_targets = [], []
        for b in range(batch):
            gt = (y["boxes"][b], y["labels"][b], y["count"][b])
            seed = tf.stack([tf.cast(step, tf.int32) * 97 + b, self.seed])
            labels, box_targets, weights = targets.anchor_targets(
                self.anchors, *gt, float(height), float(width), seed=seed)
            cls_loss, box_loss = targets.rpn_losses(
                maps["rpn_cls_score"][b], maps["rpn_bbox_pred"][b], labels, box_targets,
                weights)
            totals["rpn_cls_loss"] += cls_loss
            totals["rpn_bbox_loss"] += box_loss
            image_rois, *image_targets = targets.proposal_targets(
                rois[b, :, 1:], *gt, self.num_classes + 1)
            index = tf.fill([tf.shape(image_rois)[0], 1], float(b))
            sampled.append(tf.concat([index, image_rois], axis=1))
            sampled_targets.append(image_targets)
        all_rois = tf.concat(sampled, axis=0)
        cls_score, bbox_pred = (tf.reduce_mean(pooled, axis=(1, 2))
                                for pooled in rfcn.pool_maps(self.psroi, maps, all_rois))
        rows = sampled[0].shape[0]
        for b, (labels, box_targets, weights, valid) in enumerate(sampled_targets):
            part = slice(b * rows, (b + 1) * rows)
            cls_loss, box_loss = targets.rcnn_ohem_losses(
                cls_score[part], bbox_pred[part], labels, box_targets, weights, valid,
                roi_per_img=targets.BATCH_ROIS_OHEM if self.ohem else rows)
            totals["rcnn_cls_loss"] += cls_loss
            totals["rcnn_bbox_loss"] += box_loss
        return totals

    def _record(self, totals):
        total = sum(totals.values())
        self.trackers["loss"].update_state(total)
        for name, value in totals.items():
            self.trackers[name].update_state(value)
        return total

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            totals = self.losses_of(x, y, True, self.optimizer.iterations)
            loss = sum(totals.values()) + sum(self.detector.losses)
            scaled = self.optimizer.scale_loss(loss)
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self._record(totals)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        self._record(self.losses_of(x, y, False, 0))
        return {m.name: m.result() for m in self.metrics}


@dataclasses.dataclass
class HeldOutVideo:
    """A held-out video as evaluation reads it: its record, decoded frames, annotations
    (imagenet_vid.read_annotation) and each annotated object's motion IoU (FGFA's)."""
    record: imagenet_vid.VidRecord
    frames: list
    truth: list
    motion: list


def read_videos(records, wnids):
    """The HeldOutVideo of each record, frames decoded once for every interval."""
    videos = []
    for record in records:
        frames = [read_frame(record.image_path(i)) for i in range(record.num_frames)]
        truth = [imagenet_vid.read_annotation(record.annotation_path(i), wnids)
                 for i in range(record.num_frames)]
        videos.append(HeldOutVideo(record, frames, truth, imagenet_vid.motion_iou(truth)[0]))
    return videos


def _parts(model):
    return model if isinstance(model, (streaming.KerasParts, streaming.SavedModelParts)) \
        else streaming.KerasParts(model)


def detect_videos(model, videos, interval, mode=None, given_flow=None, progress=None):
    """Every frame's detections by the streaming engine at one key interval: a list per
    video of per-frame {"boxes" (in the frame's pixels), "scores", "labels"}, and the
    seconds the engine took (network and post-processing, decoding excluded). `model`,
    `mode`, `given_flow`: as `evaluate_videos`; `progress(interval, frames done)`."""
    parts = _parts(model)
    how = "per_frame" if interval == 1 else mode or (
        "dff" if parts.has_flow else "per_frame")
    engine = streaming.StreamingEngine(parts, how, interval, output="detections")
    engine.warmup()
    per_video, seconds, done = [], 0.0, 0
    for video in videos:
        found_frames = []
        for index, frame in enumerate(video.frames):
            key = index - index % engine.key_interval
            flow = None if given_flow is None or key == index else given_flow(
                video.record, index, key)
            result = engine.step(index, frame, flow=flow)
            found = dict(result.output)
            found["boxes"] = resize_boxes(found["boxes"], engine.frame_size,
                                          frame.shape[:2])
            found_frames.append(found)
            seconds += result.seconds
        per_video.append(found_frames)
        done += len(found_frames)
        if progress:
            progress(interval, done)
    return per_video, seconds


def score_videos(detections, videos, num_classes):
    """ImageNet VID mAP overall and by motion speed (detection_eval.vid_map_by_motion)
    of `detect_videos`' per-video detections on the videos."""
    return detection_eval.vid_map_by_motion(
        [d for frames in detections for d in frames],
        [t for video in videos for t in video.truth], num_classes,
        [m for video in videos for m in video.motion])


def evaluate_videos(model, records, wnids, intervals, progress=None, mode=None,
                    given_flow=None):
    """Held-out detection by the streaming engine: for each key interval, ImageNet VID
    mAP overall and by motion speed, and frames/s (network and post-processing time per
    frame, decoding excluded). `model`: a Keras rfcn / dff_rfcn model or its parts
    (streaming.KerasParts / SavedModelParts). Returns {"map_k{k}", "map_slow_k{k}",
    "map_medium_k{k}", "map_fast_k{k}", "fps_k{k}", ...} and per interval the
    by-motion results (detection_eval.vid_map_by_motion) under "by_motion". `mode`:
    the engine's way to the frames between key frames (streaming.MODES); default "dff"
    where the model has a flow net, else "per_frame" (interval 1 is always per-frame).
    `given_flow(record, t, key)`: the flow from frame t to its key frame in pixels of
    the model's input (e.g. the generator's ground truth, generate.vid_meta), used in
    place of the mode's on every propagated frame."""
    parts = _parts(model)
    videos = read_videos(records, wnids)
    results, by_motion = {}, {}
    for interval in intervals:
        detections, seconds = detect_videos(parts, videos, interval, mode, given_flow,
                                            progress)
        scores = score_videos(detections, videos, len(wnids))
        by_motion[interval] = scores
        results[f"map_k{interval}"] = float(scores["all"]["mAP"])
        for speed in ("slow", "medium", "fast"):
            results[f"map_{speed}_k{interval}"] = float(scores[speed]["mAP"])
        results[f"fps_k{interval}"] = sum(map(len, detections)) / seconds
    results["frames"] = sum(len(v.frames) for v in videos)
    return results, by_motion


def detection_picture(model, records, class_names, frames=PICTURE_FRAMES):
    """Detections drawn on the first frames of the first held-out video, side by side."""
    engine = streaming.StreamingEngine(model, "per_frame", 1, output="detections")
    record = records[0]
    tiles = []
    for index in range(min(frames, record.num_frames)):
        frame = read_frame(record.image_path(index))
        found = dict(engine.step(index, frame).output)
        found["boxes"] = resize_boxes(found["boxes"], engine.frame_size, frame.shape[:2])
        tiles.append(pictures.draw_detections(frame, found, class_names))
    return np.concatenate(tiles, axis=1)


class DetectionPictures(keras.callbacks.Callback):
    """After every epoch, the current model's detections on a few held-out frames."""

    def __init__(self, log_dir, detector, records, class_names):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)
        self.detector, self.records, self.class_names = detector, records, class_names

    def on_epoch_end(self, epoch, logs=None):
        image = detection_picture(self.detector, self.records, self.class_names)
        with self.writer.as_default():
            tf.summary.image("val/detections", image[None], step=epoch)
        self.writer.flush()


class VideoDetection(Task):
    name = "detection"
    models = ("rfcn", "dff_rfcn")
    picture_name = "test_detections.png"

    def __init__(self, config, strategy, data_dir, output_dir):
        super().__init__(config.replace(task="detection"), strategy, data_dir, output_dir)
        config = self.config
        if config.dff.freeze_feature and not config.dff.feature_init:
            raise ValueError("--freeze_feature keeps N_feat and N_task as --feature_init "
                             "gives them: it needs --feature_init (an rfcn run)")
        self.splits = load_splits(config, data_dir)
        self.class_names = class_names_of(self.splits.wnids)
        model = config.model
        self.size = tuple(config.data.resize) or (config.data.size, config.data.size)
        self.model_config = dict(
            num_classes=len(self.splits.wnids), input_shape=(*self.size, 3),
            backbone=model.backbone, feature_width=config.dff.feature_width,
            width=model.width, backbone_weights=model.backbone_weights,
            anchor_scales=tuple(config.detection.anchor_scales),
            output_stride=config.dff.output_stride)
        if model.name == "dff_rfcn":
            flow_width = config.dff.flow_width
            self.model_config["flow_width"] = None if flow_width < 0 else flow_width
        self.intervals = (1,) if model.name == "rfcn" else tuple(config.dff.eval_key_intervals)

    def record(self):
        return {"model_config": self.model_config, "class_names": self.class_names,
                "wnids": list(self.splits.wnids), "data_root": self.splits.root,
                "eval_data": f"{PREFIX}{self.splits.root}"}

    def _batch_size(self):
        return self.config.optimization.batch_size

    def steps_per_epoch(self):
        return self.config.optimization.steps_per_epoch or max(
            1, len(self.splits.train) // self._batch_size())

    def build_model(self):
        model = self.model = build_model(self.config.model.name, **self.model_config)
        dff = self.config.dff
        if dff.feature_init:  # the paper starts DFF from the per-frame detector
            print(dff_training.load_feature_task(model, dff.feature_init))
            if dff.freeze_feature:
                n_feat, _, n_task = dff_parts(model)
                n_feat.trainable = False
                n_task.trainable = dff.train_task
        return model

    def compile(self, model, steps_per_epoch):
        trainer = DetectionTraining(model, self.config.detection.ohem, self.config.runtime.seed)
        trainer.compile(optimizer=self.optimizer(steps_per_epoch, model),
                        jit_compile=self.jit_compile())
        return trainer

    def _dataset(self, records, training):
        config = self.config
        return make_dataset(records, self.splits.wnids, self.size, self._batch_size(),
                            config.dff.key_range, config.model.name == "dff_rfcn", training,
                            config.runtime.seed)

    def callbacks(self, logs_dir, model):
        return [DetectionPictures(os.path.join(logs_dir, "images"), model,
                                  self.splits.test, self.class_names)]

    def pretrain_flow(self):
        """The flow net alone on the ground-truth flow of freshly drawn synthetic VID
        videos (vid_synthetic at the frames' size), whatever the training data: DFF's
        FlowNet learns on Flying Chairs before it learns on ImageNet VID. Held out:
        videos of the generator's "val" stream under another seed."""
        config = self.config
        height, width = self.size
        spec = vid_synthetic.VidSpec(
            height=height, width=width, num_frames=max(config.data.frames,
                                                       config.dff.key_range + 1),
            num_classes=vid_synthetic.MAX_CLASSES)  # every shape family: varied motion
        seed, clips = config.runtime.seed, config.dff.flow_pretrain_clips

        def held_out(grid, stride):
            metas = (vid_synthetic.video_meta(seed + 4, k, spec, "val")
                     for k in range(max(1, clips // 20)))
            return dff_training.flow_pairs(metas, seed + 4, grid, stride,
                                           key_range=config.dff.key_range)

        return dff_training.pretrain_flow(
            config, self.model, os.path.join(self.output_dir,
                                             dff_training.FLOW_PRETRAIN_WEIGHTS),
            (vid_synthetic.video_meta(seed + 3, k, spec) for k in range(clips)), held_out)

    def fit(self, fitted, callbacks, steps_per_epoch):
        opt = self.config.optimization
        self.flow_stats = None
        if self.config.model.name == "dff_rfcn" and self.config.dff.flow_pretrain_steps > 0:
            self.flow_stats = self.pretrain_flow()
        val = self.splits.val or self.splits.train[:self._batch_size()]
        validation_steps = max(1, len(val) // self._batch_size())
        return fitted.fit(self._dataset(self.splits.train, True),
                          validation_data=self._dataset(val, False),
                          validation_steps=validation_steps, epochs=opt.epochs,
                          steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                          verbose=self.verbose())

    def evaluate(self, best):
        start = time.time()
        results, self.by_motion = evaluate_videos(best, self.splits.test, self.splits.wnids,
                                                  self.intervals)
        results["eval_seconds"] = time.time() - start
        results.update(getattr(self, "flow_stats", None) or {})
        return results, detection_picture(best, self.splits.test, self.class_names)

    def export(self, best, folder):
        config = self.config
        return export.export_dff(best, folder, self.class_names, extra={
            "model": config.model.name, "experiment": config.experiment,
            "wnids": list(self.splits.wnids)})

    def summary(self):
        lines = ["signatures      : feature, task, per_frame, propagate_flow"
                 + (", propagate" if self.config.model.name == "dff_rfcn" else "")
                 + " (uint8 frames; detections)",
                 f"held-out data   : {len(self.splits.test)} videos of "
                 f"{self.config.detection.test_image_set} in {self.splits.root}"]
        for interval, scores in getattr(self, "by_motion", {}).items():
            lines.append(f"key interval {interval:<3}: mAP {scores['all']['mAP']:.4f} (slow "
                         f"{scores['slow']['mAP']:.4f}, medium {scores['medium']['mAP']:.4f}, "
                         f"fast {scores['fast']['mAP']:.4f})")
        return lines
