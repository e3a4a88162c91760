"""Metrics of a model on a data set: RMSE / MAE for regression, top-1 / top-5 for
classification, plus the matching picture.

Two protocols (`evaluate_videos`):
  clip   one clip a video, the one the evaluation ClipSpec samples (the temporal centre
         for a random-crop recipe): clip accuracy, what training reports
  video  every non-overlapping clip of each video (keras_video.data.sampling.video_clips),
         their scores averaged per video: the video accuracy UCF101 / HMDB51 papers
         publish (C3D, 3D-ResNets)
Either may add the 3-crop: each clip also seen at the start and end of the frame's long
side, all views averaged.
"""

import numpy as np
import tensorflow as tf

from keras_video.tasks import pictures
from keras_video.data import decode, pipeline, sampling, tfrecord, transforms

PROTOCOLS = ("clip", "video")


def predict_all(predict_batch, dataset):
    """(labels, predictions) over a whole batched dataset of (clips, labels)."""
    labels, preds = [], []
    for clips, y in dataset:
        preds.append(np.asarray(predict_batch(clips)))
        labels.append(np.asarray(y))
    return np.concatenate(labels), np.concatenate(preds)


def metrics(task, labels, predictions):
    if task == "regression":
        err = np.ravel(predictions) - np.ravel(labels)
        return {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err))),
                "num_clips": int(err.size)}
    top = np.argsort(-predictions, axis=-1)
    labels = np.ravel(labels)
    return {"top1": float(np.mean(top[:, 0] == labels)),
            "top5": float(np.mean((top[:, :5] == labels[:, None]).any(axis=1))),
            "num_clips": int(labels.size)}


def evaluate(model, dataset, task, class_names=None):
    """(metrics dict, picture) of `model` on `dataset`."""
    labels, preds = predict_all(lambda x: model(x, training=False), dataset)
    image = pictures.prediction_image(task, labels, preds, class_names)
    return metrics(task, labels, preds), image


def _video_clips_reader(clip, from_array):
    """(item, rng) -> every clip of a video, uint8 [K, T, h, w, C]; the video is decoded
    once, at the decode size. A flow clip's video is first cut to its frames `stride`
    apart, whose consecutive flows (one fewer) are then cut into clips, so clip k
    holds the flows of kept frames kN .. kN + N, as training's flow clips do."""

    def read(item, rng):
        del rng  # nothing random in evaluation
        if from_array:
            frames = decode.clip_from_array(item, len(item), "first", 1, None,
                                            clip.decode_size, clip.read_grayscale)
        else:
            frames = decode.read_all_frames(item.decode(), clip.decode_size,
                                            clip.read_grayscale)
        stride = clip.stride
        if clip.modality == "flow":
            kept = frames[::stride]
            # A one-frame video is looped, as training's clips are: zero flow.
            frames = clip.from_frames(kept[np.arange(max(2, len(kept))) % len(kept)])
            stride = 1
        return frames[sampling.video_clips(len(frames), clip.num_frames, stride)]

    return read


def _centre_clip_reader(clip, from_array):
    read_clip = pipeline.clip_reader(clip, from_array)
    return lambda item, rng: read_clip(item, rng)[None]


def video_clip_dataset(source, clip, protocol="video", three_crop=False, batch_size=16,
                       on_bad_sample="error", skip_log=None):
    """Batches of (views uint8 [B, T, H, W, C], labels, video index): the evaluation
    views of every clip of every video, batched across videos. Video indices count the
    videos that could be read, in the source's order."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
    clip = clip.for_eval()
    if isinstance(source, tfrecord.TfrecordSource):
        ds = tfrecord.clip_dataset(source, clip, video_clips_of=protocol == "video")
        if protocol == "clip":
            ds = ds.map(lambda frames, label, seed: (frames[None], label, seed))
    else:
        ds, from_array = pipeline.source_dataset(source)
        reader = _video_clips_reader if protocol == "video" else _centre_clip_reader
        ds = pipeline.decode_stage(ds, reader(clip, from_array),
                                   (None, *clip.decoded_shape), on_bad_sample, skip_log)
    num_views = 3 if three_crop else 1
    height, width = clip.decode_size

    def views_of(video, element):
        clips, label, _ = element
        num_clips = tf.shape(clips)[0]
        # One box for every frame of every clip: crop them all as one stack of frames.
        frames = tf.reshape(clips, [-1, height, width, clip.channels])
        views = transforms.eval_views(frames, clip, three_crop)  # [V, K*T, H, W, C]
        views = tf.reshape(views, [num_views, num_clips, *clip.shape])
        views = tf.reshape(tf.transpose(views, [1, 0, 2, 3, 4, 5]), [-1, *clip.shape])
        count = num_clips * num_views
        return views, tf.fill([count], label), tf.fill([count], video)

    ds = ds.enumerate().map(views_of, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    return pipeline.prefetched(ds.batch(batch_size))


def video_scores(model, source, clip, protocol="video", three_crop=False, batch_size=16,
                 on_bad_sample="error", skip_log=None):
    """(labels [N], scores [N, K], clips [N]) of the N videos that could be read: each
    video's model outputs averaged over its clips and their views, and how many clips
    it was cut into. The outputs of a classifier are its softmax scores (every
    classifier here ends in softmax); of a regressor, its values."""
    dataset = video_clip_dataset(source, clip, protocol, three_crop, batch_size,
                                 on_bad_sample, skip_log)
    videos, labels, outputs = [], [], []
    for views, y, video in dataset:
        outputs.append(np.asarray(model(views, training=False), np.float64))
        labels.append(y.numpy())
        videos.append(video.numpy())
    if not outputs:
        raise ValueError("no video could be evaluated")
    videos, labels, outputs = (np.concatenate(a) for a in (videos, labels, outputs))
    num_videos = int(videos.max()) + 1
    sums = np.zeros((num_videos, outputs.shape[-1]))
    np.add.at(sums, videos, outputs)
    views = np.bincount(videos, minlength=num_videos)
    video_labels = np.zeros(num_videos, labels.dtype)
    video_labels[videos] = labels
    return video_labels, sums / views[:, None], views // (3 if three_crop else 1)


def evaluate_videos(model, source, clip, task="classification", class_names=None,
                    protocol="video", three_crop=False, batch_size=16,
                    on_bad_sample="error", skip_log=None):
    """(metrics dict, picture) of `model` with the clip or video protocol.

    source: `Samples` or `TfdsSource`; clip: the model's ClipSpec (its evaluation form is
    used). Clips are batched across videos; see `video_scores`. Metrics: top1 / top5 (or
    rmse / mae) over videos, num_videos, num_clips (clips cut, views not counted),
    views_per_clip and protocol. The picture is the per-video confusion matrix (or
    scatter plot).
    """
    labels, scores, clips = video_scores(model, source, clip, protocol, three_crop,
                                         batch_size, on_bad_sample, skip_log)
    results = metrics(task, labels, scores)
    results.update(num_clips=int(clips.sum()), num_videos=len(labels),
                   views_per_clip=3 if three_crop else 1, protocol=protocol)
    return results, pictures.prediction_image(task, labels, scores, class_names)
