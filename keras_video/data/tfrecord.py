"""Clips stored as TFRecord shards, read with TensorFlow ops only (no Python per clip).

`python -m keras_video.data.to_tfrecord` writes a folder:

  DIR/clips-00000-of-00008.tfrecord ...  one tf.train.SequenceExample per video
  DIR/tfrecord.json                      the manifest: task, class names, the shards
                                         with their record counts, and one row per clip
                                         (source path, label, group, shard, record)

Each SequenceExample has the layout of the TensorFlow Model Garden's video data
(official/vision/dataloaders/video_input.py, MediaSequence key names):
  context        clip/label/index   int64  class id        (classification)
                 clip/label/string  bytes  class name      (classification)
                 clip/label/value   float  target          (regression; our key)
                 clip/media_id      bytes  the source video, frame folder or TFDS item
                 image/height, image/width  int64  size of the first stored frame
                 image/format       bytes  b"JPEG"
                 image/frame_rate   float  frames per second (0: unknown)
                 image/mixed_sizes  int64  1 where frames differ in size (our key;
                                           absent: they do not)
  feature_lists  image/encoded      bytes  one JPEG per frame, every frame of the video

`--data=tfrecord:DIR` (or DIR itself: the manifest is recognised) gives a
`TfrecordSource`, a `Samples` whose clips live in the shards, so splitting, class names
and labels work as for files on disk. Its pipeline (`clip_dataset`) is all graph ops:
TFRecordDataset -> parse_single_sequence_example -> the clip's frame indices (the modes
of keras_video.data.sampling: first, uniform, random, center, short videos looped) ->
tf.io.decode_jpeg of the sampled frames only, at 1/2, 1/4 or 1/8 scale where the clip
allows (as keras_video.data.decode does with OpenCV) -> resize to the decode size
(area when shrinking, bilinear when growing, OpenCV's INTER_AREA / INTER_LINEAR) ->
optional gray. keras_video.data.pipeline then applies the same crops, flips, cache and
batching as to OpenCV clips. Labels come from the manifest rows, not the records, so a
relabelled or split source stays right.

A missing shard, a shard shorter than the manifest says (a truncated copy) or a record
count that disagrees raise `BadSampleError` naming the shard when the source is opened;
a shard whose bytes are damaged fails its CRC check while it is read, and
`locate_damage` (called by keras_video.commands.cli) names it.
"""

import dataclasses
import json
import os
import struct

import numpy as np
import tensorflow as tf

from keras_video.data import decode, transforms
from keras_video.data.decode import BadSampleError
from keras_video.data.samples import Samples

MANIFEST = "tfrecord.json"
FORMAT = "keras_video.tfrecord/1"
PREFIX = "tfrecord:"
IMAGE_KEY = "image/encoded"  # Model Garden's video_input.IMAGE_KEY
LABEL_KEY = "clip/label/index"  # Model Garden's video_input.LABEL_KEY
MIXED_SIZES_KEY = "image/mixed_sizes"  # ours: 1 where the frames differ in size
# Raw records held by the training shuffle: about this many bytes of them.
SHUFFLE_BYTES = 256 << 20
_TEMPORAL_STREAM = 0  # seed stream of the random temporal crop (transforms use 1-5)
_OPENED = {}  # shard path -> manifest path, of the sources opened in this process


def shard_name(index, count):
    return f"clips-{index:05d}-of-{count:05d}.tfrecord"


def is_tfrecord_dir(path):
    return os.path.isfile(os.path.join(path, MANIFEST))


@dataclasses.dataclass
class TfrecordSource(Samples):
    """Clips in TFRecord shards: `paths` are the source paths (media ids), `records`
    the global record number of each clip (shards in order, records in order)."""

    root: str = ""
    shards: list = None  # [(path, number of records)]
    records: np.ndarray = None

    def subset(self, index):
        index = np.asarray(index, dtype=np.int64)
        part = super().subset(index)
        return dataclasses.replace(self, paths=part.paths, labels=part.labels,
                                   groups=part.groups, records=self.records[index])

    @property
    def total_records(self):
        return sum(count for _, count in self.shards)

    def mean_record_bytes(self):
        return sum(os.path.getsize(p) for p, _ in self.shards) / max(1, self.total_records)


def _count_records(path):
    """Records of a TFRecord file by walking its length headers (no payload read);
    raises BadSampleError where a record runs past the end of the file."""
    size, count, offset = os.path.getsize(path), 0, 0
    with open(path, "rb") as f:
        while offset < size:
            header = f.read(12)  # uint64 length, uint32 CRC of the length
            if len(header) < 12:
                raise BadSampleError(path, f"truncated TFRecord shard: record {count} "
                                     f"starts at byte {offset} of {size}")
            (length,) = struct.unpack("<Q", header[:8])
            offset += 12 + length + 4  # + the payload and its CRC
            if offset > size:
                raise BadSampleError(path, f"truncated TFRecord shard: record {count} "
                                     f"ends at byte {offset}, the file has {size}")
            f.seek(offset)
            count += 1
    return count


def load(root):
    """The TfrecordSource of a folder written by keras_video.data.to_tfrecord."""
    manifest_path = os.path.join(root, MANIFEST)
    if not os.path.isdir(root):
        raise BadSampleError(root, "TFRecord folder does not exist")
    if not os.path.isfile(manifest_path):
        raise BadSampleError(root, f"no {MANIFEST}: not a folder written by "
                             "python -m keras_video.data.to_tfrecord (or not finished)")
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise BadSampleError(manifest_path, f"unreadable manifest ({e})") from None
    if manifest.get("format") != FORMAT:
        raise BadSampleError(manifest_path, f"format {manifest.get('format')!r}, "
                             f"expected {FORMAT!r}")
    shards = []
    for shard in manifest["shards"]:
        path = os.path.join(root, shard["file"])
        if not os.path.isfile(path):
            raise BadSampleError(path, "TFRecord shard listed in the manifest is missing")
        count = _count_records(path)
        if count != shard["records"]:
            raise BadSampleError(path, f"TFRecord shard holds {count} records, the "
                                 f"manifest says {shard['records']}")
        shards.append((path, count))
        _OPENED[path] = manifest_path
    offsets = np.cumsum([0] + [count for _, count in shards])
    clips = manifest["clips"]
    if not clips:
        raise BadSampleError(manifest_path, "no clips")
    task = manifest["task"]
    dtype = np.float32 if task == "regression" else np.int64
    return TfrecordSource(
        paths=[c["path"] for c in clips],
        labels=np.asarray([c["label"] for c in clips], dtype),
        task=task, class_names=manifest.get("class_names"),
        groups=[c.get("group") or c["path"] for c in clips],
        root=root, shards=shards,
        records=np.asarray([offsets[c["shard"]] + c["record"] for c in clips], np.int64))


def from_spec(spec):
    """A TfrecordSource for 'tfrecord:DIR' or DIR."""
    root = spec[len(PREFIX):] if spec.startswith(PREFIX) else spec
    return load(os.path.expanduser(root))


def locate_damage():
    """'SHARD: problem' for the first shard opened in this process whose records fail
    their CRC check, or None. TensorFlow's DataLossError says only 'corrupted record at
    N'; this reads the shards again to say which file."""
    for path in list(_OPENED):
        try:
            for _ in tf.data.TFRecordDataset(path):
                pass
        except tf.errors.DataLossError as e:
            problem = e.message.split("[Op:")[0].split("}}")[-1].strip()
            return f"{path}: damaged TFRecord shard ({problem})"
    return None


# ---- sampling, as keras_video.data.sampling, in TensorFlow ops -------------------------

def frame_indices(total, num_frames, mode="uniform", stride=1, seed=None):
    """int64 [num_frames]: sampling.frame_indices for a scalar tensor `total`; mode
    'random' draws its start from `seed` (int64 scalar)."""
    total = tf.cast(total, tf.int64)
    i = tf.range(num_frames, dtype=tf.int64)
    if mode == "uniform":
        # The same float64 arithmetic as numpy's, so the indices are identical.
        spread = tf.cast((tf.cast(i, tf.float64) + 0.5) * tf.cast(total, tf.float64)
                         / num_frames, tf.int64)
        return tf.where(total >= num_frames, spread, i % total)
    span = (num_frames - 1) * stride + 1
    if mode == "first":
        start = tf.constant(0, tf.int64)
    elif mode == "center":
        start = (total - span) // 2
    elif mode == "random":
        seeds = tf.stack([tf.cast(seed, tf.int64), tf.constant(_TEMPORAL_STREAM, tf.int64)])
        start = tf.random.stateless_uniform([], seeds, 0, tf.maximum(total - span + 1, 1),
                                            tf.int64)
    else:
        raise ValueError(f"unknown sampling mode {mode!r}")
    start = tf.where(span > total, tf.constant(0, tf.int64), start)
    return (start + i * stride) % total


def video_clips(total, num_frames, stride=1):
    """int64 [K, num_frames]: sampling.video_clips for a scalar tensor `total`."""
    kept = tf.range(0, tf.cast(total, tf.int64), stride, dtype=tf.int64)
    count = tf.size(kept, out_type=tf.int64)
    starts = tf.range(0, count, num_frames, dtype=tf.int64)
    window = tf.minimum(tf.constant(num_frames, tf.int64), count - starts)
    position = starts[:, None] + tf.range(num_frames, dtype=tf.int64)[None] % window[:, None]
    return tf.gather(kept, position)


# ---- decoding ----------------------------------------------------------------------

def _reduction_branch(shapes, size):
    """Index into (1, 2, 4, 8) of decode.jpeg_reduction for int32 [..., 3] shapes."""
    branch = tf.zeros_like(shapes[..., 0])
    if not decode.REDUCED_JPEG:
        return branch
    for k, n in ((1, 2), (2, 4), (3, 8)):  # later, larger reductions win
        fits = tf.logical_and((shapes[..., 0] + n - 1) // n >= size[0],
                              (shapes[..., 1] + n - 1) // n >= size[1])
        branch = tf.where(fits, k, branch)
    return branch


def resize_like_opencv(images, size):
    """decode.resize_frame as TensorFlow ops on uint8 frames (transforms.resize_like_opencv,
    rounded back to uint8 as OpenCV's resize of uint8 frames rounds)."""
    return tf.cast(tf.round(transforms.resize_like_opencv(images, size)), tf.uint8)


def _decode_jpeg(data, channels, branch):
    """One JPEG at the reduction (1, 2, 4, 8)[branch]."""
    return tf.switch_case(branch, [
        (lambda n=n: tf.io.decode_jpeg(data, channels, ratio=n,
                                       dct_method="INTEGER_ACCURATE"))
        for n in (1, 2, 4, 8)])


def decode_frames(encoded, size, grayscale=False, same_size=None):
    """JPEG bytes [N] -> uint8 [N, H, W, C] at `size`, each frame decoded at the reduced
    scale decode.jpeg_reduction picks (libjpeg's scaled IDCT, the same as OpenCV's
    IMREAD_REDUCED_*), then resized. Gray frames are decoded as JPEG luma, as OpenCV's
    IMREAD_GRAYSCALE does.

    same_size: bool scalar, True where every frame has one size (a video; the record's
    context says so): the first frame's header decides and all are resized in one op.
    Otherwise (or None: unknown) each frame's own header decides.
    """
    channels = 1 if grayscale else 3
    size = tuple(int(s) for s in size)

    def one_size():
        branch = _reduction_branch(tf.io.extract_jpeg_shape(encoded[0]), size)
        frames = tf.map_fn(lambda data: _decode_jpeg(data, channels, branch), encoded,
                           fn_output_signature=tf.TensorSpec((None, None, channels),
                                                             tf.uint8))
        return resize_like_opencv(frames, size)

    def frame_by_frame():
        return tf.map_fn(lambda data: resize_like_opencv(_decode_jpeg(
            data, channels, _reduction_branch(tf.io.extract_jpeg_shape(data), size)), size),
            encoded, fn_output_signature=tf.TensorSpec((*size, channels), tf.uint8))

    if same_size is None:
        shapes = tf.map_fn(tf.io.extract_jpeg_shape, encoded,
                           fn_output_signature=tf.TensorSpec([3], tf.int32))
        same_size = tf.reduce_all(tf.equal(shapes, shapes[:1]))
    return tf.ensure_shape(tf.cond(same_size, one_size, frame_by_frame),
                           (encoded.shape[0], *size, channels))


def _parse(record):
    """(JPEG frames [T], whether they share one size) of a serialized SequenceExample."""
    context, sequence = tf.io.parse_single_sequence_example(
        record, context_features={
            MIXED_SIZES_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=0)},
        sequence_features={IMAGE_KEY: tf.io.FixedLenSequenceFeature([], tf.string)})
    return sequence[IMAGE_KEY], tf.equal(context[MIXED_SIZES_KEY], 0)


def _records(source, training, seed):
    """(record number, serialized SequenceExample) of the source's clips, in record
    order; in training the shard order is shuffled each epoch, four shards are read at
    once and records pass a shuffle buffer."""
    paths = [p for p, _ in source.shards]
    starts = np.cumsum([0] + [count for _, count in source.shards])[:-1]
    ds = tf.data.Dataset.from_tensor_slices((paths, starts.astype(np.int64)))
    if training:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    # Outside training, shard after shard: clips come in record order.
    ds = ds.interleave(
        lambda path, start: tf.data.TFRecordDataset(path).enumerate(start),
        cycle_length=min(len(paths), 4) if training else 1,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    if len(source.records) < source.total_records:  # a split: keep its records only
        keep = np.zeros(source.total_records, bool)
        keep[source.records] = True
        keep = tf.constant(keep)
        ds = ds.filter(lambda number, record: tf.gather(keep, number))
    if training:
        buffer = int(SHUFFLE_BYTES // max(1.0, source.mean_record_bytes()))
        ds = ds.shuffle(max(16, min(len(source), buffer)), seed=seed,
                        reshuffle_each_iteration=True)
    return ds


def clip_dataset(source, clip, training=False, seed=0, video_clips_of=False):
    """(frames uint8, label, element seed) per clip, in graph ops: the same elements as
    pipeline.decode_stage gives for OpenCV (frames [T, h, w, C] at clip.decode_size), or
    with video_clips_of=True every non-overlapping clip of each video [K, T, h, w, C]
    (the video protocol of keras_video.tasks.evaluation)."""
    if clip.modality != "rgb":
        raise ValueError(f"{source.root}: TFRecord shards are decoded by TensorFlow "
                         f"ops, which have no optical flow; modality {clip.modality!r} "
                         "reads the videos themselves (OpenCV)")
    labels = np.zeros(source.total_records, source.labels.dtype)
    labels[source.records] = source.labels
    labels = tf.constant(labels)
    decode_size, grayscale = tuple(clip.decode_size), clip.grayscale

    def decoded(number, record, element_seed):
        encoded, same_size = _parse(record)
        total = tf.shape(encoded, out_type=tf.int64)[0]
        if video_clips_of:
            index = video_clips(total, clip.num_frames, clip.stride)
            frames = decode_frames(encoded, decode_size, grayscale, same_size)
            frames = tf.gather(frames, index)
        else:
            index = frame_indices(total, clip.num_frames, clip.sampling, clip.stride,
                                  element_seed)
            encoded = tf.ensure_shape(tf.gather(encoded, index), [clip.num_frames])
            frames = decode_frames(encoded, decode_size, grayscale, same_size)
        return frames, tf.gather(labels, number), element_seed

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip((_records(source, training, seed), seeds))
    return ds.map(lambda element, element_seed: decoded(*element, element_seed),
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
