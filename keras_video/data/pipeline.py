"""The one tf.data pipeline of every model: (path, label) -> batches of clips.

    paths, labels -> [shuffle] -> OpenCV decode + sample + resize (parallel, GIL released)
                  -> [cache] -> [shuffle] -> batch -> float32 -> prefetch

Clips come out float32 RGB (or gray) in [0, 255], shape [batch, T, H, W, C]. Each model
normalises its input itself (its first layer), so training, evaluation, the exported
SavedModel and `predict` cannot disagree about normalisation.
"""

import dataclasses
import threading

import numpy as np
import tensorflow as tf
from absl import logging

from keras_video.data import decode, sampling
from keras_video.data.sources import Samples, TfdsSource


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """How a clip is cut from a video; saved with a model so every command agrees."""

    num_frames: int = 30
    size: tuple = (64, 64)  # (height, width)
    sampling: str = "uniform"  # see keras_video.data.sampling
    stride: int = 1
    grayscale: bool = False

    def __post_init__(self):
        if self.sampling not in sampling.MODES:
            raise ValueError(f"sampling must be one of {sampling.MODES}, not {self.sampling!r}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))

    @property
    def channels(self):
        return 1 if self.grayscale else 3

    @property
    def shape(self):
        return (self.num_frames, *self.size, self.channels)

    def for_eval(self):
        """Evaluation never samples at random: the random crop becomes the centre crop."""
        mode = "center" if self.sampling == "random" else self.sampling
        return dataclasses.replace(self, sampling=mode)

    def to_dict(self):
        return dataclasses.asdict(self)


class SkipLog:
    """Bad samples skipped while the pipeline runs (on_bad_sample='skip')."""

    def __init__(self):
        self._lock = threading.Lock()
        self.errors = []

    def add(self, error):
        with self._lock:
            self.errors.append(error)
        logging.warning("skipping bad sample %s", error)


def _decoder(clip, on_bad_sample, skip_log, from_array=False):
    """The numpy function run by tf.data for each element."""

    def fn(item, seed):
        rng = np.random.default_rng(int(seed))
        try:
            if from_array:
                frames = decode.clip_from_array(item, clip.num_frames, clip.sampling,
                                                clip.stride, rng, clip.size, clip.grayscale)
            else:
                frames = decode.read_clip(item.decode(), clip.num_frames, clip.sampling,
                                          clip.stride, rng, clip.size, clip.grayscale)
        except decode.BadSampleError as e:
            if on_bad_sample == "error":
                raise
            skip_log.add(e)
            return np.zeros(clip.shape, np.uint8), False
        return frames, True

    return fn


def make_dataset(source, clip, batch_size, training, seed=0, cache=None,
                 on_bad_sample="error", skip_log=None, drop_remainder=False):
    """A batched tf.data.Dataset of (clips, labels).

    source: `Samples` (files on disk) or `TfdsSource`.
    clip: `ClipSpec`; for evaluation pass `clip.for_eval()`.
    cache: None, "memory" or a directory for an on-disk cache of decoded clips. The
      cache holds sampled clips, so it needs a deterministic sampling mode.
    """
    if cache and clip.sampling == "random":
        raise ValueError("a cache of decoded clips would freeze the random temporal crop; "
                         "use sampling='uniform', 'first' or 'center' with a cache")
    skip_log = skip_log if skip_log is not None else SkipLog()
    from_array = isinstance(source, TfdsSource)
    if from_array:
        ds, _ = source.load()
    else:
        labels = source.labels
        ds = tf.data.Dataset.from_tensor_slices((list(source.paths), labels))
        if training and not cache:
            ds = ds.shuffle(len(source), seed=seed, reshuffle_each_iteration=True)
    # One seed per element and epoch, so random crops are reproducible yet differ.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip((ds, seeds))
    fn = _decoder(clip, on_bad_sample, skip_log, from_array)

    def decode_element(item, seed):
        (x, label), s = item, seed
        frames, ok = tf.numpy_function(fn, [x, s], [tf.uint8, tf.bool],
                                       name="opencv_decode", stateful=False)
        frames.set_shape(clip.shape)
        ok.set_shape(())
        return frames, label, ok

    ds = ds.map(lambda item, s: decode_element(item, s),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    if on_bad_sample == "skip":
        ds = ds.filter(lambda frames, label, ok: ok)
    ds = ds.map(lambda frames, label, ok: (frames, label))
    if cache:
        ds = ds.cache("" if cache == "memory" else cache)
        if training:
            n = len(source) if isinstance(source, Samples) else 1024
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y))
    return ds.prefetch(tf.data.AUTOTUNE)
