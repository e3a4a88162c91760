"""Deep Feature Flow's parts of the segmentation task (keras_video.tasks.segmentation):

  data       moving-shapes videos with masks and exact flow (keras_video.data.
             moving_shapes), generated per split (`generate_splits`) and read into
             memory (`load_clips`).
  examples   pairs {"current": frame t, "key": frame k} with k = t - randint(0,
             key_range) clipped to the video (the paper's training: key frame up to 9
             frames before), label = frame t's mask (`pair_dataset`); the loss sees the
             current frame only; frame_seg ignores "key". Validation pairs are
             deterministic: k = the key frame of the schedule at interval key_range + 1,
             so the hardest offsets occur as at inference.
  flow       `pretrain_flow`: the flow net alone on the ground-truth flow of fresh
             clips (`flow_pairs`; averaged onto the feature grid and divided by the
             stride: feature pixels, what the flow net outputs).
  evaluation held-out mIoU and frames/s of the test videos through the streaming
             engine (keras_video.serving.streaming) at each key interval (`heldout_metrics`).
  export     a SavedModel with the parts as signatures (`export_dff`).
"""

import os
import time

import cv2
import keras
import numpy as np
import tensorflow as tf

from keras_video import run_dir, saving
from keras_video.serving import streaming
from keras_video.data import datasets, generate, moving_shapes, pipeline
from keras_video.models.dff import dff_parts, feature_stride
from keras_video.tasks import pictures
from keras_video.tasks.pictures import clip_montage, confusion_matrix

DATA = "synthetic:segmentation"
FLOW_PRETRAIN_WEIGHTS = "flow_pretrain.weights.h5"  # in the run folder: a rerun reuses it


# --- data ----------------------------------------------------------------------------

def generate_splits(config, data_dir):
    """Generates (or re-finds) the train / val / test clip folders; returns their paths."""
    data, classes = config.data, config.dff.seg_classes
    if data.source != DATA:
        raise ValueError(f"--model={config.model.name} trains on --data={DATA}, not "
                         f"{data.source!r}")
    parts = {}
    for split, num, seed in datasets.synthetic_splits(data, config.runtime.seed):
        # Every generation argument is in the name: another size is another folder
        # (generate refuses to rewrite a folder with different arguments).
        out = os.path.join(data_dir, f"segmentation_{split}_{num}_{data.size}px_"
                           f"{data.frames}f_{classes}c_seed{seed}")
        print(f"Generating {num} segmentation clips for {split} in {out}")
        generate.write_segmentation(out, num, seed, frames=data.frames, size=data.size,
                                    classes=classes, progress=not config.runtime.quiet)
        parts[split] = out
    return parts


def load_clips(root, num_classes=None):
    """(frames uint8 [N, T, H, W, 3], masks uint8 [N, T, H, W], metas) of a folder
    written by `generate segmentation`."""
    frames, masks, metas = [], [], []
    for folder in moving_shapes.list_clips(root):
        f, m, meta = moving_shapes.load_segmentation_clip(folder)
        if num_classes is not None and len(meta["class_names"]) != num_classes:
            raise ValueError(f"{folder}: {len(meta['class_names'])} classes, expected "
                             f"{num_classes}")
        frames.append(f)
        masks.append(m)
        metas.append(meta)
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"{root}: clips of different shapes {sorted(shapes)}")
    return np.stack(frames), np.stack(masks), metas


def key_frame_index(t, offset, num_frames):
    """The key frame of current frame t at `offset` <= 0 frames, clipped to the video."""
    return tf.clip_by_value(t + offset, 0, num_frames - 1)


def pair_dataset(frames, masks, batch_size, key_range=9, training=True, seed=0,
                 features=None):
    """Batches of ({"current", "key"} float32 frames, current mask int32); with
    `features` [N, T, h, w, C] (N_feat of every frame, for a fixed N_feat) each example
    also holds "key_features", the key frame's, in float32.

    training: endless, shuffled (clip, t), key offset uniform in [-key_range, 0];
    otherwise every (clip, t) once in order, key = the schedule's key frame at interval
    key_range + 1 (t rounded down to a multiple of it).
    """
    num_clips, num_frames = frames.shape[:2]
    frames_t, masks_t = tf.constant(frames), tf.constant(masks)
    features_t = None if features is None else tf.constant(features)
    count = num_clips * num_frames
    indices = tf.data.Dataset.range(count)
    if training:
        indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True).repeat()
    interval = key_range + 1

    def pair(i, offset):
        clip, t = i // num_frames, i % num_frames
        k = key_frame_index(t, offset, num_frames)
        x = {"current": tf.cast(frames_t[clip, t], tf.float32),
             "key": tf.cast(frames_t[clip, k], tf.float32)}
        if features_t is not None:
            x["key_features"] = tf.cast(features_t[clip, k], tf.float32)
        return x, tf.cast(masks_t[clip, t], tf.int32)

    if training:
        offsets = tf.data.Dataset.random(seed=seed).map(
            lambda r: -tf.cast(r % interval, tf.int64))
        pairs = tf.data.Dataset.zip(indices, offsets)
    else:
        pairs = indices.map(lambda i: (i, -((i % num_frames) % interval)))
    return pipeline.prefetched(pairs.map(pair, num_parallel_calls=tf.data.AUTOTUNE)
                               .batch(batch_size, drop_remainder=training))


def frame_features(n_feat, frames, batch_size=16):
    """N_feat of every frame of [N, T, H, W, 3] as float16 [N, T, h, w, C] (half the
    memory of float32; the features of a fixed N_feat are computed once for training)."""
    compute = tf.function(lambda x: n_feat(x, training=False))
    flat = frames.reshape(-1, *frames.shape[2:])
    features = np.concatenate([
        compute(tf.cast(flat[i:i + batch_size], tf.float32)).numpy().astype(np.float16)
        for i in range(0, len(flat), batch_size)])
    return features.reshape(*frames.shape[:2], *features.shape[1:])


def _jpeg(frame, quality):
    """An RGB uint8 frame after JPEG compression at `quality` (the stored clips are MJPEG)."""
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]),
                            [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("cv2.imencode failed on a JPEG frame")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]


def flow_pairs(metas, seed, grid, stride, frames_per_clip=5, key_range=9,
               jpeg_quality=(80, 95)):
    """Flow pre-training data from fresh clips, as FlowNet's Flying Chairs: every clip
    meta of `metas` (moving_shapes layer stacks: moving_shapes.sample_metas, or
    vid_synthetic.video_meta's videos) gives `frames_per_clip` frames within
    key_range + 1 consecutive ones (rendered, then JPEG-compressed at a random quality
    like the stored MJPEG and VID JPEG frames), and every (current, earlier key) pair
    among them.

    Returns (frames uint8 [N, H, W, 3], pairs int [P, 2] (current, key) indices into
    frames, flow float32 [P, h, w, 2] current -> key in feature pixels on `grid`).
    Thousands of clips, not the few training videos: a flow net trained on a few
    dozen videos learns their backgrounds' pans rather than matching.
    """
    if not 2 <= frames_per_clip <= key_range + 1:
        raise ValueError(f"frames_per_clip must be in [2, {key_range + 1}], got {frames_per_clip}")
    rng = np.random.default_rng([seed, 1])
    frames, pairs, flows = [], [], []
    for meta in metas:
        if meta["num_frames"] < key_range + 1:
            raise ValueError(f"flow pre-training clips need key_range + 1 = {key_range + 1} "
                             f"frames, these have {meta['num_frames']}")
        start = rng.integers(0, meta["num_frames"] - key_range)
        times = start + np.sort(rng.choice(key_range + 1, frames_per_clip, replace=False))
        quality = rng.integers(jpeg_quality[0], jpeg_quality[1], endpoint=True)
        first = len(frames)
        frames += [_jpeg(np.round(moving_shapes.render_frame(meta, t)).astype(np.uint8),
                         quality) for t in times]
        for i in range(1, frames_per_clip):
            keys = [int(k) for k in times[:i]]
            for j, flow in enumerate(moving_shapes.flows_from(meta, int(times[i]), keys)):
                pairs.append((first + i, first + j))
                flows.append(streaming.flow_to_feature_grid(flow, grid, stride))
    return np.stack(frames), np.array(pairs), np.stack(flows).astype(np.float32)


# --- metrics and pictures ------------------------------------------------------------

def iou_per_class(confusion):
    """IoU of each class from a confusion matrix (rows true, columns predicted); NaN for
    a class that occurs in neither truth nor prediction."""
    confusion = np.asarray(confusion, np.float64)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(confusion):
    """Mean IoU over the classes present in truth or prediction (NaNs left out)."""
    return float(np.nanmean(iou_per_class(confusion)))


class OverlaySummaries(keras.callbacks.Callback):
    """Logs, after every epoch, a few validation pairs: key frame, current frame with the
    true mask, current frame with the predicted one."""

    def __init__(self, log_dir, examples, labels, num_classes, model):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)
        self.examples, self.labels, self.num_classes = examples, labels, num_classes
        self.segmenter = model  # the dff / frame_seg model, whatever model is fitted

    def on_epoch_end(self, epoch, logs=None):
        predicted = np.argmax(self.segmenter.predict(self.examples, verbose=0), axis=-1)
        tiles = []
        for i in range(len(self.labels)):
            current = self.examples["current"][i]
            tiles += [self.examples["key"][i],
                      pictures.overlay(current, self.labels[i], self.num_classes),
                      pictures.overlay(current, predicted[i], self.num_classes)]
        with self.writer.as_default():
            tf.summary.image("val/key_truth_prediction", clip_montage(np.stack(tiles),
                                                                      3)[None],
                             step=epoch)
        self.writer.flush()


# --- held-out evaluation -------------------------------------------------------------

def evaluate_streaming(model, frames, masks, num_classes, mode="dff", key_interval=10,
                       jit_compile=False):
    """mIoU, pixel accuracy and timings of the streaming engine over videos
    frames [N, T, H, W, 3] with masks [N, T, H, W] (batch 1, frame after frame)."""
    engine = streaming.StreamingEngine(model, mode, key_interval, output="labels",
                                          jit_compile=jit_compile)
    engine.warmup()
    return evaluate_engine(engine, frames, masks, num_classes)


def heldout_metrics(model, model_name, frames, masks, num_classes, key_intervals=(1, 10)):
    """The held-out metrics of a segmentation run: mIoU and frames/s of the streaming
    engine at each key interval (dff: miou_kN, fps_kN) or per frame (frame_seg)."""
    if model_name != "dff":
        scores = evaluate_streaming(model, frames, masks, num_classes, "per_frame")
        return {"miou": scores["miou"], "fps": scores["fps"]}
    results = {}
    for interval in key_intervals:
        scores = evaluate_streaming(model, frames, masks, num_classes, "dff", int(interval))
        results.update({f"miou_k{interval}": scores["miou"],
                        f"fps_k{interval}": scores["fps"]})
    return results


def evaluate_engine(engine, frames, masks, num_classes):
    """`evaluate_streaming` with a ready (warmed-up) StreamingEngine."""
    confusion = np.zeros((num_classes, num_classes), np.int64)
    results = []
    for video, video_masks in zip(frames, masks):
        for result, mask in zip(engine.run(video), video_masks):
            confusion += confusion_matrix(mask, result.output, num_classes)
            results.append(result)
    timing = streaming.timing_summary(results)
    seconds = sum(r.seconds for r in results)
    return {"miou": mean_iou(confusion),
            "pixel_accuracy": float(np.trace(confusion) / confusion.sum()),
            "fps": len(results) / seconds, "key_ms": timing["key_ms"],
            "other_ms": timing["other_ms"], "frames": len(results),
            "iou_per_class": [None if np.isnan(v) else float(v)
                              for v in iou_per_class(confusion)]}


# --- training ------------------------------------------------------------------------

def model_config(config, num_classes):
    """build_model(config.model.name, ...) arguments of a dff / frame_seg TrainConfig."""
    model, dff = config.model, config.dff
    size = config.data.size
    values = dict(num_classes=num_classes, input_shape=(size, size, 3),
                  backbone=model.backbone, feature_width=dff.feature_width,
                  width=model.width, backbone_weights=model.backbone_weights,
                  output_stride=dff.output_stride)
    if model.name == "dff":
        values["flow_width"] = None if dff.flow_width < 0 else dff.flow_width
    return values


def load_feature_task(model, path):
    """Copies N_feat and N_task of a trained frame_seg or dff model (a .keras file, or the
    run directory holding best.keras) into the dff `model`, as the paper starts DFF from
    the per-frame network's weights; returns a one-line report."""
    if os.path.isdir(path):
        path = os.path.join(path, run_dir.BEST_MODEL)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path}: no trained model to start N_feat and N_task from (--feature_init); "
            "train the per-frame model first: python -m keras_video.train --model=frame_seg")
    source = dff_parts(saving.load_model(path, compile=False))
    target = dff_parts(model)
    for index, name in ((0, "feature_net"), (2, "task_net")):
        theirs, ours = source[index].get_weights(), target[index].get_weights()
        if [w.shape for w in theirs] != [w.shape for w in ours]:
            raise ValueError(f"{path}: its {name} does not match this model's (another "
                             "backbone, width, feature width, stride or class count)")
        target[index].set_weights(theirs)
    return f"N_feat and N_task start from {path}"


def endpoint_error(y_true, y_pred):
    """Mean end-point error: the length of the flow's error vector, averaged over the
    grid (FlowNet's training loss and metric)."""
    return keras.ops.mean(keras.ops.sqrt(
        keras.ops.sum(keras.ops.square(y_pred - y_true), axis=-1) + 1e-12))


def schedule_pairs(num_clips, num_frames, interval):
    """(clip, t, k) of every propagated frame of the key-frame schedule at `interval`."""
    return np.array([(c, t, t - t % interval) for c in range(num_clips)
                     for t in range(num_frames) if t % interval])


def schedule_flow_set(frames, metas, interval, grid, stride):
    """The held-out flow set of videos frames uint8 [N, T, H, W, 3] with their metas:
    every propagated frame of the key-frame schedule at `interval` and its key frame,
    in flow_pairs' form (frames [N * T, H, W, 3], pairs, flows on `grid`)."""
    num_frames = frames.shape[1]
    schedule = schedule_pairs(len(frames), num_frames, interval)
    pairs = np.stack([schedule[:, 0] * num_frames + schedule[:, 1],
                      schedule[:, 0] * num_frames + schedule[:, 2]], -1)
    flows = np.stack([streaming.flow_to_feature_grid(
        moving_shapes.flow_between(metas[c], t, k), grid, stride) for c, t, k in schedule])
    return frames.reshape(-1, *frames.shape[2:]), pairs, flows.astype(np.float32)


def pretrain_flow(config, model, path, metas, held_out):
    """Trains the flow net alone on ground-truth flow (end-point error on the feature
    grid, in feature pixels) of the clip metas `metas` (`flow_pairs`: fresh clips the
    task's generator draws, as DFF's FlowNet learns on Flying Chairs before it learns
    on video), then measures it on `held_out(grid, stride)` (flow_pairs' form) against
    zero flow; saves its weights to `path`, or loads them when a previous run left
    them there (then returns None)."""
    _, n_flow, _ = dff_parts(model)
    if os.path.isfile(path):
        n_flow.load_weights(path)
        print(f"Flow net: pre-trained weights loaded from {path}")
        return None
    grid = tuple(n_flow.output[0].shape[1:3])
    stride = feature_stride(model)
    start = time.time()
    dff, batch_size, seed = config.dff, config.optimization.batch_size, config.runtime.seed
    frames, pairs, flows = flow_pairs(metas, seed + 3, grid, stride, key_range=dff.key_range)
    print(f"Flow pre-training: {len(pairs)} pairs of {dff.flow_pretrain_clips} fresh clips "
          f"({time.time() - start:.0f} s to render), {dff.flow_pretrain_steps} steps of "
          f"{batch_size}")
    frames_t, pairs_t, flows_t = tf.constant(frames), tf.constant(pairs), tf.constant(flows)

    def example(i):
        return ({"current": tf.cast(frames_t[pairs_t[i, 0]], tf.float32),
                 "key": tf.cast(frames_t[pairs_t[i, 1]], tf.float32)}, flows_t[i])

    dataset = pipeline.prefetched(
        tf.data.Dataset.range(len(pairs)).shuffle(len(pairs), seed=seed)
        .repeat().map(example, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size, drop_remainder=True))
    flow_only = keras.Model(n_flow.inputs, n_flow.outputs[0], name="flow_pretrain")
    lr = keras.optimizers.schedules.CosineDecay(dff.flow_pretrain_lr, dff.flow_pretrain_steps)
    flow_only.compile(optimizer=keras.optimizers.Adam(lr), loss=endpoint_error)
    epochs = min(10, dff.flow_pretrain_steps)
    history = flow_only.fit(dataset, epochs=epochs,
                            steps_per_epoch=dff.flow_pretrain_steps // epochs,
                            verbose=2 if config.runtime.quiet else 1)
    with run_dir.atomic_path(path) as temporary:
        n_flow.save_weights(temporary)

    frames, pairs, targets = held_out(grid, stride)
    predicted = flow_only.predict(
        {"current": frames[pairs[:, 0]].astype(np.float32),
         "key": frames[pairs[:, 1]].astype(np.float32)}, batch_size=batch_size, verbose=0)
    stats = {"flow_pretrain_epe": float(history.history["loss"][-1]),
             "flow_val_epe": float(endpoint_error(targets, predicted)),
             "flow_val_zero_epe": float(endpoint_error(targets, np.zeros_like(targets)))}
    print("Flow net after pre-training: held-out end-point error "
          f"{stats['flow_val_epe']:.4f} feature px (zero flow: {stats['flow_val_zero_epe']:.4f})")
    return stats
